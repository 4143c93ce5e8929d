"""The TaskOrchestrations page: which phase each resource shows, and the page a browser gets."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from aistack.pipelines.overview import LatestRun, render_html, rows
from aistack.pipelines.run_view import TaskRow
from aistack.pipelines.source import InvalidOrchestration, Snapshot
from aistack.resources import FieldError, parse_resource

REPO = Path(__file__).resolve().parents[2]


def orchestration(name: str, status: dict | None = None):
    data = copy.deepcopy(yaml.safe_load((REPO / "examples" / "question-answering" / "task.yaml").read_text()))
    data["metadata"]["name"] = name
    if status is not None:
        data["status"] = status
    return parse_resource(data)


def _tasks(**states: str) -> tuple[TaskRow, ...]:
    return tuple(TaskRow(task.replace("_", "-"), state, 1) for task, state in states.items())


def test_the_latest_run_gives_phase_and_progress_and_the_status_only_what_it_knows_of_that_run():
    snapshot = Snapshot(
        valid=[
            orchestration("publishing", {"phase": "Succeeded", "progress": "2/2", "runId": "r-1", "message": "every step completed"}),
            orchestration("rolled-back", {"phase": "RolledBack", "runId": "r-2", "message": "a step failed; removed 2"}),
            orchestration("from-run"),
            orchestration("status-only", {"phase": "Failed", "progress": "1/2", "runId": "r-gone", "message": "answer failed"}),
            orchestration("never-run"),
        ],
        source="cluster",
    )
    latest = {
        "aistack__default__publishing": LatestRun("r-1", "running", _tasks(answer="success", check_answer="success", publish="running")),
        "aistack__default__rolled-back": LatestRun("r-2", "failed", _tasks(answer="failed", check_answer="upstream_failed")),
        "aistack__default__from-run": LatestRun("r-7", "running", _tasks(answer="success", check_answer="running"), None),
    }
    found = {r.name: r for r in rows(snapshot, latest)}
    assert (found["publishing"].phase, found["publishing"].progress) == ("Running", "2/2"), "the phase once the run has ended"
    assert (found["rolled-back"].phase, found["rolled-back"].message) == ("RolledBack", "a step failed; removed 2")
    assert (found["from-run"].phase, found["from-run"].progress, found["from-run"].message) == ("Running", "1/2", "running: check-answer")
    assert (found["status-only"].phase, found["status-only"].progress) == ("Failed", "1/2"), "Airflow has no run of it: its status"
    assert (found["never-run"].phase, found["never-run"].run_id, found["never-run"].steps) == ("NotRun", None, 2)


def test_an_ended_run_shows_its_totals_and_what_did_not_complete():
    snapshot = Snapshot(valid=[orchestration("qa")], source="/srv/pipelines")
    usage = {"promptTokens": 300, "completionTokens": 91, "totalTokens": 391, "modelSeconds": 2.1, "agentCalls": 2}
    (row,) = rows(snapshot, {"aistack__default__qa": LatestRun("r-3", "failed", _tasks(answer="success", check_answer="failed"), usage)})
    assert (row.phase, row.progress, row.tokens, row.message) == ("Failed", "2/2", 391, "did not complete: check-answer")
    page = render_html([row], snapshot.source, False)
    assert "<td>391</td>" in page and 'href="runs/aistack__default__qa/r-3"' in page
    assert 'http-equiv="refresh"' not in page, "nothing is running: no reload"
    (going,) = rows(snapshot, {"aistack__default__qa": LatestRun("r-4", "running", _tasks(answer="running"))})
    assert 'http-equiv="refresh"' in render_html([going], snapshot.source, False), "a running one reloads the page"


def test_invalid_resources_are_listed_by_name_with_their_errors():
    bad = InvalidOrchestration("team-a", "broken", "cluster:team-a/broken", [FieldError("spec.pipeline[0].agentRef", "Field required")])
    found = rows(Snapshot(valid=[orchestration("fine")], invalid=[bad], source="cluster"), {})
    assert [(r.namespace, r.name, r.phase) for r in found] == [("default", "fine", "NotRun"), ("team-a", "broken", "Invalid")]
    assert "agentRef" in found[1].errors[0] and "Field required" in found[1].errors[0]
    assert found[1].to_json()["dagId"] == "aistack__team-a__broken"


def test_the_page_links_to_airflow_and_escapes_what_users_wrote():
    snapshot = Snapshot(
        valid=[orchestration("qa", {"phase": "Failed", "runId": "manual__1", "message": "<script>x</script>"})], source="/srv/<pipelines>", stale=True
    )
    page = render_html(rows(snapshot, {}), snapshot.source, snapshot.stale)
    assert 'href="../dags/aistack__default__qa"' in page
    assert 'href="../dags/aistack__default__qa/runs/manual__1"' in page and 'href="runs/aistack__default__qa/manual__1"' in page
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "/srv/&lt;pipelines&gt;" in page
    assert "last good listing" in page


def test_an_empty_source_says_so():
    assert "No TaskOrchestrations." in render_html([], "cluster", False)
