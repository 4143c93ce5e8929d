"""The agent's edge: A2A-Version, bearer authentication, body size limit, input modes, bad input."""

from __future__ import annotations

import base64

import httpx
import pytest
from a2a.types import Part, TaskState
from a2a.utils.errors import ContentTypeNotSupportedError, InvalidParamsError

from aistack.agents.app import create_agent_app
from aistack.agents.client import AgentAuthError, AgentClient
from aistack.agents.config import ConfigError, ServerOptions
from aistack.agents.fakes import EchoModelBackend, ScriptedModel
from aistack.agents.tokens import TOKEN_FILE_ENV, TokenSource, client_token, ensure_local_token

from .support import TOKEN, jsonrpc, model_definition, ollama_agent, run, sdk_client, send_request, serve, user_message

SEND = jsonrpc("SendMessage", {"message": {"role": "ROLE_USER", "messageId": "m1", "parts": [{"text": "hi"}]}})
V1 = {"A2A-Version": "1.0"}


@pytest.fixture(scope="module")
def secured():
    agent = ollama_agent(endpoint="/api/v1/agent", bearer=True)
    with serve(agent, model_definition(), EchoModelBackend(), tokens=TokenSource(value=TOKEN), max_body_bytes=4096) as running:
        yield running


@pytest.fixture(scope="module")
def refusing():
    """Another secured agent, so the refusals below leave `secured`'s rejection metrics alone."""
    agent = ollama_agent(endpoint="/api/v1/agent", bearer=True)
    with serve(agent, model_definition(), EchoModelBackend(), tokens=TokenSource(value=TOKEN), max_body_bytes=4096) as running:
        yield running


def test_missing_version_header_is_refused_on_both_transports():
    with serve(ollama_agent(), model_definition(), EchoModelBackend()) as running:
        rpc = httpx.post(running.interface_url, json=SEND)
        assert rpc.json()["error"]["code"] == -32009  # VersionNotSupported
        assert "0.3" in rpc.json()["error"]["message"]
        rest = httpx.post(running.url + "/message:send", json={"message": SEND["params"]["message"]})
        assert rest.status_code == 400
        assert rest.json()["error"]["details"][0]["reason"] == "VERSION_NOT_SUPPORTED"
        wrong = httpx.post(running.interface_url, json=SEND, headers={"A2A-Version": "2.0"})
        assert wrong.json()["error"]["code"] == -32009
        ok = httpx.post(running.interface_url, json=SEND, headers=V1)
        assert ok.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


@pytest.mark.parametrize(
    "headers, error",
    [
        ({}, None),
        ({"Authorization": "Basic dXNlcjpwdw=="}, None),
        ({"Authorization": "Bearer wrong-token"}, 'error="invalid_token"'),
    ],
)
def test_calls_without_the_right_token_get_401(secured, headers, error):
    for response in (
        httpx.post(secured.interface_url, json=SEND, headers={**V1, **headers}),
        httpx.get(secured.interface_url + "/tasks", headers={**V1, **headers}),
    ):
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer")
        assert (error in challenge) if error else ("invalid_token" not in challenge)
        assert TOKEN not in response.text


