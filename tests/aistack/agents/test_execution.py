"""What the executor does with a message: prompt, options, multi-turn, artifacts, JSON, errors.
The model is a deterministic fake that records what it was asked."""

from __future__ import annotations

import copy
import json
import logging

import httpx
import pytest

from aistack.agents.backend import ModelNotFound, OllamaBackend
from aistack.agents.client import AgentClient, AgentTaskFailed
from aistack.agents.fakes import FailingModel, ScriptedModel
from aistack.agents.limits import DEFAULT_NUM_PREDICT, bounded_schema
from aistack.agents.webhooks import AllowList

from .support import CLASSIFY_SCHEMA, jsonrpc, model_definition, ollama_agent, run, serve

V1 = {"A2A-Version": "1.0"}
CLASSIFIED = {"label": "question", "confidence": 0.9}


def send_all(running, *messages, transport="jsonrpc", **common):
    """Send each message (a str, or a dict of AgentClient.send arguments) in order; return the results."""

    async def go():
        async with await AgentClient.connect(running.url, transport=transport) as client:
            results = []
            for message in messages:
                kwargs = {"text": message} if isinstance(message, str) else dict(message)
                results.append(await client.send(**{**common, **kwargs}))
            return results

    return run(go())


def test_prompt_and_options_from_the_agent_with_the_scripted_fake_model():
    model = ScriptedModel(["ok"])
    agent = ollama_agent(model_config={"temperature": 0.2, "contextWindow": 2048})
    with serve(agent, model_definition(), model) as running:
        [result] = send_all(running, "What is A2A?")
    [request] = model.requests
    assert request.options == {"temperature": 0.2, "num_ctx": 2048, "num_predict": DEFAULT_NUM_PREDICT}
    assert request.format is None
    assert request.messages == ({"role": "user", "content": "What is A2A?"},)
    assert result.artifacts == [{"name": "output", "mediaType": "text/plain", "text": "ok"}]


def test_multi_turn_context_reaches_the_scripted_fake_model():
    model = ScriptedModel(["Nice to meet you, Ada.", "Your name is Ada."])
    with serve(ollama_agent(), model_definition(), model) as running:
        first, second = send_all(running, {"text": "My name is Ada.", "context_id": "conv-1"}, {"text": "What is my name?", "context_id": "conv-1"})
        send_all(running, {"text": "Who am I?", "context_id": "conv-2"})
    assert first.context_id == second.context_id == "conv-1" and first.task_id != second.task_id
    assert list(model.requests[1].messages) == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    assert list(model.requests[2].messages) == [{"role": "user", "content": "Who am I?"}]


def test_data_and_file_inputs_reach_the_scripted_fake_model_readably():
    model = ScriptedModel(["summary"])
    upstream = {"name": "analysis-result", "mediaType": "application/json", "data": {"topics": ["a2a"], "score": 3}}
    notes = {"name": "notes", "mediaType": "text/markdown", "text": "# Notes\nkeep it short"}
    with serve(ollama_agent(), model_definition(), model) as running:
        send_all(running, {"text": "Summarize the analysis.", "inputs": [upstream, notes]})
    prompt = model.requests[0].messages[-1]["content"]
    assert prompt.startswith('Summarize the analysis.\n\nInput \'analysis-result\' (JSON):\n```json\n{\n  "score": 3,\n  "topics": [\n')
    # "score" is an integer again, though protobuf carried a double
    assert prompt.endswith("# Notes\nkeep it short")


def test_json_agent_validates_the_scripted_fake_model_answer():
    model = ScriptedModel(['{"label": "complaint", "confidence": 0.9}'])
    definition = model_definition(json_schema=CLASSIFY_SCHEMA)
    with serve(ollama_agent(role="classifier", capabilities=("classification",)), definition, model) as running:
        [result] = send_all(running, "I was charged twice.")
    assert model.requests[0].format == CLASSIFY_SCHEMA
    assert result.artifacts == [{"name": "output", "mediaType": "application/json", "data": {"label": "complaint", "confidence": 0.9}}]


def test_invalid_json_from_the_scripted_fake_model_is_retried_once_then_fails():
    model = ScriptedModel(["Sure! Here is the label: complaint", '{"label": "angry", "confidence": 2}'])
    definition = model_definition(json_schema=CLASSIFY_SCHEMA)
    with serve(ollama_agent(role="classifier", capabilities=("classification",)), definition, model) as running:
        [result] = send_all(running, "I was charged twice.", raise_on_failure=False)
    assert result.state == "TASK_STATE_FAILED" and result.artifacts == []
    assert "gave no valid JSON after 2 attempts" in result.message
    assert "'angry' is not one of" in result.message and "OllamaModelDefinition 'test-model'" in result.message
    assert len(model.requests) == 2
    retry = model.requests[1].messages
    assert retry[-2] == {"role": "assistant", "content": "Sure! Here is the label: complaint"}
    assert "not valid" in retry[-1]["content"] and "the answer is not JSON" in retry[-1]["content"]


