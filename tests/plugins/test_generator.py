"""The generator: TaskOrchestrations become DAGs (golden structure), and those DAGs run with dag.test()
against real A2A agent servers whose models are deterministic fakes (ScriptedModel / FailingModel)."""

import json
import os
import shutil
from pathlib import Path

import pytest

from aistack.agents.fakes import FailingModel, ScriptedModel
from tests.plugins.support import load_dags, outputs_of

pytestmark = pytest.mark.slow


def test_examples_become_the_expected_dags(repo: Path, monkeypatch, airflow_db):
    dags = load_dags(repo / "examples", monkeypatch)
    analysis = dags["aistack__default__document-analysis"]
    shape = {t.task_id: (sorted(t.upstream_task_ids), t.trigger_rule, t.retries, t.execution_timeout) for t in analysis.tasks}
    from datetime import timedelta

    assert shape == {
        "document-analyzer": ([], "all_success", 2, timedelta(minutes=5)),
        "summarizer": (["document-analyzer"], "all_success", 3, None),
        "quality-check": (["summarizer"], "all_success", 3, None),
        "publish": (["document-analyzer", "quality-check", "summarizer"], "all_done", 0, None),
        "rollback": (["document-analyzer", "publish", "quality-check", "summarizer"], "all_done", 0, None),
    }
    assert analysis.params["input"] == "Analyze and summarize this document"
    assert "aistack" in analysis.tags and "| summarizer | summarizer-agent |" in analysis.doc_md
    chat = dags["aistack__default__multi-model-chat"]
    assert chat.get_task("merge").trigger_rule == "one_success"
    assert chat.get_task("merge").input_from == [("classify", "label"), ("reply", "draft")]
    qa = dags["aistack__default__question-answering"]
    assert qa.get_task("publish").trigger_rule == "all_success", "abort: nothing is published after a failure"


def test_fifty_valid_and_five_broken_resources(tmp_path: Path, repo: Path, monkeypatch, airflow_db):
    source = (repo / "examples" / "question-answering" / "task.yaml").read_text()
    for index in range(50):
        (tmp_path / f"ok-{index}.yaml").write_text(source.replace("name: question-answering", f"name: qa-{index}"))
    for index in range(5):
        broken = source.replace("name: question-answering", f"name: broken-{index}").replace("retries: 1", "retries: -1")
        (tmp_path / f"broken-{index}.yaml").write_text(broken)
    dags = load_dags(tmp_path, monkeypatch)
    assert len(dags) == 55
    broken = [d for d in dags.values() if "invalid" in d.tags]
    assert sorted(d.dag_id for d in broken) == [f"aistack__default__broken-{i}" for i in range(5)]
    assert "spec.pipeline[0].retries: must be greater than or equal to 0" in broken[0].doc_md
    assert all(len(d.tasks) == 3 for d in dags.values() if "invalid" not in d.tags)


# -- runs -------------------------------------------------------------------------------


def test_question_answering_runs_end_to_end_fake_models(pipeline, repo: Path):
    run, fakes, outputs = pipeline
    fakes["chat-agent"] = ScriptedModel(["About 21 and a half hours."])
    fakes["qa-agent"] = ScriptedModel(['{"passed": true, "score": 9, "issues": []}'])
    dag_run = run((repo / "examples" / "question-answering" / "task.yaml").read_text(), "aistack__default__question-answering")
    assert dag_run.state == "success"
    result = outputs_of(outputs, "question-answering")
    assert result["steps"]["answer"]["artifacts"] == [{"name": "answer", "mediaType": "text/plain", "text": "About 21 and a half hours."}]
    verdict = result["steps"]["check-answer"]["artifacts"][0]["data"]
    assert (verdict["passed"], verdict["score"], verdict["issues"]) == (True, 9, [])
    assert verdict["evidence"]["passed"] is True and verdict["evidence"]["supported"] == verdict["evidence"]["statements"] == 1
    assert "About 21 and a half hours." in str(fakes["qa-agent"].requests[0].messages), "inputFrom reached the QA agent"
    assert "Apollo 11" in str(fakes["qa-agent"].requests[0].messages), "the run's input reached the later step too"
    assert "Apollo 11" in str(fakes["chat-agent"].requests[0].messages), "the input reached the entry step"
    markdown = next((outputs / "default" / "question-answering").glob("*/result.md")).read_text()
    assert "## answer (completed)" in markdown


FAILING = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: handled}
spec:
  input: {text: "Classify this."}
  pipeline:
    - {name: classify, agentRef: classifier-agent, artifacts: [{name: label, type: application/json}]}
    - {name: on-failure, agentRef: chat-agent, dependsOn: [classify], condition: failure, prompt: "Apologize."}
  errorPolicy: {failureAction: %s, backoffLimit: 1}
