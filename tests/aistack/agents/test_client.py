"""The client helpers used by the Airflow operator, its trigger and `aistack run`."""

from __future__ import annotations

import pytest
from a2a.types import Artifact, Message, Part, Role, Task, TaskState, TaskStatus
from google.protobuf import json_format, struct_pb2

from aistack.agents.client import (
    AgentClient,
    AgentRequestError,
    AgentTaskFailed,
    AgentUnavailable,
    SyncAgentClient,
    build_message,
    message_result,
    send_message,
    task_result,
)
from aistack.agents.fakes import FailingModel, ScriptedModel

from .support import model_definition, ollama_agent, run, serve


def test_task_result_is_plain_data():
    task = Task(
        id="t1",
        context_id="c1",
        status=TaskStatus(state=TaskState.TASK_STATE_COMPLETED, message=Message(role=Role.ROLE_AGENT, message_id="m", parts=[Part(text="done")])),
    )
    task.artifacts.append(
        Artifact(artifact_id="a1", name="summary", parts=[Part(text="# Sum", media_type="text/markdown"), Part(text="mary", media_type="text/markdown")])
    )
    task.artifacts.append(
        Artifact(
            artifact_id="a2",
            name="analysis-result",
            parts=[Part(data=json_format.ParseDict({"n": 2, "xs": [1.5, 3]}, struct_pb2.Value()), media_type="application/json")],
        )
    )
    result = task_result(task)
    assert result.to_json() == {
        "state": "TASK_STATE_COMPLETED",
        "taskId": "t1",
        "contextId": "c1",
        "message": "done",
        "artifacts": [
            {"name": "summary", "mediaType": "text/markdown", "text": "# Summary"},
            {"name": "analysis-result", "mediaType": "application/json", "data": {"n": 2, "xs": [1.5, 3]}},
        ],
    }
    assert result.succeeded and result.terminal and result.artifact("summary")["text"] == "# Summary"
    reply = message_result(Message(role=Role.ROLE_AGENT, message_id="m2", context_id="c", parts=[Part(text="hi")]))
    assert reply.artifacts == [{"name": "message", "mediaType": "text/plain", "text": "hi"}]


def test_build_message_with_inputs_metadata_and_artifact_request():
    message = build_message(
        "Summarize",
        inputs=[{"name": "analysis-result", "data": {"k": "v"}}, "more text"],
        metadata={"step": "summarizer"},
        artifact={"name": "summary", "mediaType": "text/markdown"},
        message_id="run-1/summarizer/1",
        context_id="run-1",
    )
    as_json = json_format.MessageToDict(message)
    assert as_json["messageId"] == "run-1/summarizer/1" and as_json["contextId"] == "run-1"
    assert as_json["parts"][1] == {"data": {"k": "v"}, "metadata": {"name": "analysis-result"}, "mediaType": "application/json"}
    assert as_json["metadata"] == {"step": "summarizer", "aistack": {"artifact": {"name": "summary", "mediaType": "text/markdown"}}}
    with pytest.raises(ValueError):
        build_message()


@pytest.mark.parametrize("transport", ["jsonrpc", "rest"])
def test_client_stream_get_cancel_wait_against_the_scripted_fake_model(transport):
    model = ScriptedModel(["red green blue", " ".join(["slow"] * 100)], token_delay=0.01)
    with serve(ollama_agent(), model_definition(), model) as running:

        async def go():
            tokens, events = [], []
            async with await AgentClient.connect(running.url, transport=transport) as client:
                streamed = await client.stream("colors?", on_token=tokens.append, on_event=events.append)
                fetched = await client.get_task(streamed.task_id)
                started = await client.send("long", return_immediately=True)
                cancelled = await client.cancel(started.task_id)
                waited = await client.wait(started.task_id, poll=0.05, raise_on_failure=False)
                with pytest.raises(AgentTaskFailed, match="CANCELED"):
                    await client.wait(started.task_id, poll=0.05)
                with pytest.raises(AgentRequestError) as missing:
                    await client.get_task("no-such-task")
            return tokens, events, streamed, fetched, started, cancelled, waited, missing.value

        tokens, events, streamed, fetched, started, cancelled, waited, missing = run(go())
    assert tokens == ["red ", "green ", "blue"]
    assert streamed.artifacts == fetched.artifacts == [{"name": "output", "mediaType": "text/plain", "text": "red green blue"}]
    assert events[0].HasField("task") and streamed.succeeded
    assert started.state in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING")
    assert cancelled.state == waited.state == "TASK_STATE_CANCELED"
    assert missing.reason == "TaskNotFoundError"


def test_sync_client_and_one_shot_send_to_the_scripted_fake_model():
    with serve(ollama_agent(), model_definition(), ScriptedModel(["sync answer"])) as running:
        with SyncAgentClient(running.url) as client:
            assert client.card.name == "test-agent"
            result = client.send("hi", message_id="sync-1")
            assert result.artifacts[0]["text"] == "sync answer"
            assert client.get_task(result.task_id).succeeded
        assert send_message(running.url, "hi again", transport="rest").succeeded


def test_failing_fake_model_task_raises_with_state_and_message():
    with serve(ollama_agent(), model_definition(), FailingModel()) as running:
        with pytest.raises(AgentTaskFailed) as failed:
            send_message(running.url, "hi")
    assert failed.value.result.state == "TASK_STATE_FAILED"
    assert "fake model failure" in str(failed.value)


def test_unreachable_agent_is_unavailable():
    with pytest.raises(AgentUnavailable, match="agent card"):
        send_message("http://127.0.0.1:9", "hi")
    with serve(ollama_agent(), model_definition(), ScriptedModel()) as running:
        client = SyncAgentClient(running.url)
    with pytest.raises(AgentUnavailable):
        client.send("the agent has stopped")
    client.close()
