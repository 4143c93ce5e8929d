"""What each agent call cost, through dag.test() against real A2A agent servers whose models are
deterministic fakes (their token counts are the fakes' own, as a real model's are its own): the
step's XCom result, its status node (counts and durations only), its log's last line, result.json
and the run's totals; and every artifact as an XCom of its own name."""

import json

import pytest

from aistack.agents.fakes import ScriptedModel
from aistack.pipelines import status
from tests.plugins.support import outputs_of

pytestmark = pytest.mark.slow

PIPELINE = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: costed}
spec:
  input: {text: "How long did they stay on the Moon?"}
  pipeline:
    - {name: answer, agentRef: chat-agent, artifacts: [{name: answer, type: text/plain}]}
    - {name: check, agentRef: summarizer-agent, dependsOn: [answer], includeInput: false}
"""
DAG_ID = "aistack__default__costed"
DIGEST = "sha256:" + "d" * 64


@pytest.fixture
def patches(monkeypatch) -> list[dict]:
    """The status patches the run writes (recorded instead of sent: no cluster here)."""
    written: list[dict] = []
    monkeypatch.setattr(status.RunReporter, "_write", lambda self, patch, event: written.append(patch))
    return written


def test_every_step_reports_its_tokens_times_and_model_build_fake_models(pipeline, patches, capfd):
    run, fakes, outputs = pipeline
    fakes["chat-agent"] = ScriptedModel(["They stayed twenty one hours."], build=DIGEST)
    fakes["summarizer-agent"] = ScriptedModel(['{"summary": "A short stay."}'])
    dag_run = run(PIPELINE, DAG_ID)
    assert dag_run.state == "success"

    answer = dag_run.get_task_instance("answer")
    result = answer.xcom_pull(task_ids="answer")
    usage = result["usage"]
    assert usage["model"] == "chat-model:1.0.0" and usage["digest"] == DIGEST
    assert usage["completionTokens"] == 5, "the model's own count: five tokens streamed"
    assert usage["promptTokens"] > 5 and usage["totalTokens"] == usage["promptTokens"] + 5
    assert usage["modelCalls"] == 1 and usage["attempt"] == 1
    assert 0 <= usage["timeToFirstTokenSeconds"] <= usage["modelSeconds"] <= usage["durationSeconds"]
    assert answer.xcom_pull(task_ids="answer", key="answer") == "They stayed twenty one hours.", "the artifact under its own name"
    assert dag_run.get_task_instance("check").xcom_pull(task_ids="check", key="output") == {"summary": "A short stay."}

    logged = capfd.readouterr().out  # the task logs, as dag.test() prints them
    shown = [line.split("] ", 1)[1] for line in logged.splitlines() if "] usage: " in line]
    assert len(shown) == 2 and shown[0].startswith(f"usage: {usage['promptTokens']} prompt + 5 completion tokens, first token ")
    assert "model chat-model:1.0.0 (build dddddddddddd), attempt 1" in shown[0]

    nodes = [p["nodes"]["answer"] for p in patches if "answer" in p.get("nodes", {}) and p["nodes"]["answer"]["phase"] == "Succeeded"]
    assert nodes[-1]["usage"] == {k: v for k, v in usage.items() if k != "agentCalls"}, "the node has the counts and durations"
    assert "They stayed" not in json.dumps(patches), "never the content"
    finished = next(p for p in patches if "finishedAt" in p)
    checked = dag_run.get_task_instance("check").xcom_pull(task_ids="check")["usage"]
    expected = {
        "promptTokens": usage["promptTokens"] + checked["promptTokens"],
        "completionTokens": 5 + checked["completionTokens"],
        "totalTokens": usage["totalTokens"] + checked["totalTokens"],
        "agentCalls": 2,
    }
    assert {k: finished["usage"][k] for k in expected} == expected
    assert finished["usage"]["modelSeconds"] == pytest.approx(usage["modelSeconds"] + checked["modelSeconds"], abs=1e-3)

    document = outputs_of(outputs, "costed")
    assert document["usage"] == finished["usage"] and document["steps"]["answer"]["usage"] == nodes[-1]["usage"]