@pytest.mark.parametrize("trailing", ["", "/"])
def test_refusals_on_the_jsonrpc_url_are_jsonrpc_error_responses(refusing, trailing):
    url = refusing.interface_url + trailing
    unauthenticated = httpx.post(url, json=SEND, headers=V1)
    assert unauthenticated.status_code == 401 and unauthenticated.headers["www-authenticate"] == 'Bearer realm="aistack"'
    body = unauthenticated.json()
    assert (body["jsonrpc"], body["id"], body["error"]["code"]) == ("2.0", None, -32000)
    assert "Authorization: Bearer" in body["error"]["message"] and "result" not in body
    wrong = httpx.post(url, json=SEND, headers={**V1, "Authorization": "Bearer wrong"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert wrong.json()["error"]["code"] == -32000 and wrong.json()["jsonrpc"] == "2.0"
    big = jsonrpc("SendMessage", {"message": {"role": "ROLE_USER", "messageId": "m", "parts": [{"text": "x" * 5000}]}})
    too_large = httpx.post(url, json=big, headers={**V1, "Authorization": f"Bearer {TOKEN}"})
    assert too_large.status_code == 413
    assert too_large.json()["jsonrpc"] == "2.0" and too_large.json()["error"]["code"] == -32600  # Invalid Request
    assert "at most 4096 bytes" in too_large.json()["error"]["message"]


def test_refusals_on_rest_paths_keep_the_http_json_error_shape(refusing):
    message = {"message": SEND["params"]["message"]}
    unauthenticated = httpx.post(refusing.interface_url + "/message:send", json=message, headers=V1)
    assert unauthenticated.status_code == 401 and unauthenticated.headers["www-authenticate"].startswith("Bearer")
    assert unauthenticated.json()["error"] | {"message": ""} == {"code": 401, "status": "UNAUTHENTICATED", "message": ""}
    big = {"message": {**message["message"], "parts": [{"text": "x" * 5000}]}}
    too_large = httpx.post(refusing.interface_url + "/message:send", json=big, headers={**V1, "Authorization": f"Bearer {TOKEN}"})
    assert too_large.status_code == 413 and too_large.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_the_right_token_passes_and_cards_and_probes_stay_open(secured):
    ok = httpx.post(secured.interface_url, json=SEND, headers={**V1, "Authorization": f"Bearer {TOKEN}"})
    assert ok.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    for path in ("/.well-known/agent-card.json", "/healthz", "/readyz", "/metrics"):
        assert httpx.get(secured.url + path).status_code == 200, path
    metrics = httpx.get(secured.url + "/metrics").text
    assert 'aistack_a2a_http_rejections_total{reason="unauthorized"}' in metrics


def test_client_helpers_send_the_token_and_map_401(secured, monkeypatch):
    monkeypatch.setenv("AISTACK_AGENT_TOKEN", TOKEN)

    async def go():
        async with await AgentClient.connect(secured.url) as client:
            assert (await client.send("hello")).succeeded
        with pytest.raises(AgentAuthError, match="HTTP 401"):
            async with await AgentClient.connect(secured.url, token="wrong") as client:
                await client.send("hello")
        with pytest.raises(AgentAuthError):
            async with await AgentClient.connect(secured.url, token="", transport="rest") as client:
                await client.get_task("x")

    run(go())


def test_token_file_is_reread_when_it_changes(tmp_path):
    path = tmp_path / "token"
    path.write_text("first\n")
    source = TokenSource(file=path, refresh=0)
    assert source.matches("first") and not source.matches("second")
    path.write_text("second\n")
    import os

    os.utime(path, (1, 1))
    assert source.matches("second")
    path.unlink()
    assert not source.matches("second") and source.current() is None
    assert "token" in source.describe() and "second" not in source.describe()


def test_local_token_is_shared_by_agents_and_clients(monkeypatch):
    path = ensure_local_token()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert ensure_local_token() == path
    assert client_token() == path.read_text().strip() == TokenSource.from_env().current()
    monkeypatch.setenv(TOKEN_FILE_ENV, str(path))
    assert TokenSource.from_env().file == path


def test_bearer_agent_without_a_token_does_not_start():
    with pytest.raises(ConfigError, match="AISTACK_AGENT_TOKEN_FILE"):
        create_agent_app(ollama_agent(bearer=True), model_definition(), EchoModelBackend(), base_url="http://127.0.0.1:1", options=ServerOptions(tokens=None))


def test_body_over_the_limit_gets_413(secured):
    auth = {**V1, "Authorization": f"Bearer {TOKEN}"}
    big = jsonrpc("SendMessage", {"message": {"role": "ROLE_USER", "messageId": "m", "parts": [{"text": "x" * 5000}]}})
    response = httpx.post(secured.interface_url, json=big, headers=auth)
    assert response.status_code == 413 and "at most 4096 bytes" in response.json()["error"]["message"]

    def chunked():
        yield b'{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {"parts": [{"text": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}]}}}'

    streamed = httpx.post(secured.interface_url, content=chunked(), headers={**auth, "Content-Type": "application/json"})
    assert streamed.status_code == 413
    small = httpx.post(secured.interface_url, content=iter([b'{"jsonrpc": "2.0", "id": 1, "method": "GetTask", ', b'"params": {"id": "x"}}']), headers=auth)
    assert small.json()["error"]["code"] == -32001  # chunked bodies under the limit reach the handler
    assert 'reason="too_large"} 2.0' in httpx.get(secured.url + "/metrics").text


@pytest.mark.parametrize(
    "part, error, match",
    [
        (Part(raw=b"\x89PNG\r\n", media_type="image/png", filename="x.png"), ContentTypeNotSupportedError, "image/png"),
        (Part(raw=b"%PDF-1.7", media_type="", filename="doc.pdf"), None, None),  # no media type: read as text
        (Part(raw=b"\xff\xfe\x00", media_type="text/plain", filename="bad.txt"), InvalidParamsError, "not valid UTF-8"),
        (Part(url="http://169.254.169.254/secret", media_type="text/plain"), InvalidParamsError, "do not fetch URLs"),
        (Part(text="   "), InvalidParamsError, "empty"),
    ],
)
def test_unsupported_input_is_rejected_before_a_task_exists(part, error, match):
    model = ScriptedModel(["ok"])
    with serve(ollama_agent(), model_definition(), model) as running:

        async def go():
            client = sdk_client(running, "jsonrpc", streaming=False)
            try:
                if error is None:
                    [r] = [r async for r in client.send_message(send_request(user_message(parts=[part])))]
                    return r.task
                with pytest.raises(error, match=match):
                    async for _ in client.send_message(send_request(user_message(parts=[part]))):
                        pass
            finally:
                await client.close()

        task = run(go())
        listed = httpx.get(running.url + "/tasks", headers=V1).json()
    if error is None:
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert "%PDF-1.7" in model.requests[0].messages[-1]["content"]
    else:
        assert listed["tasks"] == [] and model.requests == []


def test_invalid_artifact_request_is_rejected():
    with serve(ollama_agent(), model_definition(), ScriptedModel()) as running:
        for metadata, match in (
            ({"aistack": {"artifact": {"name": "Bad Name"}}}, "not a valid artifact name"),
            ({"aistack": {"artifact": {"name": "x", "mediaType": "image/png"}}}, "not supported"),
            ({"aistack": {"artifact": {"name": "x", "mediaType": "application/json", "schema": {"type": 5}}}}, "not a valid JSON schema"),
        ):
            body = jsonrpc("SendMessage", {"message": {"role": "ROLE_USER", "messageId": "m", "parts": [{"text": "hi"}], "metadata": metadata}})
            error = httpx.post(running.interface_url, json=body, headers=V1).json()["error"]
            assert match in error["message"], error


def test_file_bytes_in_json_are_base64():
    # The HTTP+JSON binding carries file bytes as base64 in `raw`; text files are decoded for the model.
    model = ScriptedModel(["fine"])
    with serve(ollama_agent(), model_definition(), model) as running:
        message = {
            "role": "ROLE_USER",
            "messageId": "m",
            "parts": [{"raw": base64.b64encode("héllo, file".encode()).decode(), "mediaType": "text/markdown", "filename": "notes.md"}],
        }
        response = httpx.post(running.url + "/message:send", json={"message": message}, headers=V1)
        assert response.json()["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert "File 'notes.md' (text/markdown):\n```\nhéllo, file\n```" in model.requests[0].messages[-1]["content"]


def test_local_bearer_agents_get_the_local_token_without_configuration():
    from aistack.agents.fakes import EchoModelBackend as Echo
    from aistack.agents.runner import serve_agents
    from aistack.agents.tokens import local_token_path

    with serve_agents([(ollama_agent(bearer=True), model_definition())], backends=lambda a, d: Echo()) as [running]:
        token = local_token_path().read_text().strip()
        assert httpx.post(running.interface_url, json=SEND, headers=V1).status_code == 401
        ok = httpx.post(running.interface_url, json=SEND, headers={**V1, "Authorization": f"Bearer {token}"})
        assert ok.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