"""


def test_a_failing_step_runs_its_failure_handler_fake_models(pipeline):
    run, fakes, outputs = pipeline
    fakes["classifier-agent"] = FailingModel(RuntimeError("model exploded"))
    fakes["chat-agent"] = ScriptedModel(["Sorry, that did not work."])
    dag_run = run(FAILING % "continue", "aistack__default__handled")
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states == {"classify": "failed", "on-failure": "success", "publish": "success"}
    result = outputs_of(outputs, "handled")
    assert result["steps"]["classify"]["state"] == "not completed"
    assert result["steps"]["on-failure"]["artifacts"][0]["text"] == "Sorry, that did not work."


def test_rollback_removes_what_the_failed_run_published_fake_models(pipeline):
    run, fakes, outputs = pipeline
    fakes["classifier-agent"] = FailingModel(RuntimeError("model exploded"))
    fakes["chat-agent"] = ScriptedModel(["Sorry."])
    dag_run = run(FAILING % "rollback", "aistack__default__handled")
    assert dag_run.state == "failed"
    rollback = dag_run.get_task_instance("rollback")
    removed = rollback.xcom_pull(task_ids="rollback", key="rolled_back")
    assert [key.rsplit("/", 1)[-1] for key in removed] == ["result.json"]
    assert not list((outputs / "default" / "handled").glob("*/result.json")), "published results were removed"


RETRIED = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: flaky}
spec:
  input: {text: "Hello"}
  pipeline:
    - {name: reply, agentRef: chat-agent, retries: 1, timeout: "%s"}
  errorPolicy: {backoffLimit: 1}
"""


def test_a_failed_attempt_is_retried_fake_models(pipeline):
    run, fakes, _ = pipeline
    fakes["chat-agent"] = ScriptedModel([RuntimeError("transient"), "second time lucky"])
    dag_run = run(RETRIED % "1m", "aistack__default__flaky")
    assert dag_run.state == "success"
    ti = dag_run.get_task_instance("reply")
    assert ti.try_number == 2
    assert ti.xcom_pull(task_ids="reply")["artifacts"][0]["text"] == "second time lucky"


def test_a_step_past_its_timeout_is_cancelled_fake_models(pipeline):
    run, fakes, _ = pipeline
    slow = ScriptedModel([" ".join(["slow"] * 400)], token_delay=0.05)
    fakes["chat-agent"] = slow
    dag_run = run(RETRIED.replace("retries: 1", "retries: 0") % "2s", "aistack__default__flaky")
    assert dag_run.state == "failed"
    assert slow.closed_early >= 1, "the agent stopped generating when the step timed out"


