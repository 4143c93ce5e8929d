"""The parts of `aistack run` that need no model and no Airflow: where output goes, what is run,
the worker's environment, the progress protocol and console, and failing fast on bad files."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from aistack.local import protocol
from aistack.local.airflow_home import AirflowHome, shipped_dag_file
from aistack.local.outputs import aws_configuration, decide
from aistack.local.progress import Console, pipeline_shape
from aistack.local.project import ProjectError, load_project
from aistack.local.runner import RunOutcome
from aistack.pipelines.plan import plan
from aistack.resources import TaskOrchestration
from aistack.resources.validation import validate_paths
from tests.aistack.local.support import REPO, aistack_run

EXAMPLES = REPO / "examples"


def example_plan(name: str):
    (orchestration,) = validate_paths([EXAMPLES / name]).of_kind(TaskOrchestration)
    return plan(orchestration)


# -- output -------------------------------------------------------------------------------


def test_s3_output_is_written_locally_without_an_aws_connection(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "home"))
    target = decide(example_plan("summarization-pipeline"), None, env={}, home=tmp_path)
    assert target.local and target.replaces_s3 and target.forced
    assert target.declared == "s3://ai-results/outputs/"
    assert target.directory == (tmp_path / "home" / "outputs").resolve()
    assert "instead of the declared s3://ai-results/outputs/" in target.describe()
    assert "no AWS connection is configured" in target.describe()


@pytest.mark.parametrize(
    "env, files",
    [
        ({"AIRFLOW_CONN_AWS_DEFAULT": "aws://?region_name=eu-west-1"}, []),
        ({"AWS_ACCESS_KEY_ID": "AKIA..."}, []),
        ({}, [".aws/credentials"]),
    ],
)
def test_s3_output_stays_s3_with_an_aws_connection(tmp_path: Path, env, files):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("[default]\n")
    assert aws_configuration(env, tmp_path)
    target = decide(example_plan("summarization-pipeline"), None, env=env, home=tmp_path)
    assert not target.local and not target.forced
    assert target.describe().startswith("s3://ai-results/outputs/ (AWS access configured by")


def test_output_dir_always_writes_locally(tmp_path: Path):
    for name in ("summarization-pipeline", "question-answering"):
        target = decide(example_plan(name), tmp_path / "out", env={"AWS_PROFILE": "prod"}, home=tmp_path)
        assert target.local and target.forced and target.directory == (tmp_path / "out").resolve()


def test_declared_local_output_uses_the_output_directory(tmp_path: Path):
    target = decide(example_plan("question-answering"), None, env={"AISTACK_OUTPUT_DIR": str(tmp_path / "o")}, home=tmp_path)
    assert target.local and not target.forced and not target.replaces_s3
    assert target.directory == (tmp_path / "o").resolve()


# -- what is run ----------------------------------------------------------------------------


def test_the_project_is_the_orchestration_and_the_agents_its_steps_name():
    project = load_project([EXAMPLES / "summarization-pipeline"])
    assert project.plan.dag_id == "aistack__default__document-analysis"
    assert [agent.name for agent, _ in project.agents] == ["analyzer-agent", "summarizer-agent", "qa-agent"]
    assert [d.model_name for d in project.definitions] == ["analyzer-model:1.0.0", "summarizer-model:1.0.0", "qa-model:1.0.0"]
    assert project.orchestrations_path == (EXAMPLES / "summarization-pipeline").resolve()


def test_a_step_naming_a_missing_agent_is_refused(tmp_path: Path):
    for source in (EXAMPLES / "question-answering").glob("*.yaml"):
        (tmp_path / source.name).write_text(source.read_text().replace("agentRef: qa-agent", "agentRef: checker-agent"))
    with pytest.raises(ProjectError) as caught:
        load_project([tmp_path])
    message = str(caught.value)
    assert 'spec.pipeline[1].agentRef: no OllamaAgent "checker-agent" in namespace "default"' in message
    assert "nothing was started" in message


def test_several_orchestrations_need_a_choice():
    with pytest.raises(ProjectError, match=r"holds \d+ TaskOrchestrations \(.*default/question-answering.*\): choose one with --orchestration NAME"):
        load_project([EXAMPLES])
    chosen = load_project([EXAMPLES], orchestration="question-answering")
    assert chosen.plan.name == "question-answering"
    assert chosen.orchestrations_path == EXAMPLES.resolve()
    with pytest.raises(ProjectError, match='no TaskOrchestration "nope"'):
        load_project([EXAMPLES], orchestration="nope")


def test_pipeline_shapes():
    assert pipeline_shape(example_plan("summarization-pipeline")) == "document-analyzer → summarizer → quality-check"
    assert pipeline_shape(example_plan("multi-model-chat")) == "classify + reply → merge"


def test_the_worker_gets_a_private_airflow_home(tmp_path: Path):
    home = AirflowHome(tmp_path)
    dag_file = home.install_bundle()
    assert dag_file == tmp_path.resolve() / "airflow" / "dags" / "task_orchestrations.py"
    assert dag_file.read_text() == shipped_dag_file().read_text() == (REPO / "dags" / "task_orchestrations.py").read_text()
    written = dag_file.stat().st_mtime_ns
    time.sleep(0.01)
    home.install_bundle()
    assert dag_file.stat().st_mtime_ns == written, "an unchanged DAG file is not rewritten"
    env = home.environment({"AIRFLOW__CORE__DAGS_FOLDER": "/elsewhere", "AIRFLOW_CONN_AWS_DEFAULT": "aws://", "PATH": "/bin"}, tmp_path / "pipelines")
    assert env["AIRFLOW_HOME"] == str(tmp_path.resolve() / "airflow")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path.resolve()}/airflow/airflow.db"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(home.bundle)
    (bundle,) = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    assert bundle["kwargs"]["path"] == str(home.bundle)
    assert env["AISTACK_ORCHESTRATIONS_PATH"] == str(tmp_path / "pipelines")
    assert env["AIRFLOW_CONN_AWS_DEFAULT"] == "aws://" and env["PATH"] == "/bin"


def test_progress_events_round_trip():
    stream = io.StringIO()
    protocol.send(stream, "task", task="summarizer", state="running", attempt=1)
    stream.write("not an event\n")
    protocol.send(stream, "finished", state="success")
    stream.seek(0)
    events = list(protocol.read(stream))
    assert [(e["event"], e.get("task")) for e in events] == [("task", "summarizer"), ("finished", None)]
    assert all(isinstance(e["time"], float) for e in events)


# -- the console ------------------------------------------------------------------------------


def test_the_console_prints_steps_tokens_and_the_result():
    out = io.StringIO()
    console = Console(out, color=False)
    console.step("answer", "running")
    console.token("chat-agent", "About 21\nhours.")
    console.step("answer", "success")
    outcome = RunOutcome(
        True,
        "every step completed",
        "aistack__default__question-answering",
        "manual__1",
        tasks=[{"task": "answer", "state": "success", "attempts": 1, "duration": 1.5}, {"task": "check-answer", "state": "success", "attempts": 2, "duration": 2.0}],
        results={
            "answer": {"artifacts": [{"name": "answer", "mediaType": "text/plain", "text": "About 21 hours."}]},
            "check-answer": {"artifacts": [{"name": "verdict", "mediaType": "application/json", "data": {"passed": True, "score": 9, "issues": []}}]},
        },
        outputs=["/out/result.json"],
        log=Path("/logs/run.log"),
    )
    console.result(example_plan("question-answering"), outcome)
    text = out.getvalue()
    assert "answer               running\n           │ About 21\n           │ hours.\n" in text
    assert "answer               succeeded" in text
    assert "Run manual__1 of default/question-answering succeeded" in text
    assert "check-answer (qa-agent): succeeded in 2.0s, 2 attempts" in text
    assert '      "score": 9,' in text
    assert "Results written to:\n  /out/result.json" in text
    assert "\033[" not in text


# -- the command ------------------------------------------------------------------------------


def test_run_fails_fast_and_clearly_on_a_missing_agent(tmp_path: Path):
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    for source in (EXAMPLES / "question-answering").glob("*.yaml"):
        (pipeline / source.name).write_text(source.read_text().replace("agentRef: qa-agent", "agentRef: checker-agent"))
    home = tmp_path / "home"
    started = time.monotonic()
    run = aistack_run(home, str(pipeline), timeout=60)
    assert run.status == 2, run.explain()
    assert time.monotonic() - started < 20
    assert run.stderr.startswith("aistack run: 1 invalid document(s); nothing was started:")
    assert 'spec.pipeline[1].agentRef: no OllamaAgent "checker-agent" in namespace "default" (did you mean "chat-agent"?)' in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert not (home / "airflow").exists() and not (home / "ollama").exists(), "no Airflow and no model work"


def test_run_refuses_missing_files_and_unreadable_input(tmp_path: Path):
    run = aistack_run(tmp_path / "home", str(tmp_path / "nothing"), timeout=60)
    assert run.status == 2 and "no such file or folder" in run.stderr, run.explain()
    run = aistack_run(tmp_path / "home", str(EXAMPLES / "question-answering"), "--input-file", str(tmp_path / "missing.md"), timeout=60)
    assert run.status == 2 and "cannot read --input-file" in run.stderr, run.explain()


def test_files_instead_of_a_folder():
    qa = EXAMPLES / "question-answering"
    project = load_project([qa / "task.yaml", qa / "agents.yaml", qa / "chat-model.yaml", REPO / "models" / "qa"])
    assert [agent.name for agent, _ in project.agents] == ["chat-agent", "qa-agent"]
    assert project.orchestrations_path == (qa / "task.yaml").resolve(), "only the orchestration's own file is parsed by the DAG file"
