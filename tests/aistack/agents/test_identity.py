"""Agents shared by several callers: every task belongs to the identity whose bearer token created it
(a namespace, or the one identity of the shared token), and is, for any other caller, a task that
does not exist. Agents answer from the deterministic fake ScriptedModel, on 127.0.0.1."""

from __future__ import annotations

import json

import httpx
import pytest
from a2a.types import (
    AuthenticationInfo,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
)
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError

from aistack.agents.app import create_agent_app
from aistack.agents.client import AgentClient, AgentRequestError
from aistack.agents.config import ConfigError, ServerOptions
from aistack.agents.fakes import EchoModelBackend, ScriptedModel
from aistack.agents.runner import serve_agents
from aistack.agents.tokens import (
    SHARED_IDENTITY,
    TOKEN_ENV,
    TOKENS_DIR_ENV,
    AgentTokens,
    TokenDirectory,
    TokenSource,
    client_token,
    local_token_path,
)
from aistack.agents.webhooks import AllowList

from .support import (
    TOKEN,
    WebhookReceiver,
    jsonrpc,
    model_definition,
    ollama_agent,
    run,
    sdk_client,
    send_request,
    serve,
    token_files,
    user_message,
    wait_until,
)

TEAM_A, TEAM_B = "team-a-token", "team-b-token"
TRANSPORTS = ["jsonrpc", "rest"]
V1 = {"A2A-Version": "1.0"}


def bearer(token: str) -> dict[str, str]:
    return {**V1, "Authorization": f"Bearer {token}"}


def secret_config(task_id: str = "", url: str = "http://127.0.0.1:9/hook") -> TaskPushNotificationConfig:
    return TaskPushNotificationConfig(
        task_id=task_id, id="hook", url=url, token="notify-token", authentication=AuthenticationInfo(scheme="Bearer", credentials="hook-secret")
    )


@pytest.fixture(scope="module")
def tokens_dir(tmp_path_factory):
    return token_files(tmp_path_factory.mktemp("tokens"), team_a=TEAM_A, team_b=TEAM_B)


@pytest.fixture(scope="module")
def shared_agent(tokens_dir):
    """A bearer agent that accepts the shared token and the tokens of team-a and team-b."""
    agent = ollama_agent(endpoint="/api/v1/agent", bearer=True, push=True)
    with serve(
        agent,
        model_definition(),
        ScriptedModel(["the answer"]),
        tokens=TokenSource(value=TOKEN),
        namespace_tokens=TokenDirectory(tokens_dir),
        webhook_allow=AllowList.parse("127.0.0.1"),
    ) as running:
        yield running


def send(running, token: str, message, transport: str = "jsonrpc", **configuration):
    """One SendMessage with the SDK's client; the task."""

    async def go():
        client = sdk_client(running, transport, streaming=False, token=token)
        try:
            [response] = [r async for r in client.send_message(send_request(message, **configuration))]
            return response.task
        finally:
            await client.close()

    return run(go())


def test_list_tasks_shows_a_namespace_none_of_another_namespaces_tasks_or_prompts(shared_agent):
    task = send(shared_agent, TEAM_A, user_message("team a's confidential prompt", context_id="ctx-list"))
    for response in (
        httpx.get(shared_agent.interface_url + "/tasks?historyLength=10", headers=bearer(TEAM_B)),
        httpx.post(shared_agent.interface_url, headers=bearer(TEAM_B), json=jsonrpc("ListTasks", {"historyLength": 10})),
    ):
        assert response.status_code == 200
        assert task.id not in response.text and "confidential" not in response.text
    own = httpx.get(shared_agent.interface_url + "/tasks?historyLength=10&contextId=ctx-list", headers=bearer(TEAM_A)).json()
    assert [t["id"] for t in own["tasks"]] == [task.id]
    assert own["tasks"][0]["history"][0]["parts"][0]["text"] == "team a's confidential prompt"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_operation_on_another_namespaces_task_is_task_not_found(shared_agent, transport):
    task = send(shared_agent, TEAM_A, user_message("mine"), transport)
    follow_up = user_message("let me continue your task")
    follow_up.task_id = task.id

    async def go():
        owner = sdk_client(shared_agent, transport, streaming=False, token=TEAM_A)
        stranger = sdk_client(shared_agent, transport, token=TEAM_B)
        try:
            await owner.create_task_push_notification_config(secret_config(task.id))

            async def subscribe():
                async for _ in stranger.subscribe(SubscribeToTaskRequest(id=task.id)):
                    pass

            async def resume():
                async for _ in stranger.send_message(send_request(follow_up)):
                    pass

            attempts = {
                "GetTask": lambda: stranger.get_task(GetTaskRequest(id=task.id)),
                "CancelTask": lambda: stranger.cancel_task(CancelTaskRequest(id=task.id)),
                "SubscribeToTask": subscribe,
                "SendMessage to the task": resume,
                "CreateTaskPushNotificationConfig": lambda: stranger.create_task_push_notification_config(secret_config(task.id, "http://127.0.0.1:9/stranger")),
                "GetTaskPushNotificationConfig": lambda: stranger.get_task_push_notification_config(
                    GetTaskPushNotificationConfigRequest(task_id=task.id, id="hook")
                ),
                "ListTaskPushNotificationConfigs": lambda: stranger.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=task.id)),
                "DeleteTaskPushNotificationConfig": lambda: stranger.delete_task_push_notification_config(
                    DeleteTaskPushNotificationConfigRequest(task_id=task.id, id="hook")
                ),
            }
            for operation, attempt in attempts.items():
                with pytest.raises(TaskNotFoundError):
                    await attempt()
                    pytest.fail(f"{operation} reached another namespace's task")
            # The owner's task and push config are as they were.
            with pytest.raises(TaskNotCancelableError):  # found, and completed
                await owner.cancel_task(CancelTaskRequest(id=task.id))
            configs = await owner.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=task.id))
            return [c.url for c in configs.configs], await owner.get_task(GetTaskRequest(id=task.id))
        finally:
            await owner.close()
            await stranger.close()

    urls, own = run(go())
    assert urls == ["http://127.0.0.1:9/hook"]
    assert [m.parts[0].text for m in own.history] == ["mine"]