@pytest.fixture
def s3(monkeypatch):
    """A real S3 endpoint on 127.0.0.1 (moto in server mode) behind the aws_default connection."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        import httpx

        httpx.post(f"{endpoint}/moto-api/reset")  # moto keeps its state per process: start empty
        monkeypatch.setenv(
            "AIRFLOW_CONN_AWS_DEFAULT",
            json.dumps(
                {
                    "conn_type": "aws",
                    "login": "testing",
                    "password": "testing",
                    "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
                }
            ),
        )
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        client.create_bucket(Bucket="ai-results")
        yield client
    finally:
        server.stop()


def _keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="ai-results").get("Contents", []))


S3_OUTPUT = "  output:\n    storage: {type: s3, bucket: ai-results, prefix: outputs/}\n    format: [{type: application/json}, {type: text/markdown}]\n"


def test_results_are_written_to_s3_fake_models(pipeline, s3):
    run, fakes, _ = pipeline
    fakes["chat-agent"] = ScriptedModel(["Hello from S3."])
    dag_run = run(RETRIED.replace("retries: 1", "retries: 0") % "1m" + S3_OUTPUT, "aistack__default__flaky")
    assert dag_run.state == "success"
    keys = _keys(s3)
    assert [k.rsplit("/", 1)[-1] for k in keys] == ["result.json", "result.md"]
    assert all(k.startswith("outputs/default/flaky/") for k in keys)
    body = json.loads(s3.get_object(Bucket="ai-results", Key=keys[0])["Body"].read())
    assert body["steps"]["reply"]["artifacts"][0]["text"] == "Hello from S3."
    locations = dag_run.get_task_instance("publish").xcom_pull(task_ids="publish")
    assert locations == [f"s3://ai-results/{k}" for k in keys]


def test_rollback_deletes_the_s3_objects_fake_models(pipeline, s3):
    run, fakes, _ = pipeline
    fakes["classifier-agent"] = FailingModel(RuntimeError("model exploded"))
    fakes["chat-agent"] = ScriptedModel(["Sorry."])
    dag_run = run(FAILING % "rollback" + S3_OUTPUT, "aistack__default__handled")
    assert dag_run.state == "failed"
    assert _keys(s3) == []
    removed = dag_run.get_task_instance("rollback").xcom_pull(task_ids="rollback", key="rolled_back")
    assert len(removed) == 2


def test_a_worker_builds_only_the_pipeline_it_runs(repo: Path, monkeypatch, airflow_db):
    from aistack.pipelines import source as orchestration_source
    from aistack_airflow.generator import generate

    monkeypatch.setenv("AISTACK_ORCHESTRATIONS_PATH", str(repo / "examples"))
    snapshot = orchestration_source.load()
    assert list(generate(snapshot, only="aistack__default__question-answering")) == ["aistack__default__question-answering"]
    assert len(generate(snapshot, only="some_other_dag")) == len(snapshot.valid) + 1 > 2, "any other id: every DAG and the index"


def test_abort_fails_the_run_and_publishes_nothing_fake_models(pipeline):
    run, fakes, outputs = pipeline
    fakes["chat-agent"] = FailingModel(RuntimeError("model exploded"))
    manifest = RETRIED.replace("retries: 1", "retries: 0") % "1m" + "  errorPolicy: {failureAction: abort}\n"
    dag_run = run(manifest.replace("  errorPolicy: {backoffLimit: 1}\n", ""), "aistack__default__flaky")
    assert dag_run.state == "failed"
    assert dag_run.get_task_instance("publish").state == "upstream_failed"
    assert not (outputs / "default" / "flaky").exists()


def test_a_skipped_failure_handler_does_not_fail_the_run_fake_models(pipeline):
    run, fakes, outputs = pipeline
    fakes["classifier-agent"] = ScriptedModel(['{"label": "question", "confidence": 0.9}'])
    dag_run = run(FAILING % "continue", "aistack__default__handled")
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states == {"classify": "success", "on-failure": "skipped", "publish": "success"}
    assert dag_run.state == "success"


# -- the cache of validated manifests ---------------------------------------------------------


TASK = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: cached}
spec:
  input: {text: "Hello"}
  pipeline:
    - {name: reply, agentRef: chat-agent, retries: 1}
"""


@pytest.fixture
def counted_validation(monkeypatch) -> list:
    """The documents validated from scratch (not restored from the cache), in order."""
    from aistack.resources import validation

    validated: list = []
    original = validation.parse_resource

    def counting(data):
        validated.append(data["metadata"]["name"])
        return original(data)

    monkeypatch.setattr(validation, "parse_resource", counting)
    return validated


def _cache_files(home: Path) -> list[Path]:
    return sorted((home / "cache").glob("manifests-*.pickle"))


def test_a_reparse_validates_only_the_files_that_changed(tmp_path: Path, monkeypatch, aistack_home: Path, counted_validation: list):
    from aistack.pipelines import source as orchestration_source

    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "a.yaml").write_text(TASK)
    (folder / "b.yaml").write_text(TASK.replace("name: cached", "name: other"))
    (folder / "broken.yaml").write_text(TASK.replace("name: cached", "name: broken").replace("retries: 1", "retries: -1"))
    monkeypatch.setenv("AISTACK_ORCHESTRATIONS_PATH", str(folder))
    cold = orchestration_source.load()
    assert sorted(counted_validation) == ["broken", "cached", "other"] and len(_cache_files(aistack_home)) == 1

    written = _cache_files(aistack_home)[0].stat().st_ino
    warm = orchestration_source.load()
    assert len(counted_validation) == 3, "nothing changed: everything came from the cache"
    assert _cache_files(aistack_home)[0].stat().st_ino == written, "and the cache was not written again"
    assert [o.model_dump() for o in warm.valid] == [o.model_dump() for o in cold.valid]
    assert [(i.name, i.where, i.errors) for i in warm.invalid] == [(i.name, i.where, i.errors) for i in cold.invalid]

    edited = folder / "a.yaml"
    stat = edited.stat()
    edited.write_text(TASK.replace("Hello", "Howdy"))  # same size; the same mtime too: content decides
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert orchestration_source.load().valid[0].spec.input.text == "Howdy"
    assert counted_validation[3:] == ["cached"]


