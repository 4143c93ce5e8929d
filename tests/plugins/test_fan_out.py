"""forEach steps through dag.test(): items from the input, an artifact and a folder, run as one
mapped task, gathered in item order for the next step, with the two item-failure rules. The
agents' models are deterministic fakes (an echo and a fake that fails on one item)."""

import json
import os
from datetime import UTC, datetime

import pytest

from aistack.agents.backend import ModelError
from aistack.agents.fakes import EchoModelBackend, ScriptedModel
from tests.plugins.support import outputs_of

pytestmark = pytest.mark.slow

EACH_LINE = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: each-line}
spec:
  input: {text: "first topic\\nsecond topic\\n\\nthird topic\\n"}
  pipeline:
    - name: summarize
      agentRef: chat-agent
      prompt: Summarize the item.
      artifacts: [{name: summary, type: text/plain}]
      forEach: {fromInput: {split: lines}, maxParallel: 2%s}
    - {name: digest, agentRef: chat-agent, dependsOn: [summarize], inputFrom: [{taskRef: summarize, artifactName: summary}], includeInput: false, prompt: Combine.}
"""


def _user_text(request) -> str:
    return "\n".join(m["content"] for m in request.messages if m.get("role") == "user")


def test_each_line_of_the_input_is_one_item_gathered_in_order_fake_models(pipeline):
    run, fakes, outputs = pipeline
    fakes["chat-agent"] = EchoModelBackend()
    dag_run = run(EACH_LINE % "", "aistack__default__each-line")
    assert dag_run.state == "success"
    result = outputs_of(outputs, "each-line")
    gathered = result["steps"]["summarize"]["artifacts"][0]
    assert gathered["name"] == "summary"
    sections = gathered["text"].split("## ")[1:]
    assert [s.splitlines()[0] for s in sections] == ["first topic", "second topic", "third topic"], "item order, labelled"
    assert all(topic in section for topic, section in zip(["first topic", "second topic", "third topic"], sections))
    assert [i["label"] for i in result["steps"]["summarize"]["items"]] == ["first topic", "second topic", "third topic"]
    text = result["steps"]["digest"]["artifacts"][0]["text"]
    assert text.index("first topic") < text.index("second topic") < text.index("third topic"), "the reduce step got every item in order"
    mapped = [ti for ti in dag_run.get_task_instances() if ti.task_id == "summarize"]
    assert sorted(ti.map_index for ti in mapped) == [0, 1, 2] and {ti.state for ti in mapped} == {"success"}


class FailsOnSecond(EchoModelBackend):
    """Fake: echoes, except for the item about the second topic, which fails."""

    async def chat(self, request):
        if "second topic" in _user_text(request):
            raise ModelError("fake failure for the second item")
        async for chunk in super().chat(request):
            yield chunk


def test_a_failed_item_fails_the_step_by_default_fake_models(pipeline):
    run, fakes, outputs = pipeline
    fakes["chat-agent"] = FailsOnSecond()
    dag_run = run(EACH_LINE % "", "aistack__default__each-line")
    assert dag_run.state == "failed"
    states = {(ti.task_id, ti.map_index): ti.state for ti in dag_run.get_task_instances()}
    assert states[("summarize", 1)] == "failed" and states[("summarize", 0)] == states[("summarize", 2)] == "success"
    assert states[("digest", -1)] == "upstream_failed"


def test_continue_reports_the_failed_item_and_goes_on_fake_models(pipeline):
    run, fakes, outputs = pipeline
    fakes["chat-agent"] = FailsOnSecond()
    dag_run = run(EACH_LINE % ", onItemFailure: continue", "aistack__default__each-line")
    assert dag_run.state == "success"
    items = outputs_of(outputs, "each-line")["steps"]["summarize"]["items"]
    states = [(i["label"], i["state"]) for i in items]
    assert states == [("first topic", "TASK_STATE_COMPLETED"), ("second topic", "TASK_STATE_FAILED"), ("third topic", "TASK_STATE_COMPLETED")]
    text = outputs_of(outputs, "each-line")["steps"]["digest"]["artifacts"][0]["text"]
    assert "first topic" in text and "third topic" in text and "second topic" not in text


FROM_ARTIFACT = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: from-artifact}
spec:
  input: {text: "List the planets."}
  pipeline:
    - {name: plan, agentRef: chat-agent, artifacts: [{name: list, type: application/json}]}
    - name: describe
      agentRef: chat-agent
      dependsOn: [plan]
      includeInput: false
      prompt: Describe it.
      forEach: {fromArtifact: {taskRef: plan, artifactName: list, path: "result.planets"}}
"""


