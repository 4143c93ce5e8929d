"""/healthz, /readyz, /metrics, structured log lines, and the registry of local agents."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import httpx

from aistack.agents.fakes import EchoModelBackend, ScriptedModel
from aistack.agents.logs import JsonFormatter, TextFormatter, task_logger
from aistack.agents.registry import RegistryEntry, lookup, read_registry, register, registry_path, unregister
from aistack.agents.runner import serve_agents

from .support import model_definition, ollama_agent, run, sdk_client, send_request, serve, user_message


def test_healthz_readyz_and_metrics_with_the_scripted_fake_model():
    model = ScriptedModel(["one two three"])
    with serve(ollama_agent(), model_definition(), model, ready_cache_seconds=60) as running:
        assert httpx.get(running.url + "/healthz").json() == {"status": "ok", "agent": "test-agent"}
        ready = httpx.get(running.url + "/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready" and ready.json()["model"] == "test-model:1.0.0"
        httpx.get(running.url + "/readyz")
        assert model.checks == 1  # cached

        async def go():
            for transport in ("jsonrpc", "rest"):
                client = sdk_client(running, transport, streaming=False)
                async for _ in client.send_message(send_request(user_message("hi"))):
                    pass
                await client.close()

        run(go())
        httpx.get(running.url + "/tasks/missing", headers={"A2A-Version": "1.0"})
        response = httpx.get(running.url + "/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    for line in (
        'aistack_a2a_requests_total{operation="SendMessage",outcome="ok",transport="jsonrpc"} 1.0',
        'aistack_a2a_requests_total{operation="SendMessage",outcome="ok",transport="rest"} 1.0',
        'aistack_a2a_requests_total{operation="GetTask",outcome="TaskNotFoundError",transport="rest"} 1.0',
        'aistack_a2a_request_duration_seconds_count{operation="SendMessage",transport="jsonrpc"} 1.0',
        'aistack_a2a_tokens_generated_total{model="test-model:1.0.0"} 6.0',
        'aistack_a2a_prompt_tokens_total{model="test-model:1.0.0"} 2.0',
        'aistack_a2a_model_call_duration_seconds_count{model="test-model:1.0.0"} 2.0',
        'aistack_a2a_task_transitions_total{state="TASK_STATE_COMPLETED"} 2.0',
        'aistack_a2a_task_transitions_total{state="TASK_STATE_WORKING"} 2.0',
        'aistack_a2a_time_to_first_token_seconds_count{model="test-model:1.0.0"} 2.0',
    ):
        assert line in text, line


def test_two_agents_in_one_process_have_their_own_metrics():
    pairs = [(ollama_agent("first-agent"), model_definition()), (ollama_agent("second-agent"), model_definition())]
    with serve_agents(pairs, backends=lambda a, d: EchoModelBackend()) as running:
        first, second = running
        assert first.port != second.port

        async def go():
            client = sdk_client(first, "jsonrpc", streaming=False)
            async for _ in client.send_message(send_request(user_message("hi"))):
                pass
            await client.close()

        run(go())
        assert "aistack_a2a_requests_total{" in httpx.get(first.url + "/metrics").text
        assert "aistack_a2a_requests_total{" not in httpx.get(second.url + "/metrics").text


def test_structured_log_formats():
    logger = logging.getLogger("aistack.agents.test")
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "task %s", ("done",), None, extra={"task_id": "t-1", "context_id": "c-1", "agent": "qa-agent"}
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "task done" and entry["time"].endswith("Z")
    assert (entry["task_id"], entry["context_id"], entry["agent"]) == ("t-1", "c-1", "qa-agent")
    assert TextFormatter().format(record).endswith("task done agent=qa-agent task_id=t-1 context_id=c-1")
    adapter = task_logger(logger, task_id="t-2", context_id=None)
    assert adapter.extra == {"task_id": "t-2"}


def test_registry_add_replace_remove(tmp_path):
    path = tmp_path / "registry.json"
    a = RegistryEntry("default", "qa-agent", "http://127.0.0.1:1", "http://127.0.0.1:1/.well-known/agent-card.json", "qa-model:1.0.0")
    b = RegistryEntry("default", "chat-agent", "http://127.0.0.1:2", "http://127.0.0.1:2/.well-known/agent-card.json", "chat:1")
    register([a, b], path)
    moved = RegistryEntry("default", "qa-agent", "http://127.0.0.1:3", "http://127.0.0.1:3/.well-known/agent-card.json", "qa-model:1.0.0")
    register([moved], path)
    assert read_registry(path) == [b, moved]
    assert json.loads(path.read_text())["agents"][1] == {
        "namespace": "default",
        "name": "qa-agent",
        "url": "http://127.0.0.1:3",
        "cardUrl": "http://127.0.0.1:3/.well-known/agent-card.json",
        "model": "qa-model:1.0.0",
    }
    unregister([a], path)  # no longer this process's entry: kept
    assert lookup("qa-agent", path=path) == moved
    unregister([moved, b], path)
    assert read_registry(path) == []
    path.write_text("{not json")
    assert read_registry(path) == []


def test_serve_agents_lists_and_unlists_them_in_the_registry():
    with serve_agents([(ollama_agent(), model_definition())], backends=lambda a, d: EchoModelBackend(), registry=True) as running:
        [entry] = read_registry()
        assert (entry.name, entry.url, entry.model) == ("test-agent", running[0].url, "test-model:1.0.0")
        assert httpx.get(entry.card_url).json()["name"] == "test-agent"
    assert read_registry() == [] and registry_path().exists()


def test_importing_the_cli_loads_no_a2a_server_code():
    code = (
        "import sys, aistack.cli; bad = [m for m in sys.modules if m.split('.')[0] in "
        "('a2a', 'starlette', 'ollama', 'llama_cpp', 'prometheus_client') or m.startswith('aistack.agents')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