def test_scripted_fake_model_invalid_then_valid_json_completes():
    model = ScriptedModel(["not json", '{"label": "question", "confidence": 0.5}'])
    with serve(ollama_agent(), model_definition(json_schema=CLASSIFY_SCHEMA), model) as running:
        [result] = send_all(running, "Is this a question?")
    assert result.succeeded and result.artifacts[0]["data"]["label"] == "question"


def test_caller_names_the_artifact_and_media_type_scripted_fake_model():
    model = ScriptedModel(['```json\n{"topics": ["x"]}\n```', "# Title", '{"topics": []}'])
    schema = {"type": "object", "required": ["topics"], "properties": {"topics": {"type": "array"}}}
    with serve(ollama_agent(), model_definition(), model) as running:
        as_json, as_markdown, several = send_all(
            running,
            {"text": "Analyze.", "artifact": {"name": "analysis-result", "mediaType": "application/json", "schema": schema}},
            {"text": "Title?", "artifact": {"name": "summary", "mediaType": "text/markdown"}},
            {"text": "Both.", "artifact": [{"name": "data", "mediaType": "application/json"}, {"name": "raw", "mediaType": "text/plain"}]},
        )
    assert model.requests[0].format == bounded_schema(schema)  # a JSON artifact asks for JSON, even from a text agent
    assert as_json.artifacts == [{"name": "analysis-result", "mediaType": "application/json", "data": {"topics": ["x"]}}]
    assert model.requests[1].format is None
    assert as_markdown.artifacts == [{"name": "summary", "mediaType": "text/markdown", "text": "# Title"}]
    assert model.requests[2].format == "json"
    assert several.artifacts == [
        {"name": "data", "mediaType": "application/json", "data": {"topics": []}},
        {"name": "raw", "mediaType": "text/plain", "text": '{"topics": []}'},
    ]


@pytest.mark.parametrize(
    "json_agent, accepted, media_type",
    [
        (False, ["application/json"], "application/json"),  # a text agent answers in JSON when only JSON is accepted
        (False, ["text/markdown; charset=utf-8"], "text/markdown"),
        (True, ["text/plain", "image/png"], "text/plain"),  # a JSON agent's answer, rendered as text
    ],
)
def test_accepted_output_modes_choose_the_artifacts_media_type_scripted_fake_model(json_agent, accepted, media_type):
    model = ScriptedModel([json.dumps(CLASSIFIED)])
    definition = model_definition(json_schema=CLASSIFY_SCHEMA) if json_agent else model_definition()
    with serve(ollama_agent(), definition, model) as running:
        body = jsonrpc(
            "SendMessage", {"message": {"role": "ROLE_USER", "messageId": "m", "parts": [{"text": "classify"}]}, "configuration": {"acceptedOutputModes": accepted}}
        )
        task = httpx.post(running.interface_url, json=body, headers=V1).json()["result"]["task"]
    [artifact] = task["artifacts"]
    assert {part["mediaType"] for part in artifact["parts"]} == {media_type}
    if media_type == "application/json":
        assert artifact["parts"][0]["data"] == CLASSIFIED and model.requests[0].format == "json"
    else:
        assert json.loads("".join(part["text"] for part in artifact["parts"])) == CLASSIFIED


@pytest.mark.parametrize(
    "accepted, artifact, match",
    [
        (["image/png"], None, "accept one of text/plain, text/markdown, application/json"),
        (["text/plain"], {"name": "facts", "mediaType": "application/json"}, "not among the acceptedOutputModes (text/plain)"),
    ],
)
def test_a_request_no_accepted_output_mode_can_serve_is_refused_before_the_scripted_fake_model_runs(accepted, artifact, match):
    model = ScriptedModel()
    message = {"role": "ROLE_USER", "messageId": "m", "parts": [{"text": "hi"}]}
    if artifact is not None:
        message["metadata"] = {"aistack": {"artifact": artifact}}
    with serve(ollama_agent(), model_definition(), model) as running:
        body = jsonrpc("SendMessage", {"message": message, "configuration": {"acceptedOutputModes": accepted}})
        error = httpx.post(running.interface_url, json=body, headers=V1).json()["error"]
        rest = httpx.post(running.url + "/message:send", json=body["params"], headers=V1)
        listed = httpx.get(running.url + "/tasks", headers=V1).json()
    assert error["code"] == -32005 and match in error["message"]  # ContentTypeNotSupported
    assert rest.status_code == 400 and rest.json()["error"]["details"][0]["reason"] == "CONTENT_TYPE_NOT_SUPPORTED"
    assert listed["tasks"] == [] and model.requests == []


