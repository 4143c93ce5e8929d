"""The agent card: content built from the OllamaAgent and its model, served at the A2A 1.0 well-known
path (and nothing at the 0.2/0.3 name), cacheable."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from a2a.client.card_resolver import parse_agent_card
from a2a.types import AgentCard
from google.protobuf.json_format import MessageToDict

from aistack.agents.card import build_agent_card, interface_url
from aistack.agents.fakes import EchoModelBackend
from aistack.agents.limits import DEFAULT_NUM_PREDICT
from aistack.agents.profile import AgentProfile
from aistack.agents.tokens import TokenSource
from aistack.resources import parse_resource

from .support import TOKEN, model_definition, ollama_agent, serve

REPO = Path(__file__).resolve().parents[3]
REQUIRED = {"name", "description", "supportedInterfaces", "version", "capabilities", "defaultInputModes", "defaultOutputModes", "skills"}


def example(folder: str, name: str) -> tuple:
    docs = [parse_resource(d) for p in (REPO / "examples" / folder).glob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d]
    agent = next(d for d in docs if d.kind == "OllamaAgent" and d.name == name)
    definition = next(d for d in docs if d.kind == "OllamaModelDefinition" and d.name == agent.spec.model_definition.name)
    return agent, definition


def card_json(agent, definition, base_url="http://agents.example:8080") -> dict:
    return MessageToDict(build_agent_card(AgentProfile.from_resources(agent, definition), base_url))


def test_card_of_the_qa_agent_example():
    agent, definition = example("summarization-pipeline", "qa-agent")
    card = card_json(agent, definition)
    assert REQUIRED <= set(card)
    assert (card["name"], card["version"]) == ("qa-agent", "1.0.0")
    assert "quality-assurance agent" in card["description"] and "qa-model:1.0.0" in card["description"]
    assert card["supportedInterfaces"] == [
        {"url": "http://agents.example:8080/api/v1/agent", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": "http://agents.example:8080/api/v1/agent", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
    ]
    assert card["capabilities"] == {"streaming": True, "pushNotifications": True, "extendedAgentCard": False}
    assert card["securitySchemes"] == {
        "bearer": {"httpAuthSecurityScheme": {"scheme": "Bearer", "description": card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["description"]}}
    }
    assert card["securityRequirements"] == [{"schemes": {"bearer": {}}}]
    [skill] = card["skills"]
    assert skill["id"] == "quality-check" and skill["name"] == "Quality Check"
    assert "schema of quality_report" in skill["description"]
    assert skill["tags"] == ["quality-check", "qa", "json", "ollama"]
    assert card["defaultOutputModes"][0] == "application/json"
    assert "text/plain" in card["defaultInputModes"] and "application/json" in card["defaultInputModes"]


def test_card_of_a_text_agent_without_auth_or_push():
    agent, definition = example("question-answering", "chat-agent")
    card = card_json(agent, definition)
    assert [s["id"] for s in card["skills"]] == ["question-answering", "chat"]
    assert all(s["description"].endswith("Answers in plain text.") for s in card["skills"])
    assert card["capabilities"]["pushNotifications"] is False
    assert card["supportedInterfaces"][0]["url"] == "http://agents.example:8080/"
    assert card["defaultOutputModes"][0] == "text/plain"
    profile = AgentProfile.from_resources(agent, definition)
    assert profile.options == {"temperature": 0.3, "num_ctx": 4096, "num_predict": DEFAULT_NUM_PREDICT} and profile.format is None


def test_agent_response_format_overrides_the_definition():
    definition = model_definition(json_schema={"type": "object"})
    assert AgentProfile.from_resources(ollama_agent(), definition).format == {"type": "object"}
    text = ollama_agent(model_config={"responseFormat": "text"})
    assert AgentProfile.from_resources(text, definition).format is None
    plain = model_definition()
    json_agent = ollama_agent(model_config={"responseFormat": "json"})
    assert AgentProfile.from_resources(json_agent, plain).format == "json"


def test_interface_url_joins_base_and_endpoint():
    assert interface_url("http://h:1/", "/") == "http://h:1/"
    assert interface_url("http://h:1", "/api/v1/agent") == "http://h:1/api/v1/agent"


@pytest.fixture(scope="module")
def secured_agent():
    agent = ollama_agent(endpoint="/api/v1/agent", bearer=True, capabilities=("summarization", "text-analysis"))
    with serve(agent, model_definition(), EchoModelBackend(), tokens=TokenSource(value=TOKEN)) as running:
        yield running


@pytest.mark.parametrize("path", ["/.well-known/agent-card.json", "/api/v1/agent/.well-known/agent-card.json"])
def test_card_is_served_openly_and_cacheably_at_every_card_path(secured_agent, path):
    response = httpx.get(secured_agent.url + path)  # no token: cards are public
    assert response.status_code == 200, response.text
    card = response.json()
    assert REQUIRED <= set(card)
    assert card["supportedInterfaces"][0]["url"] == f"{secured_agent.url}/api/v1/agent"
    assert isinstance(parse_agent_card(card), AgentCard)
    assert response.headers["cache-control"] == "public, max-age=300"
    etag = response.headers["etag"]
    revalidated = httpx.get(secured_agent.url + path, headers={"If-None-Match": etag})
    assert revalidated.status_code == 304 and revalidated.headers["cache-control"] == "public, max-age=300"


@pytest.mark.parametrize("path", ["/.well-known/agent.json", "/api/v1/agent/.well-known/agent.json"])
def test_no_card_is_served_under_the_a2a_0_3_name_which_the_server_does_not_speak(secured_agent, path):
    # A 0.3 client reading a 1.0 card there would then send 0.3 requests, which are refused.
    assert httpx.get(secured_agent.url + path).status_code == 404  # not 401: no token would get a card there


def test_public_url_is_what_the_card_advertises():
    with serve(ollama_agent(), model_definition(), EchoModelBackend(), public_url="http://test-agent.ai.svc:8080") as running:
        card = httpx.get(running.card_url.replace("http://test-agent.ai.svc:8080", f"http://127.0.0.1:{running.port}")).json()
        assert card["supportedInterfaces"][0]["url"] == "http://test-agent.ai.svc:8080/"
        assert running.url == "http://test-agent.ai.svc:8080"