@pytest.mark.parametrize("corrupt", [lambda good: b"", lambda good: b"not a pickle", lambda good: good[: len(good) // 2]], ids=["empty", "foreign", "truncated"])
def test_a_corrupt_cache_is_ignored_and_replaced(tmp_path: Path, monkeypatch, aistack_home: Path, counted_validation: list, corrupt):
    from aistack.pipelines import source as orchestration_source

    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "task.yaml").write_text(TASK)
    monkeypatch.setenv("AISTACK_ORCHESTRATIONS_PATH", str(folder))
    orchestration_source.load()
    (cache,) = _cache_files(aistack_home)
    content = corrupt(cache.read_bytes())
    cache.write_bytes(content)
    assert [o.name for o in orchestration_source.load().valid] == ["cached"]
    assert cache.read_bytes() != content, "rewritten from the fresh validation"
    orchestration_source.load()
    assert counted_validation == ["cached", "cached"]


def test_a_cache_others_can_write_is_not_read(tmp_path: Path, monkeypatch, aistack_home: Path, counted_validation: list):
    from aistack.pipelines import source as orchestration_source

    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "task.yaml").write_text(TASK)
    monkeypatch.setenv("AISTACK_ORCHESTRATIONS_PATH", str(folder))
    orchestration_source.load()
    (cache,) = _cache_files(aistack_home)
    cache.chmod(0o666)
    orchestration_source.load()
    assert counted_validation == ["cached", "cached"], "unpickling runs code: only a private cache is trusted"


def test_parsing_leaves_the_garbage_collector_as_it_was(tmp_path: Path, monkeypatch, airflow_db):
    import gc

    from aistack_airflow.generator import parse

    monkeypatch.setenv("AISTACK_ORCHESTRATIONS_PATH", str(tmp_path))
    (tmp_path / "task.yaml").write_text(TASK)
    assert gc.isenabled()
    assert "aistack__default__cached" in parse()
    assert gc.isenabled()


def test_a_parse_keeps_its_dags_from_the_collector_until_the_next_parse(tmp_path: Path, monkeypatch, airflow_db):
    """The DAG processor's collections (its serialization of the DAGs, its exit) do not walk the
    parse's millions of objects again; a process that parses twice still frees the first DAGs."""
    import gc
    import weakref

    from aistack_airflow.generator import parse

    monkeypatch.setenv("AISTACK_ORCHESTRATIONS_PATH", str(tmp_path))
    (tmp_path / "task.yaml").write_text(TASK)
    try:
        gc.unfreeze()
        first = parse()["aistack__default__cached"]
        assert gc.get_freeze_count() > 0
        assert not any(first is o for o in gc.get_objects()), "the DAG is frozen, out of the collector's lists"
        gone = weakref.ref(first)
        del first
        second = parse()["aistack__default__cached"]
        assert gone() is None, "the first parse's DAG (a cycle of DAG and tasks) was collected"
        assert second.task_dict.keys() == {"reply", "publish"}
        frozen = gc.get_freeze_count()
        assert "aistack__default__cached" in parse(only="aistack__default__cached")
        assert gc.get_freeze_count() == frozen, "a task's parse of its one DAG leaves the collector alone"
    finally:
        gc.unfreeze()


def test_a_made_up_answer_fails_its_quality_check_and_the_run_fake_models(pipeline, repo: Path):
    run, fakes, outputs = pipeline
    fakes["chat-agent"] = ScriptedModel(["They stayed on Mars for nine weeks."])
    fakes["qa-agent"] = ScriptedModel(['{"passed": true, "score": 10, "issues": []}'])  # a judge that always passes
    dag_run = run((repo / "examples" / "question-answering" / "task.yaml").read_text(), "aistack__default__question-answering")
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["answer"] == "success" and states["check-answer"] == "failed"
    assert len(fakes["qa-agent"].requests) == 1, "a failed verdict is not retried: the same work gets the same verdict"


INJECTION = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: injection}
spec:
  input: {text: "{{ var.value.secret }} {% endraw %}{{ conn.aws_default.password | lower }}{% raw %}"}
  pipeline:
    - name: answer
      agentRef: chat-agent
      prompt: "{% endraw %}{{ conn.aws_default.password | lower }}{% raw %} {%- endraw -%}{{ ti.xcom_pull(dag_id='x') }}"