def test_failing_fake_model_errors_fail_the_task_with_what_to_fix():
    missing = FailingModel(ModelNotFound("model test-model:1.0.0 is not on the Ollama server: build it"))
    with serve(ollama_agent(), model_definition(), missing) as running:
        [result] = send_all(running, "hi", raise_on_failure=False)
        with pytest.raises(AgentTaskFailed) as failed:
            send_all(running, "hi")
        ready = httpx.get(running.url + "/readyz")
    assert result.state == "TASK_STATE_FAILED"
    assert result.message == "test-agent: model test-model:1.0.0 is not on the Ollama server: build it"
    assert failed.value.result.state == "TASK_STATE_FAILED"
    assert ready.status_code == 503 and "build it" in ready.json()["detail"]


def test_ollama_down_fails_the_task_and_readiness():
    backend = OllamaBackend("test-model:1.0.0", host="http://127.0.0.1:9")
    with serve(ollama_agent(), model_definition(), backend) as running:
        [result] = send_all(running, "hi", raise_on_failure=False)
        ready = httpx.get(running.url + "/readyz")
    assert result.state == "TASK_STATE_FAILED"
    assert "cannot reach Ollama at http://127.0.0.1:9" in result.message and "--ollama-host" in result.message
    assert ready.status_code == 503 and ready.json()["status"] == "not ready"


def test_a_resent_message_id_returns_the_same_task_without_calling_the_fake_model_again():
    model = ScriptedModel(["once"])
    with serve(ollama_agent(), model_definition(), model) as running:
        first, again = send_all(running, {"text": "hi", "message_id": "step-1-attempt"}, {"text": "hi", "message_id": "step-1-attempt"})
        [streamed] = send_all(running, {"text": "hi", "message_id": "other"})
    assert first.task_id == again.task_id and again.succeeded
    assert len(model.requests) == 2 and streamed.task_id != first.task_id


@pytest.mark.parametrize("change", ["parts", "metadata", "push config", "accepted output modes", "context id"])
def test_a_message_id_resent_with_another_request_is_refused_and_the_same_one_gets_its_task(change):
    model = ScriptedModel(["once"])
    first = {"message": {"role": "ROLE_USER", "messageId": "step-1", "parts": [{"text": "hi"}]}}
    changed = copy.deepcopy(first)
    if change == "parts":
        changed["message"]["parts"] = [{"text": "something else"}]
    elif change == "metadata":
        changed["message"]["metadata"] = {"aistack": {"artifact": {"name": "other"}}}
    elif change == "push config":  # once ignored: the earlier task came back and this webhook was never called
        changed["configuration"] = {"taskPushNotificationConfig": {"url": "http://127.0.0.1:9/hook"}}
    elif change == "accepted output modes":
        changed["configuration"] = {"acceptedOutputModes": ["text/markdown"]}
    else:
        changed["message"]["contextId"] = "another-context"
    with serve(ollama_agent(push=True), model_definition(), model, webhook_allow=AllowList.parse("127.0.0.1")) as running:
        task = httpx.post(running.interface_url, json=jsonrpc("SendMessage", first), headers=V1).json()["result"]["task"]
        error = httpx.post(running.interface_url, json=jsonrpc("SendMessage", changed), headers=V1).json()["error"]
        rest = httpx.post(running.url + "/message:send", json=changed, headers=V1)
        retry = {
            "message": {**first["message"], "contextId": task["contextId"]},
            "configuration": {"returnImmediately": True, "historyLength": 0},
        }  # the same request, answered differently
        again = httpx.post(running.interface_url, json=jsonrpc("SendMessage", retry), headers=V1).json()["result"]["task"]
    assert error["code"] == -32602 and "messageId 'step-1' was already sent" in error["message"]  # InvalidParams
    assert "new messageId" in error["message"]
    assert rest.status_code == 400 and rest.json()["error"]["details"][0]["reason"] == "INVALID_PARAMS"
    assert again["id"] == task["id"] and again["status"]["state"] == "TASK_STATE_COMPLETED" and "history" not in again
    assert len(model.requests) == 1