def test_items_from_a_json_array_in_an_upstream_artifact_fake_models(pipeline):
    run, fakes, outputs = pipeline
    fakes["chat-agent"] = model = ScriptedModel(['{"result": {"planets": [{"name": "Mercury"}, {"name": "Venus"}]}}', "described"])
    dag_run = run(FROM_ARTIFACT, "aistack__default__from-artifact")
    assert dag_run.state == "success"
    items = outputs_of(outputs, "from-artifact")["steps"]["describe"]["items"]
    assert [i["label"] for i in items] == ["Mercury", "Venus"]
    described = [_user_text(r) for r in model.requests[1:]]
    assert sorted("Mercury" in text for text in described) == [False, True] and sorted("Venus" in text for text in described) == [False, True]


FROM_FOLDER = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: from-folder}
spec:
  input: {text: "unused"}
  schedule: {cron: "@daily"}
  pipeline:
    - name: summarize
      agentRef: chat-agent
      includeInput: false
      prompt: Summarize.
      forEach: {fromStorage: {type: local, prefix: incoming/}}
"""


def test_a_manual_run_takes_every_document_of_its_namespace_folder_fake_models(pipeline, tmp_path):
    """A manual run of a scheduled pipeline has a data interval, but takes every document (a
    scheduled run takes its interval's: tests/airflow_api/test_schedules_standalone.py)."""
    run, fakes, outputs = pipeline
    incoming = tmp_path / "inputs" / "default" / "incoming"
    incoming.mkdir(parents=True)
    for name, day in (("old.txt", 1), ("new.md", 2), ("newer.html", 2), ("future.txt", 3)):
        path = incoming / name
        path.write_text(f"<p>Document {name}</p>" if name.endswith("html") else f"Document {name}.")
        stamp = datetime(2026, 11, day, 12, tzinfo=UTC).timestamp()
        os.utime(path, (stamp, stamp))
    other = tmp_path / "inputs" / "team-b" / "incoming"
    other.mkdir(parents=True)
    (other / "secret.txt").write_text("another namespace's document")
    fakes["chat-agent"] = EchoModelBackend()
    dag_run = run(FROM_FOLDER, "aistack__default__from-folder", logical_date=datetime(2026, 11, 3, tzinfo=UTC))
    assert dag_run.state == "success"
    assert (dag_run.data_interval_start, dag_run.data_interval_end) == (datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    result = outputs_of(outputs, "from-folder")
    assert [i["label"] for i in result["steps"]["summarize"]["items"]] == ["future.txt", "new.md", "newer.html", "old.txt"]
    text = result["steps"]["summarize"]["artifacts"][0]["text"]
    assert "Document new.md." in text and "Document newer.html" in text and "<p>" not in text, "HTML is cleaned to text"
    assert "secret" not in json.dumps(result)


CHUNKED = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: chunked}
spec:
  input: {text: "unused"}
  pipeline:
    - name: summarize
      agentRef: chat-agent
      includeInput: false
      prompt: Summarize.
      forEach: {fromStorage: {type: local, prefix: docs/, chunkTokens: 64}, onItemFailure: continue}
"""


def test_long_documents_become_one_item_per_chunk_and_links_out_are_refused_fake_models(pipeline, tmp_path):
    run, fakes, outputs = pipeline
    docs = tmp_path / "inputs" / "default" / "docs"
    docs.mkdir(parents=True)
    (docs / "long.txt").write_text(" ".join(f"Sentence number {n} of the long document." for n in range(60)))
    (docs / "short.md").write_text("# Short\n\nA short note.")
    (docs / "picture.png").write_bytes(b"\x89PNG")
    secret = tmp_path / "elsewhere.txt"
    secret.write_text("a file outside the pipeline's folder")
    (docs / "link.txt").symlink_to(secret)
    fakes["chat-agent"] = EchoModelBackend()
    dag_run = run(CHUNKED, "aistack__default__chunked")
    assert dag_run.state == "success"
    items = outputs_of(outputs, "chunked")["steps"]["summarize"]["items"]
    labels = [i["label"] for i in items]
    chunks = [label for label in labels if label.startswith("long.txt (")]
    assert len(chunks) >= 3 and chunks[0] == f"long.txt (1/{len(chunks)})", labels
    assert "short.md" in labels and not any("picture" in label for label in labels), "unsupported files are no items"
    link = next(i for i in items if i["label"] == "link.txt")
    assert link["state"] == "TASK_STATE_FAILED", "a link out of the folder is refused, not followed"
    text = outputs_of(outputs, "chunked")["steps"]["summarize"]["artifacts"][0]["text"]
    assert "Sentence number 0 " in text and "Sentence number 59 " in text and "outside" not in text


def test_no_items_skip_the_step_and_the_run_still_publishes_fake_models(pipeline, tmp_path):
    run, fakes, outputs = pipeline
    (tmp_path / "inputs" / "default" / "incoming").mkdir(parents=True)
    dag_run = run(FROM_FOLDER, "aistack__default__from-folder")
    assert dag_run.state == "success"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["summarize__items"] == "success" and states["summarize"] == "skipped" and states["publish"] == "success"
    assert outputs_of(outputs, "from-folder")["steps"]["summarize"] == {"state": "not completed", "artifacts": []}
