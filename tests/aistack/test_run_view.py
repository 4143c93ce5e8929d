"""A run's results page: each step's state over its tasks, timings, tokens, model, artifacts as a
person reads them (JSON pretty-printed, Markdown rendered, nothing an agent wrote runs as markup),
the quality verdict with its evidence, links to the task logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from aistack.pipelines.plan import plan
from aistack.pipelines.run_view import RunInfo, TaskRow, render_run, run_view, step_state
from aistack.resources import parse_resource

MANIFEST = {
    "apiVersion": "ai.stack/v1alpha1",
    "kind": "TaskOrchestration",
    "metadata": {"name": "digest", "namespace": "team-a"},
    "spec": {
        "input": {"text": "Summarize."},
        "pipeline": [
            {"name": "summarize", "agentRef": "writer", "forEach": {"fromInput": {"split": "lines"}}, "artifacts": [{"name": "summary", "type": "text/markdown"}]},
            {"name": "facts", "agentRef": "writer", "dependsOn": ["summarize"], "artifacts": [{"name": "facts", "type": "application/json"}]},
            {"name": "check", "agentRef": "checker", "dependsOn": ["facts"], "review": {}},
        ],
    },
}
T0 = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
USAGE = {"model": "writer-model:1.0.0", "digest": "sha256:" + "e" * 64, "promptTokens": 120, "completionTokens": 30, "totalTokens": 150}


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_step_is_as_far_as_its_least_finished_task():
    assert step_state([TaskRow("a", "success"), TaskRow("a", "running", map_index=1)]) == "running"
    assert step_state([TaskRow("a", "success"), TaskRow("a__review", "awaiting_input")]) == "awaiting_input"
    assert step_state([TaskRow("a", "success"), TaskRow("a", "failed", map_index=2)]) == "failed"
    assert step_state([]) == "none" and step_state([TaskRow("a", "success")]) == "success"


def test_the_page_shows_each_step_as_a_person_reads_it():
    pipeline = plan(parse_resource(MANIFEST))
    tasks = [
        TaskRow("summarize__items", "success", 1, -1, _at(0), _at(1)),
        TaskRow("summarize", "success", 1, 0, _at(1), _at(4)),
        TaskRow("summarize", "success", 2, 1, _at(1), _at(6)),
        TaskRow("facts", "success", 1, -1, _at(6), _at(9)),
        TaskRow("check", "success", 1, -1, _at(9), _at(10)),
        TaskRow("check__review", "awaiting_input", 1, -1, _at(10), None),
    ]
    results = {
        "summarize": {
            "state": "TASK_STATE_COMPLETED",
            "artifacts": [{"name": "summary", "mediaType": "text/markdown", "text": "## One\n\n**bold** <script>alert(1)</script> [x](javascript:alert(1))"}],
            "items": [{"index": 0, "label": "a.md", "state": "TASK_STATE_COMPLETED"}, {"index": 1, "label": "b.md", "state": "TASK_STATE_FAILED"}],
            "usage": {"promptTokens": 200, "completionTokens": 40, "totalTokens": 240, "modelSeconds": 3.0, "agentCalls": 2},
        },
        "facts": {
            "state": "TASK_STATE_COMPLETED",
            "taskId": "a2a-facts",
            "artifacts": [{"name": "facts", "mediaType": "application/json", "data": {"n": 1}}],
            "usage": USAGE,
        },
        "check": {
            "state": "TASK_STATE_COMPLETED",
            "artifacts": [
                {
                    "name": "output",
                    "mediaType": "application/json",
                    "data": {"passed": False, "score": 3, "issues": ["cites <nothing>"], "evidence": {"supported": 0}},
                }
            ],
        },
    }
    view = run_view(pipeline, RunInfo(pipeline.dag_id, "manual__1", "running", _at(0)), tasks, results)
    assert [(s.name, s.state, s.attempts) for s in view.steps] == [("summarize", "success", 2), ("facts", "success", 1), ("check", "awaiting_input", 1)]
    assert view.steps[0].seconds == 6.0 and view.steps[2].seconds is None, "a step still waiting has no end"
    assert view.progress == "2/3" and view.usage["totalTokens"] == 390

    page = render_run(view)
    assert "<h1>team-a/digest</h1>" in page and "progress 2/3" in page and "390 tokens" in page
    assert 'http-equiv="refresh"' in page and ">Running<" in page, "a running run says so and reloads"
    assert "<h2>One</h2>" in page and "<strong>bold</strong>" in page, "markdown is rendered"
    assert "<script>" not in page and "&lt;script&gt;" in page and 'href="javascript:' not in page, "and nothing of it runs"
    assert "&quot;n&quot;: 1" in page, "JSON is pretty-printed"
    assert "120 prompt + 30 completion tokens" in page and "model writer-model:1.0.0 (build eeeeeeeeeeee)" in page
    assert "A2A task <code>a2a-facts</code>" in page
    assert "Did not pass" in page and "score 3" in page and "cites &lt;nothing&gt;" in page and "supported" in page
    assert "a.md" in page and "b.md" in page and "2 items" in page
    airflow_run = f"../../../dags/{pipeline.dag_id}/runs/manual__1"
    for task in ("summarize__items", "summarize", "facts", "check", "check__review"):
        assert f'href="{airflow_run}/tasks/{task}"' in page, task

    finished = run_view(pipeline, RunInfo(pipeline.dag_id, "manual__1", "failed", _at(0), _at(20)), tasks, results)
    finished.outputs = ["s3://results/team-a/digest/manual__1/result.json"]
    ended = render_run(finished)
    assert ">Failed<" in ended and 'http-equiv="refresh"' not in ended
    assert "Results written to: <code>s3://results/team-a/digest/manual__1/result.json</code>" in ended


def test_a_run_page_of_a_real_example_shows_every_step(repo: Path):
    import yaml

    document = next(d for d in yaml.safe_load_all((repo / "examples" / "question-answering" / "task.yaml").read_text()) if d["kind"] == "TaskOrchestration")
    pipeline = plan(parse_resource(document))
    view = run_view(pipeline, RunInfo(pipeline.dag_id, "r", "queued"), [], {})
    assert view.progress == f"0/{len(pipeline.steps)}" and all(step.state == "none" for step in view.steps)
    assert all(f"<h2>{step.task_id}</h2>" in render_run(view) for step in pipeline.steps)