def test_holders_of_the_shared_token_are_one_caller_apart_from_every_namespace(shared_agent):
    shared = send(shared_agent, TOKEN, user_message("shared prompt"))
    team = send(shared_agent, TEAM_A, user_message("team prompt"))

    def status(task_id: str, token: str) -> int:
        return httpx.get(f"{shared_agent.interface_url}/tasks/{task_id}", headers=bearer(token)).status_code

    assert status(shared.id, TOKEN) == 200  # as before namespace tokens: all holders of the shared token see its tasks
    assert status(shared.id, TEAM_A) == status(shared.id, TEAM_B) == 404
    assert status(team.id, TOKEN) == status(team.id, TEAM_B) == 404 and status(team.id, TEAM_A) == 200


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_push_config_secrets_are_never_echoed_back(shared_agent, transport):
    task = send(shared_agent, TEAM_A, user_message("hook me"), transport)

    async def go():
        client = sdk_client(shared_agent, transport, streaming=False, token=TEAM_A)
        try:
            created = await client.create_task_push_notification_config(secret_config(task.id))
            got = await client.get_task_push_notification_config(GetTaskPushNotificationConfigRequest(task_id=task.id, id="hook"))
            listed = await client.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=task.id))
            return [created, got, *listed.configs]
        finally:
            await client.close()

    for config in run(go()):
        assert (config.id, config.url, config.authentication.scheme) == ("hook", "http://127.0.0.1:9/hook", "Bearer")
        assert config.token == "" and config.authentication.credentials == ""
    raw = [
        httpx.get(f"{shared_agent.interface_url}/tasks/{task.id}/pushNotificationConfigs", headers=bearer(TEAM_A)),
        httpx.post(shared_agent.interface_url, headers=bearer(TEAM_A), json=jsonrpc("GetTaskPushNotificationConfig", {"taskId": task.id, "id": "hook"})),
        httpx.post(
            shared_agent.interface_url,
            headers=bearer(TEAM_A),
            json=jsonrpc(
                "CreateTaskPushNotificationConfig",
                {
                    "taskId": task.id,
                    "id": "again",
                    "url": "http://127.0.0.1:9/x",
                    "token": "notify-token",
                    "authentication": {"scheme": "Bearer", "credentials": "hook-secret"},
                },
            ),
        ),
    ]
    for response in raw:
        assert response.status_code == 200 and "http://127.0.0.1:9/" in response.text, response.text
        assert "notify-token" not in response.text and "hook-secret" not in response.text


def test_webhooks_of_a_namespaces_task_get_its_secrets_and_whole_artifacts(shared_agent):
    with WebhookReceiver() as hook:
        task = send(shared_agent, TEAM_A, user_message("notify me"), task_push_notification_config=secret_config(url=hook.hook_url))
        wait_until(lambda: any(b"TASK_STATE_COMPLETED" in r["body"] for r in hook.delivered()))
    bodies = [json.loads(r["body"]) for r in hook.delivered()]
    [artifact] = [b["artifactUpdate"]["artifact"] for b in bodies if "artifactUpdate" in b]
    assert "".join(p["text"] for p in artifact["parts"]) == "the answer"  # streamed in chunks, delivered whole
    assert all(b.get("task", {}).get("id", task.id) == task.id for b in bodies)
    for request in hook.delivered():
        assert request["headers"]["authorization"] == "Bearer hook-secret"
        assert request["headers"]["x-a2a-notification-token"] == "notify-token"


