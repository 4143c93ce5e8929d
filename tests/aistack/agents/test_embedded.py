"""All the way down: agents answering with a real model (SmolLM2-135M in aistack's embedded
Ollama-compatible runtime, through the official ollama client), in process and through
`aistack agents serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import ollama
import pytest
import yaml

from aistack.agents.client import SyncAgentClient
from aistack.agents.config import ServerOptions
from aistack.agents.registry import read_registry
from aistack.agents.runner import serve_agents
from aistack.models.provision import ProvisionError, ensure_models

from .support import model_definition, ollama_agent, wait_until

pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
SHORT = {"numPredict": 8, "temperature": 0.0, "seed": 7}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    from aistack.runtime.config import RuntimeConfig
    from aistack.runtime.endpoint import embedded_server

    store = tmp_path_factory.mktemp("ollama-store")
    # A small context and one llama.cpp thread keep it fast on a busy 2-core machine (two threads
    # spin-wait on each other when other processes hold a core); llama2 maps to the bundled SmolLM2.
    config = RuntimeConfig(store=store, substitutions={"llama2": "smollm2:135m"}, n_ctx=1024, n_threads=1)
    with embedded_server(config) as server:
        yield server.url


def test_agent_streams_an_answer_from_the_embedded_model(embedded):
    definition = model_definition("tiny-chat", parameters=SHORT, system="You are a friendly assistant. Answer in one sentence.")
    client = ollama.Client(host=embedded)
    assert ensure_models(client, [definition, definition]) == ["tiny-chat:1.0.0"]
    assert ensure_models(client, [definition]) == []  # present now: not built again
    agent = ollama_agent("tiny-agent", model="tiny-chat")
    with serve_agents([(agent, definition)], ollama_host=embedded, options=ServerOptions()) as [running]:
        assert httpx.get(running.url + "/readyz").json()["status"] == "ready"
        with SyncAgentClient(running.url) as agent_client:
            tokens: list[str] = []
            result = agent_client.stream("Say hello.", on_token=tokens.append)
            follow_up = agent_client.send("And again?", context_id=result.context_id)
    assert result.succeeded and follow_up.succeeded
    text = result.artifacts[0]["text"]
    assert text.strip() and "".join(tokens) == text
    assert 1 <= len(tokens) <= 9  # numPredict 8 (+ the closing chunk)


def test_missing_base_model_is_a_clear_provisioning_error(embedded):
    definition = model_definition("orphan", base="no-such-base:7b")
    with pytest.raises(ProvisionError, match="AISTACK_BASE_MODELS=no-such-base:7b="):
        ensure_models(ollama.Client(host=embedded), [definition])


def test_agents_serve_cli_builds_models_serves_registers_and_stops(embedded, tmp_path):
    folder = tmp_path / "manifests"
    folder.mkdir()
    model = {
        "apiVersion": "ai.stack/v1alpha1",
        "kind": "OllamaModelDefinition",
        "metadata": {"name": "cli-model"},
        "spec": {"from": "llama2", "build": {"system": "Answer in a few words.", "parameters": SHORT, "tags": {"version": "1.0.0"}}},
    }
    agent = {
        "apiVersion": "ai.stack/v1alpha1",
        "kind": "OllamaAgent",
        "metadata": {"name": "cli-agent"},
        "spec": {
            "modelDefinition": {"name": "cli-model", "version": "1.0.0"},
            "role": "qa",
            "agentCard": {"capabilities": ["question-answering"], "endpoint": "/api/v1/agent", "authentication": {"type": "bearer"}},
        },
    }
    (folder / "agents.yaml").write_text(yaml.safe_dump_all([model, agent]))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "aistack.cli", "agents", "serve", str(folder), "--ollama-host", embedded],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        [entry] = wait_until(read_registry, timeout=60, interval=0.1)
        assert (entry.name, entry.model) == ("cli-agent", "cli-model:1.0.0")
        assert httpx.post(entry.url + "/api/v1/agent", json={}).status_code == 401  # bearer, local token
        with SyncAgentClient(entry.url) as client:  # finds the same local token in AISTACK_HOME
            result = client.send("What is two plus two?")
        assert result.succeeded and result.artifacts[0]["text"].strip()
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "building model cli-model:1.0.0 from llama2" in output
    assert "default/cli-agent  cli-model:1.0.0" in output and entry.url in output
    assert "bearer token for local agents and clients" in output
    assert read_registry() == []
