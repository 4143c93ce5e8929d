"""A2AHook against a real agent server on 127.0.0.1 answering from a deterministic fake model."""

import pytest

from aistack.agents.client import AgentAuthError
from aistack.agents.fakes import ScriptedModel
from aistack.agents.runner import serve_agents
from aistack.agents.tokens import TOKEN_ENV, TOKEN_FILE_ENV, TOKENS_DIR_ENV
from aistack_airflow.hooks.a2a import A2AHook
from tests.aistack.agents.support import model_definition, ollama_agent


def test_the_hooks_client_calls_with_its_namespaces_token_fake_model(tmp_path, monkeypatch):
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "team-a").write_text("team-a-token\n")
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(TOKENS_DIR_ENV, str(tokens))  # namespace tokens only: no shared token
    for name in (TOKEN_ENV, TOKEN_FILE_ENV):
        monkeypatch.delenv(name, raising=False)
    with serve_agents([(ollama_agent(bearer=True), model_definition())], backends=lambda a, d: ScriptedModel(["hello"])) as [agent]:
        with A2AHook(agent_url=agent.url, namespace="team-a").get_conn() as client:
            assert client.send("hi").artifacts[0]["text"] == "hello"
        with A2AHook(agent_url=agent.url, namespace="team-b").get_conn() as client, pytest.raises(AgentAuthError):
            client.send("hi")  # team-b has no token here
