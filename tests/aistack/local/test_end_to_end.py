"""`aistack run` end to end: the real CLI in a subprocess, the embedded runtime with the real SmolLM2
model, real agents, and the examples' DAGs run by Airflow (DAG.test in the worker process).

The runs share one AISTACK_HOME, so the first pays for the Airflow database and the model builds
and the later ones check that both are reused. Inputs are the examples' own (short) texts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from aistack.agents.profile import AgentProfile
from aistack.local.project import load_project
from aistack.pipelines.plan import PipelinePlan
from aistack.resources.orchestration import StorageType
from tests.aistack.local.support import REPO, Run, aistack_run, stop_standbys
from tests.kubeapi.support import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _pipelines(folder: Path) -> list[str]:
    return [f.read_text() for f in folder.glob("*.yaml") if "kind: TaskOrchestration" in f.read_text()]


# Every example with a pipeline; one that waits for a person's review cannot run unattended (below).
PIPELINES = sorted(folder.name for folder in (REPO / "examples").iterdir() if folder.is_dir() and _pipelines(folder))
REVIEWED = [name for name in PIPELINES if any("\n      review:" in text for text in _pipelines(REPO / "examples" / name))]
EXAMPLES = [name for name in PIPELINES if name not in REVIEWED]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("aistack-run-home")


def check_path(run: Run, plan: PipelinePlan) -> list[str]:
    """Every step ran once and succeeded, each after all its upstream steps; publish after them all.
    Returns the steps in the order they started."""
    events = run.events("task")
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    for event in events:  # a forEach step's items ("<step>[<index>]") count as the step: from the first start to the last end
        task = event["task"].partition("[")[0]
        if event["state"] == "running":
            started[task] = min(started.get(task, event["time"]), event["time"])
        elif event["state"] == "success":
            ended[task] = max(ended.get(task, event["time"]), event["time"])
    for step in plan.steps:
        assert step.task_id in ended, f"{step.task_id} did not succeed:\n{run.explain()}"
        for upstream in step.upstream:
            assert ended[upstream] <= started[step.task_id], f"{step.task_id} started before {upstream} ended"
    assert started["publish"] >= max(ended[s.task_id] for s in plan.steps)
    states = {t["task"]: t["state"] for t in run.finished["tasks"]}
    assert all(states[s.task_id] == "success" for s in plan.steps) and states["publish"] == "success"
    if "rollback" in states:
        assert states["rollback"] == "skipped", "nothing to roll back after a successful run"
    return sorted(started, key=started.get)


def check_artifacts(run: Run, folder: Path) -> dict[str, Any]:
    """Every declared artifact is there, with its media type; JSON ones parse and match their schema
    (the step's own, else the agent's model definition's function schema)."""
    project = load_project([folder])
    agents = {agent.name: AgentProfile.from_resources(agent, definition) for agent, definition in project.agents}
    results = run.finished["results"]
    for step in project.orchestration.spec.pipeline:
        result = results[step.name]
        assert result["state"] == "TASK_STATE_COMPLETED"
        artifacts = {a["name"]: a for a in result["artifacts"]}
        declared = step.artifacts or []
        if not declared:  # the agent's default artifact
            assert list(artifacts) == ["output"]
        for declaration in declared:
            artifact = artifacts[declaration.name]
            assert artifact["mediaType"] == declaration.type.value
            if declaration.type.value == "application/json":
                value = json.loads(json.dumps(artifact["data"]))
                schema = declaration.schema_ or agents[step.agent_ref].schema
                if schema is not None:
                    jsonschema.validate(value, schema)
            else:
                assert artifact["text"].strip(), f"{step.name} returned empty text"
        for artifact in artifacts.values():
            if "data" in artifact and not declared and agents[step.agent_ref].schema is not None:
                jsonschema.validate(artifact["data"], agents[step.agent_ref].schema)
    return results


def check_outputs(run: Run, plan: PipelinePlan, root: Path, results: dict[str, Any]) -> None:
    """publish wrote result.json and result.md under <root>/<namespace>/<name>/<run>/, with every step."""
    outputs = [Path(p) for p in run.finished["outputs"]]
    assert sorted(p.name for p in outputs) == ["result.json", "result.md"]
    folder = root / plan.namespace / plan.name
    for path in outputs:
        assert path.is_file() and folder in path.parents, path
        assert str(path) in run.stdout, "the console says where the results are"
    document = json.loads(next(p for p in outputs if p.suffix == ".json").read_text())
    assert document["runId"] == run.finished["run_id"]
    for step in plan.steps:
        expected = {"state": "completed", "artifacts": results[step.task_id]["artifacts"]}
        if step.for_each:  # and its items, each completed
            expected["items"] = results[step.task_id]["items"]
            assert expected["items"] and all(item["state"] == "TASK_STATE_COMPLETED" for item in expected["items"])
        items = results[step.task_id].get("items") or []
        reused = "cached" in results[step.task_id] or (items and all("cached" in i for i in items))  # no agent call, no usage
        if not reused:
            usage = results[step.task_id]["usage"]  # the embedded runtime's own counts, as Ollama gives them
            assert usage["promptTokens"] > 0 and usage["completionTokens"] > 0
            assert usage["agentCalls"] == len(items) if step.for_each else usage["model"], "a forEach step adds up its items"
            expected["usage"] = usage
        assert document["steps"][step.task_id] == expected
    spent = [document["steps"][s.task_id].get("usage", {}).get("totalTokens", 0) for s in plan.steps]
    assert document["usage"]["totalTokens"] == sum(spent) > 0
    markdown = next(p for p in outputs if p.suffix == ".md").read_text()
    assert all(f"## {s.task_id} (completed)" in markdown for s in plan.steps)


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_example_runs_end_to_end(home: Path, example: str, tmp_path: Path):
    folder = REPO / "examples" / example
    plan = load_project([folder]).plan
    s3 = plan.storage is StorageType.S3
    args = [str(folder)] if s3 else [str(folder), "--output-dir", str(tmp_path / "out")]
    if (folder / "document.md").is_file():  # the document its instruction input is about
        args += ["--input-file", str(folder / "document.md")]
    run = aistack_run(home, *args)
    assert run.status == 0, run.explain()
    assert run.trace is not None and run.trace["dag_id"] == plan.dag_id
    order = check_path(run, plan)
    assert order[-1] in ("publish", "rollback")
    results = check_artifacts(run, folder)
    check_outputs(run, plan, home / "outputs" if s3 else tmp_path / "out", results)
    assert "embedded llama.cpp runtime" in run.stdout
    for step in plan.steps:
        shown = f"{step.task_id}[0]" if step.for_each else step.task_id
        assert shown.ljust(20) + " running" in run.stdout and shown.ljust(20) + " succeeded" in run.stdout
    if s3:
        assert f"instead of the declared s3://{plan.bucket}/{plan.prefix} (local override: no AWS connection is configured" in run.stdout
    if plan.streaming:
        assert "│" in run.stdout, "tokens were streamed to the console"
    assert "Traceback" not in run.stdout + run.stderr
    assert "[info" not in run.stdout and "[info" not in run.stderr, "Airflow's logs stay in the log file"
    log = Path(run.trace["log"])
    assert str(log) in run.stdout and "[DAG TEST] starting task_id=" in log.read_text()
    check_private(home)


@pytest.mark.parametrize("example", REVIEWED)
def test_a_reviewed_example_stops_at_its_review_when_nobody_can_answer_real_model(home: Path, example: str, tmp_path: Path):
    """`aistack run` has nobody to ask: the review fails at once, saying where it can be answered,
    and the pipeline goes on as after a rejection (its condition: failure steps run)."""
    folder = REPO / "examples" / example
    plan = load_project([folder]).plan
    run = aistack_run(home, str(folder), "--output-dir", str(tmp_path / "out"))
    assert run.status == 1, run.explain()
    reviewed = [step for step in plan.steps if step.review]
    states = {t["task"]: t["state"] for t in run.finished["tasks"]}
    for step in reviewed:
        assert states[step.task_id] == "success" and states[step.review_task_id] == "failed"
        assert f"step {step.task_id} needs a person's review, and nobody can answer in this run: run the pipeline under `aistack airflow`" in run.stderr
        assert run.finished["results"][step.task_id]["artifacts"], "the agent's output is kept for the record"
    handlers = [step for step in plan.steps if step.trigger_rule == "one_failed"]
    assert handlers and all(states[step.task_id] == "success" for step in handlers), "the rejection path ran"
    assert "Traceback" not in run.stdout + run.stderr


def check_private(home: Path) -> None:
    """Nothing in the data directory (the Airflow database with every prompt and answer, the logs,
    the outputs, the agents' token) can be read by another local user."""
    harness = {home / "traces", home / "user-home"}  # made by this test's support code, not by aistack
    shared = [
        f"{oct(p.stat().st_mode & 0o777)} {p}"
        for p in [home, *home.rglob("*")]
        if not p.is_symlink() and p.stat().st_mode & 0o077 and not any(p == h or h in p.parents for h in harness)
    ]
    assert not shared, "readable by others:\n" + "\n".join(shared[:20])


def test_input_replaces_the_orchestrations_input_and_the_second_run_reuses_everything(home: Path, tmp_path: Path):
    text = "Question: What colour is the sky on a clear day?\n\nContext: On a clear day the sky over the lake looks blue."
    folder = REPO / "examples" / "question-answering"
    run = aistack_run(home, str(folder), "--input", text, "--output-dir", str(tmp_path / "out"))
    assert run.status == 0, run.explain()
    first = run.trace["model_calls"][0]
    assert first["agent"] == "chat-agent"
    prompt = first["messages"][-1]["content"]
    assert text in prompt and "Apollo" not in prompt, "the entry step got --input, not the orchestration's text"
    assert "input     --input (" in run.stdout
    check_path(run, load_project([folder]).plan)
    assert "first run" not in run.stdout, "the Airflow database is reused"
    assert "built from" not in run.stdout and "chat-model:1.0.0 up to date" in run.stdout, "the models are reused"


def test_the_next_run_takes_the_warm_worker_the_last_one_left_real_model(home: Path, tmp_path: Path):
    folder = REPO / "examples" / "question-answering"
    plan = load_project([folder]).plan
    warm = {"AISTACK_RUN_STANDBY": "120"}
    socket = home / "airflow" / "standby.sock"
    try:
        first = aistack_run(home, str(folder), "--output-dir", str(tmp_path / "out"), env=warm)
        assert first.status == 0 and first.trace["worker"] == "fresh: no standby was waiting", first.explain()
        eventually(socket.exists, 60)  # the run's end started a standby worker
        second = aistack_run(home, str(folder), "--output-dir", str(tmp_path / "out"), env=warm)
        assert second.status == 0, second.explain()
        assert second.trace["worker"] == "standby" and "ready in the warm worker the last run left" in second.stdout
        check_path(second, plan)
        assert second.finished["results"]["answer"]["artifacts"][0]["text"].strip()
        log = Path(second.trace["log"]).read_text()
        assert "[DAG TEST] starting task_id=answer" in log, "the standby's Airflow logs go to the run's log"
        eventually(socket.exists, 60)  # and that run's end the next one
        other = aistack_run(home, str(folder), "--output-dir", str(tmp_path / "out"), env={**warm, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"})
        assert other.status == 0, other.explain()
        assert other.trace["worker"] == "fresh: the standby refused: this standby has another airflow", "a standby of other settings is not used"
    finally:
        stop_standbys(home)


def test_a_second_batch_run_reuses_every_summary_from_the_cache_real_model(home: Path, tmp_path: Path):
    """The batch example twice on the same output store: the second run's items come from the
    cache (the same documents, model build and prompt), without a model call for them."""
    folder = REPO / "examples" / "batch-summarization"
    runs = [aistack_run(home, str(folder), "--output-dir", str(tmp_path / "out")) for _ in range(2)]
    assert [run.status for run in runs] == [0, 0], runs[-1].explain()
    first, second = (run.finished["results"]["summarize"]["items"] for run in runs)
    assert [i["label"] for i in first] == [i["label"] for i in second] and first and not any("cached" in i for i in first)
    assert all(i["cached"] == runs[0].finished["run_id"] for i in second), second
    summarizing = [call for call in runs[1].trace["model_calls"] if "Summarize the document below" in json.dumps(call["messages"])]
    assert not summarizing, "no document was summarized again"
    assert runs[1].finished["results"]["summarize"]["artifacts"] == runs[0].finished["results"]["summarize"]["artifacts"]


IMPOSSIBLE = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: impossible}
spec:
  input: {text: "Say hello."}
  pipeline:
    - name: answer
      agentRef: chat-agent
      retries: 0
      artifacts: [{name: answer, type: application/json, schema: {"not": {}}}]
    - {name: check-answer, agentRef: qa-agent, dependsOn: [answer]}
  errorPolicy: {failureAction: abort}
"""


def test_a_failing_step_fails_the_run_with_its_reason(home: Path, tmp_path: Path):
    for source in (REPO / "examples" / "question-answering").glob("*.yaml"):
        if source.name != "task.yaml":
            (tmp_path / source.name).write_text(source.read_text())
    (tmp_path / "task.yaml").write_text(IMPOSSIBLE)
    run = aistack_run(home, str(tmp_path), "--output-dir", str(tmp_path / "out"))
    assert run.status == 1, run.explain()
    assert run.stderr.startswith("aistack run: the run failed: answer: "), run.explain()
    assert "TASK_STATE_FAILED" in run.stderr and "chat-agent" in run.stderr
    assert "answer               failed" in run.stdout
    assert not [e for e in run.events("task") if e["task"] == "check-answer" and e["state"] == "running"]
    states = {t["task"]: t["state"] for t in run.finished["tasks"]}
    assert states == {"answer": "failed", "check-answer": "upstream_failed", "publish": "upstream_failed"}  # abort: nothing after it runs
    assert run.finished["outputs"] == []
    assert not (tmp_path / "out").exists(), "abort: nothing is published"


def test_keep_running_leaves_the_agents_up_until_interrupted(home: Path, tmp_path: Path):
    import re
    import signal
    import subprocess

    import httpx

    from tests.aistack.local.support import COMMAND, clean_env

    (tmp_path / "user").mkdir()
    text = "Question: How many legs does a spider have?\n\nContext: Spiders have eight legs."
    process = subprocess.Popen(
        [*COMMAND, "run", str(REPO / "examples" / "question-answering"), "--input", text, "--keep-running", "--output-dir", str(tmp_path / "out")],
        cwd=REPO,
        env=clean_env(home, tmp_path / "user"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            found = re.search(r"\(card: (\S+)\)", line)
            if found:
                card = httpx.get(found.group(1), timeout=10)
                assert card.status_code == 200 and card.json()["name"] in ("chat-agent", "qa-agent")
                break
        else:
            raise AssertionError("".join(lines) + process.stderr.read())
        assert any("succeeded in" in line for line in lines)
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, "".join(lines) + rest + errors
    assert "stopping" in rest
    with pytest.raises(httpx.HTTPError):
        httpx.get(found.group(1), timeout=2)