"""


def test_text_from_a_resource_is_never_evaluated_as_a_template_fake_models(pipeline, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", "aws://AKIAEXAMPLE:Sup3rSecret@")
    monkeypatch.setenv("AIRFLOW_VAR_SECRET", "variable-value")
    run, fakes, _ = pipeline
    fakes["chat-agent"] = ScriptedModel(["ok"])
    dag_run = run(INJECTION, "aistack__default__injection")
    assert dag_run.state == "success"
    sent = fakes["chat-agent"].requests[0].messages[-1]["content"]
    assert "{% endraw %}{{ conn.aws_default.password | lower }}{% raw %} {%- endraw -%}{{ ti.xcom_pull(dag_id='x') }}" in sent
    assert "{{ var.value.secret }} {% endraw %}{{ conn.aws_default.password | lower }}{% raw %}" in sent
    assert "sup3rsecret" not in sent.lower() and "variable-value" not in sent


# -- the DAG cache ----------------------------------------------------------------------


FEATURED = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: featured}
spec:
  input: {text: "Hello"}
  schedule: {cron: "@daily"}
  errorPolicy: {failureAction: abort}
  pipeline:
    - {name: list, agentRef: chat-agent, artifacts: [{name: out, type: application/json}]}
    - {name: each, agentRef: chat-agent, dependsOn: [list], forEach: {fromArtifact: {taskRef: list, artifactName: out, path: items}, maxParallel: 2}}
    - {name: kept, agentRef: chat-agent, dependsOn: [list], cache: {ttl: 24h}}
    - {name: reviewed, agentRef: chat-agent, dependsOn: [kept], review: {allowEdit: true}}
    - {name: asks, agentRef: chat-agent, dependsOn: [reviewed], inputRequired: {maxRounds: 2, timeout: 30m}}
"""


@pytest.fixture
def counted_builds(monkeypatch) -> list:
    """The dag_ids built from scratch (not restored from the DAG cache), in order."""
    from aistack_airflow import generator

    built: list = []
    original = generator.build_dag

    def counting(orchestration):
        built.append(orchestration.name)
        return original(orchestration)

    monkeypatch.setattr(generator, "build_dag", counting)
    return built


def _serialized(dags: dict) -> dict:
    from airflow.serialization.serialized_objects import DagSerialization

    return {dag_id: json.dumps(DagSerialization.to_dict(dag), sort_keys=True, default=str) for dag_id, dag in dags.items()}


def test_a_reparse_restores_the_same_dags_from_the_dag_cache(tmp_path: Path, repo: Path, monkeypatch, airflow_db, counted_builds: list):
    folder = tmp_path / "pipelines"
    shutil.copytree(repo / "examples", folder)
    (folder / "featured.yaml").write_text(FEATURED)
    (folder / "broken.yaml").write_text(TASK.replace("name: cached", "name: broken").replace("retries: 1", "retries: -1"))
    built = load_dags(folder, monkeypatch)
    first_builds = list(counted_builds)
    assert "featured" in first_builds and "broken" not in first_builds
    restored = load_dags(folder, monkeypatch)
    assert counted_builds == first_builds, "nothing changed: every pipeline's DAG came from the cache"
    assert restored.keys() == built.keys()
    assert _serialized(restored) == _serialized(built), "what Airflow stores of them is the same"
    featured = restored["aistack__default__featured"]
    assert featured.on_failure_callback is not None and featured.params["input"] == "Hello"

    (folder / "featured.yaml").write_text(FEATURED.replace('"Hello"', '"Howdy"'))
    (folder / "summarization-pipeline" / "task.yaml").unlink()
    again = load_dags(folder, monkeypatch)
    assert counted_builds[len(first_builds) :] == ["featured"], "only the edited resource is built again"
    assert again["aistack__default__featured"].params["input"] == "Howdy"
    assert "aistack__default__document-analysis" not in again

    monkeypatch.setenv("AIRFLOW__CORE__DEFAULT_TASK_RETRIES", "4")  # another configuration: every DAG is built again
    before = len(counted_builds)
    load_dags(folder, monkeypatch)
    assert sorted(counted_builds[before:]) == sorted(name for name in first_builds if name != "document-analysis")


def test_a_restored_dag_runs_end_to_end_fake_models(pipeline, repo: Path, counted_builds: list):
    run, fakes, outputs = pipeline
    fakes["chat-agent"] = ScriptedModel(["About 21 and a half hours."])
    fakes["qa-agent"] = ScriptedModel(['{"passed": true, "score": 9, "issues": []}'])
    manifest = (repo / "examples" / "question-answering" / "task.yaml").read_text()
    assert run(manifest, "aistack__default__question-answering").state == "success"
    restored = run(manifest, "aistack__default__question-answering")
    assert counted_builds == ["question-answering"], "the second run's DAG was restored, not built"
    assert restored.state == "success"
    assert len(list((outputs / "default" / "question-answering").glob("*/result.json"))) == 2