def test_a_namespace_naming_another_namespaces_context_id_does_not_get_its_turns(tokens_dir):
    model = ScriptedModel(["noted"])
    with serve(ollama_agent(bearer=True), model_definition(), model, namespace_tokens=TokenDirectory(tokens_dir)) as running:
        send(running, TEAM_A, user_message("my PIN is 4321", context_id="ctx-1"))
        send(running, TEAM_B, user_message("what is my PIN?", context_id="ctx-1"))
        send(running, TEAM_A, user_message("and what was it again?", context_id="ctx-1"))
    _, stranger, owner = (json.dumps(request.messages) for request in model.requests)
    assert "4321" not in stranger
    assert "4321" in owner  # the owner's own follow-up still sees its earlier turn


def test_message_ids_are_each_callers_own(shared_agent):
    mine = send(shared_agent, TEAM_A, user_message("team a's request", message_id="step-1"))
    theirs = send(shared_agent, TEAM_B, user_message("team b's request", message_id="step-1"))
    assert theirs.id != mine.id
    assert [m.parts[0].text for m in theirs.history] == ["team b's request"]
    assert send(shared_agent, TEAM_A, user_message("team a's request", message_id="step-1")).id == mine.id


def test_agent_client_for_a_namespace_calls_with_its_token(shared_agent, tokens_dir, monkeypatch):
    monkeypatch.setenv(TOKENS_DIR_ENV, str(tokens_dir))
    monkeypatch.setenv(TOKEN_ENV, TOKEN)

    async def go():
        async with await AgentClient.connect(shared_agent.url, namespace="team-a") as client:
            result = await client.send("as team a")
            assert (await client.get_task(result.task_id)).succeeded
        for namespace in ("team-b", None):  # another namespace; the shared token
            async with await AgentClient.connect(shared_agent.url, namespace=namespace) as other:
                with pytest.raises(AgentRequestError) as refused:
                    await other.get_task(result.task_id)
                assert refused.value.reason == "TaskNotFoundError"

    run(go())


def test_a_client_sends_its_namespaces_token_else_the_shared_one(tmp_path):
    directory = token_files(tmp_path / "tokens", team_a=TEAM_A)
    (tmp_path / "elsewhere").write_text("not a namespace token")
    env = {TOKENS_DIR_ENV: str(directory), TOKEN_ENV: TOKEN}
    assert client_token("team-a", env) == TEAM_A
    assert client_token("team-b", env) == TOKEN  # no file for team-b
    assert client_token(None, env) == TOKEN
    assert client_token("../elsewhere", env) == TOKEN  # not a namespace name: no path outside the directory
    assert client_token("team-a", {TOKENS_DIR_ENV: str(directory)}) == TEAM_A
    assert client_token("team-b", {TOKENS_DIR_ENV: str(directory)}) is None


def test_a_token_directory_follows_its_volume_and_a_token_given_to_two_identities_identifies_none(tmp_path):
    directory = token_files(tmp_path / "tokens", team_a=TEAM_A)
    (directory / "README").write_text("not a namespace name\n")
    tokens = AgentTokens(TokenSource(value=TOKEN), TokenDirectory(directory, refresh=0))
    assert (tokens.identify(TEAM_A), tokens.identify(TOKEN)) == ("team-a", SHARED_IDENTITY)
    assert tokens.identify(TEAM_B) is None and tokens.identify("not a namespace name") is None
    (directory / "team-b").write_text(TEAM_B)  # a namespace's Secret added to the projected volume
    assert tokens.identify(TEAM_B) == "team-b"
    (directory / "team-a").unlink()
    assert tokens.identify(TEAM_A) is None
    (directory / "team-c").write_text(TEAM_B + "\n")  # one token for two namespaces: which owns its tasks?
    assert tokens.identify(TEAM_B) is None


def test_an_agent_may_accept_namespace_tokens_only(tmp_path, monkeypatch):
    empty = TokenDirectory(token_files(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="AISTACK_AGENT_TOKENS_DIR"):
        create_agent_app(
            ollama_agent(bearer=True), model_definition(), EchoModelBackend(), base_url="http://127.0.0.1:1", options=ServerOptions(namespace_tokens=empty)
        )
    monkeypatch.setenv(TOKENS_DIR_ENV, str(token_files(tmp_path / "tokens", team_a=TEAM_A)))
    with serve_agents([(ollama_agent(bearer=True), model_definition())], backends=lambda a, d: EchoModelBackend()) as [running]:
        ask = jsonrpc("SendMessage", {"message": {"role": "ROLE_USER", "messageId": "m", "parts": [{"text": "hi"}]}})
        ok = httpx.post(running.interface_url, json=ask, headers=bearer(TEAM_A))
        assert ok.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
        assert httpx.post(running.interface_url, json=ask, headers=bearer(TOKEN)).status_code == 401
    assert not local_token_path().exists(), "no local shared token is made where namespace tokens are configured"