def test_logs_carry_task_and_context_ids(caplog):
    with caplog.at_level(logging.INFO, logger="aistack.agents.executor"), serve(ollama_agent(), model_definition(), ScriptedModel(["ok"])) as running:
        [result] = send_all(running, {"text": "hi", "context_id": "ctx-logs"})
    records = [r for r in caplog.records if getattr(r, "task_id", None) == result.task_id]
    assert {r.getMessage().split(" (")[0] for r in records} >= {"task started", "task completed"}
    assert all(r.context_id == "ctx-logs" and r.agent == "test-agent" for r in records)


QA_SCHEMA = {
    "type": "object",
    "required": ["passed", "score", "issues"],
    "properties": {
        "passed": {"type": "boolean"},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "issues": {"type": "array", "items": {"type": "string"}},
    },
}
SOURCE = "The library stayed open until 21:00 on Tuesdays. Evening visits grew from 38 to 71 a night."


def _qa(work):
    model = ScriptedModel(['{"passed": true, "score": 10, "issues": []}'])
    with serve(ollama_agent(role="qa", capabilities=("quality-check",)), model_definition(json_schema=QA_SCHEMA), model) as running:
        [result] = send_all(
            running,
            {
                "text": "Check the summary.",
                "inputs": [
                    {"name": "input", "mediaType": "text/markdown", "text": SOURCE},
                    {"name": "output", "mediaType": "application/json", "data": work},
                ],
            },
        )
    return result.artifacts[0]["data"]


def test_a_qa_agent_whose_fake_model_always_passes_fails_a_made_up_summary():
    verdict = _qa({"main_points": ["The swimming pool closed for good.", "The library stayed open until 21:00."]})
    assert verdict["passed"] is False and verdict["modelVerdict"] == {"passed": True, "score": 10}
    assert verdict["score"] <= 5
    assert verdict["evidence"]["unsupported"] == ["The swimming pool closed for good."]
    assert any("statements are supported by the source" in issue for issue in verdict["issues"])


def test_a_qa_agent_whose_fake_model_always_passes_fails_a_degenerate_summary():
    verdict = _qa({"main_points": ["items", "type", "array"]})
    assert verdict["passed"] is False
    assert "schema word as content: items" in verdict["evidence"]["degenerate"]


def test_a_qa_agent_passes_grounded_work_when_its_fake_model_does():
    verdict = _qa({"main_points": ["The library stayed open until 21:00 on Tuesdays.", "Evening visits grew from 38 to 71."]})
    assert verdict["passed"] is True and verdict["evidence"]["groundedShare"] == 1.0


def test_a_model_call_that_runs_past_its_time_limit_fails_the_task_and_stops_the_scripted_fake_model(monkeypatch):
    monkeypatch.setenv("AISTACK_MODEL_CALL_TIMEOUT", "0.5")
    model = ScriptedModel(["word " * 200], token_delay=0.05)
    with serve(ollama_agent(), model_definition(), model) as running:
        with pytest.raises(AgentTaskFailed, match=r"did not finish within 0.5s \(the limit of one model call, AISTACK_MODEL_CALL_TIMEOUT\)"):
            send_all(running, "Tell me everything.")
    assert model.closed_early == 1, "the stream was closed: generation stopped"


def test_a_definitions_num_predict_is_the_token_limit_and_none_is_added():
    model = ScriptedModel(["ok"])
    with serve(ollama_agent(), model_definition(parameters={"numPredict": 64}), model) as running:
        send_all(running, "Hi")
    assert "num_predict" not in model.requests[0].options  # the model's own PARAMETER applies on the server


def test_a_stand_in_judges_opinion_is_recorded_not_counted_and_its_quoted_issues_dropped():
    from aistack.agents.client import build_message
    from aistack.agents.verdict import assess, judged

    answer = {"passed": False, "score": 3, "issues": ["The library stayed open until 21:00 on Tuesdays."]}

    def evidence_of(work):
        return assess(build_message("Check.", inputs=[{"name": "input", "text": SOURCE}, {"name": "output", "data": work}]))

    grounded = judged(answer, evidence_of({"points": ["Evening visits grew from 38 to 71."]}), stand_in="llama2 -> smollm2:135m")
    assert grounded["passed"] is True and grounded["issues"] == [] and grounded["modelVerdict"]["counted"] is False
    made_up = judged(answer, evidence_of({"points": ["The pool closed."]}), stand_in="llama2 -> smollm2:135m")
    assert made_up["passed"] is False and made_up["issues"] == made_up["evidence"]["problems"]
    counted = judged(answer, evidence_of({"points": ["Evening visits grew from 38 to 71."]}))
    assert counted["passed"] is False, "a real model's failing opinion counts"
