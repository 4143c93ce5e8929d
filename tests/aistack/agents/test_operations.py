"""Every A2A operation against a real agent server on 127.0.0.1, over JSON-RPC and over HTTP+JSON,
with the a2a-sdk's own client. The model is the deterministic fake ScriptedModel."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from a2a.types import (
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError

from aistack.agents.fakes import ScriptedModel
from aistack.agents.webhooks import AllowList

from .support import jsonrpc, model_definition, ollama_agent, run, sdk_client, send_request, serve, user_message

TRANSPORTS = ["jsonrpc", "rest"]
S = TaskState


@pytest.fixture(scope="module")
def model():
    return ScriptedModel(["Paris is the capital of France."])


@pytest.fixture(scope="module")
def agent(model):
    agent = ollama_agent(endpoint="/api/v1/agent", push=True)
    with serve(agent, model_definition(), model, webhook_allow=AllowList.parse("127.0.0.1")) as running:
        yield running


def kinds(events) -> list[str]:
    return [e.WhichOneof("payload") for e in events]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_send_message_returns_the_completed_task_with_a_scripted_fake_model(agent, transport):
    async def go():
        client = sdk_client(agent, transport, streaming=False)
        [response] = [r async for r in client.send_message(send_request(user_message("Capital of France?")))]
        await client.close()
        return response

    task = run(go()).task
    assert task.status.state == S.TASK_STATE_COMPLETED
    assert task.status.timestamp.ToJsonString().endswith("Z")
    [artifact] = task.artifacts
    assert artifact.name == "output"
    assert "".join(p.text for p in artifact.parts) == "Paris is the capital of France."
    assert {p.media_type for p in artifact.parts} == {"text/plain"}
    assert task.history[0].parts[0].text == "Capital of France?"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_streaming_event_order_with_the_scripted_fake_model(agent, transport):
    async def go():
        client = sdk_client(agent, transport)
        events = [r async for r in client.send_message(send_request(user_message("Capital?")))]
        await client.close()
        return events

    events = run(go())
    assert kinds(events)[:2] == ["task", "status_update"]
    assert events[0].task.status.state == S.TASK_STATE_SUBMITTED
    assert events[1].status_update.status.state == S.TASK_STATE_WORKING
    chunks = [e.artifact_update for e in events if e.HasField("artifact_update")]
    assert kinds(events) == ["task", "status_update"] + ["artifact_update"] * len(chunks) + ["status_update"]
    assert len(chunks) == 6  # one per token of the scripted reply
    assert [c.append for c in chunks] == [False] + [True] * 5
    assert [c.last_chunk for c in chunks] == [False] * 5 + [True]
    assert len({c.artifact.artifact_id for c in chunks}) == 1 and chunks[0].artifact.name == "output"
    assert "".join(c.artifact.parts[0].text for c in chunks) == "Paris is the capital of France."
    assert events[-1].status_update.status.state == S.TASK_STATE_COMPLETED


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_get_task_and_list_tasks(agent, transport):
    async def go():
        client = sdk_client(agent, transport, streaming=False)
        context = f"ctx-{transport}"
        ids = []
        for text in ("one", "two", "three"):
            [r] = [r async for r in client.send_message(send_request(user_message(text, context_id=context)))]
            ids.append(r.task.id)
        got = await client.get_task(GetTaskRequest(id=ids[0], history_length=1))
        listed = await client.list_tasks(ListTasksRequest(context_id=context, include_artifacts=True))
        paged = await client.list_tasks(ListTasksRequest(context_id=context, page_size=2))
        following = await client.list_tasks(ListTasksRequest(context_id=context, page_size=2, page_token=paged.next_page_token))
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id="no-such-task"))
        await client.close()
        return ids, got, listed, paged, following

    ids, got, listed, paged, following = run(go())
    assert got.id == ids[0] and got.status.state == S.TASK_STATE_COMPLETED and len(got.history) == 1
    assert sorted(t.id for t in listed.tasks) == sorted(ids) and listed.total_size == 3
    assert all(t.artifacts for t in listed.tasks)
    assert len(paged.tasks) == 2 and paged.next_page_token
    assert {t.id for t in paged.tasks} | {t.id for t in following.tasks} == set(ids)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_subscribe_to_a_task_of_the_slow_scripted_fake_model(transport):
    model = ScriptedModel(["a b c d e f g h"], token_delay=0.08)
    with serve(ollama_agent(), model_definition(), model) as running:

        async def go():
            client = sdk_client(running, transport)
            unary = sdk_client(running, transport, streaming=False)
            [r] = [r async for r in unary.send_message(send_request(user_message("go"), return_immediately=True))]
            events = [e async for e in client.subscribe(SubscribeToTaskRequest(id=r.task.id))]
            await client.close()
            await unary.close()
            return r.task, events

        task, events = run(go())
    assert task.status.state in (S.TASK_STATE_SUBMITTED, S.TASK_STATE_WORKING)
    assert kinds(events)[0] == "task" and events[0].task.id == task.id
    assert "artifact_update" in kinds(events)
    assert events[-1].status_update.status.state == S.TASK_STATE_COMPLETED


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cancel_mid_stream_stops_the_scripted_fake_model(transport):
    model = ScriptedModel([" ".join(f"w{i}" for i in range(200))], token_delay=0.02)
    with serve(ollama_agent(), model_definition(), model) as running:

        async def go():
            client = sdk_client(running, transport)
            other = sdk_client(running, transport, streaming=False)
            events, task_id, cancelled = [], None, None
            async for event in client.send_message(send_request(user_message("long answer"))):
                events.append(event)
                if event.HasField("task"):
                    task_id = event.task.id
                chunks = sum(e.HasField("artifact_update") for e in events)
                if chunks == 3 and cancelled is None:
                    cancelled = await other.cancel_task(CancelTaskRequest(id=task_id))
            final = await other.get_task(GetTaskRequest(id=task_id))
            with pytest.raises(TaskNotCancelableError):
                await other.cancel_task(CancelTaskRequest(id=task_id))
            await client.close()
            await other.close()
            return events, cancelled, final

        events, cancelled, final = run(go())
        assert model.stopped.wait(5), "the model stream was not closed"
    assert cancelled.status.state == S.TASK_STATE_CANCELED
    assert final.status.state == S.TASK_STATE_CANCELED
    assert "generation stopped" in final.status.message.parts[0].text
    assert events[-1].status_update.status.state == S.TASK_STATE_CANCELED
    assert model.closed_early == 1 and model.tokens_sent < 20


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_push_notification_config_crud(agent, transport):
    async def go():
        client = sdk_client(agent, transport, streaming=False)
        [r] = [r async for r in client.send_message(send_request(user_message("hi")))]
        task_id = r.task.id
        created = await client.create_task_push_notification_config(
            TaskPushNotificationConfig(task_id=task_id, id="hook-1", url="http://127.0.0.1:9/hook", token="t1")
        )
        got = await client.get_task_push_notification_config(GetTaskPushNotificationConfigRequest(task_id=task_id, id="hook-1"))
        listed = await client.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=task_id))
        await client.delete_task_push_notification_config(DeleteTaskPushNotificationConfigRequest(task_id=task_id, id="hook-1"))
        after = await client.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=task_id))
        with pytest.raises(TaskNotFoundError):
            await client.create_task_push_notification_config(TaskPushNotificationConfig(task_id="nope", url="http://127.0.0.1:9/"))
        await client.close()
        return created, got, listed, after

    created, got, listed, after = run(go())
    assert (created.id, created.url, created.token) == ("hook-1", "http://127.0.0.1:9/hook", "")  # never echoed (test_identity)
    assert got == created
    assert [c.id for c in listed.configs] == ["hook-1"]
    assert list(after.configs) == []


def test_push_config_ops_are_refused_when_the_agent_has_no_push_notifications():
    with serve(ollama_agent(push=False), model_definition(), ScriptedModel()) as running:
        response = httpx.post(
            running.interface_url,
            headers={"A2A-Version": "1.0"},
            json=jsonrpc("CreateTaskPushNotificationConfig", {"taskId": "t", "url": "http://example.com/hook"}),
        )
        assert response.json()["error"]["code"] == -32003  # PushNotificationNotSupported


@pytest.mark.parametrize("trailing", ["", "/"])
def test_jsonrpc_endpoint_accepts_a_trailing_slash(agent, trailing):
    response = httpx.post(agent.interface_url + trailing, headers={"A2A-Version": "1.0"}, json=jsonrpc("GetTask", {"id": "missing"}))
    assert response.status_code == 200
    assert response.json()["error"]["code"] == -32001  # TaskNotFound: the request reached the handler


def test_get_extended_agent_card_is_answered_per_spec(agent):
    rpc = httpx.post(agent.interface_url, headers={"A2A-Version": "1.0"}, json=jsonrpc("GetExtendedAgentCard", {}))
    assert "does not support authenticated extended cards" in rpc.json()["error"]["message"]
    rest = httpx.get(agent.interface_url + "/extendedAgentCard", headers={"A2A-Version": "1.0"})
    assert rest.status_code == 400 and rest.headers["content-type"].startswith("application/")


def test_rest_responses_use_the_a2a_media_type(agent):
    response = httpx.get(agent.interface_url + "/tasks", headers={"A2A-Version": "1.0"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/a2a+json"


def test_many_concurrent_sends_to_the_scripted_fake_model(agent):
    async def go():
        client = sdk_client(agent, "jsonrpc", streaming=False)

        async def one(i):
            [r] = [r async for r in client.send_message(send_request(user_message(f"q{i}")))]
            return r.task.status.state

        states = await asyncio.gather(*(one(i) for i in range(20)))
        await client.close()
        return states

    assert set(run(go())) == {S.TASK_STATE_COMPLETED}


def test_streaming_is_refused_when_the_agent_does_not_stream():
    from aistack.agents.client import send_message

    with serve(ollama_agent(streaming=False), model_definition(), ScriptedModel(["plain"])) as running:
        body = jsonrpc("SendStreamingMessage", {"message": {"role": "ROLE_USER", "messageId": "m", "parts": [{"text": "hi"}]}})
        error = httpx.post(running.interface_url, json=body, headers={"A2A-Version": "1.0"}).json()["error"]
        assert error["code"] == -32004 and "Streaming is not supported" in error["message"]
        assert send_message(running.url, "hi").artifacts[0]["text"] == "plain"  # the client falls back to SendMessage
