"""The TaskOrchestrations page: which phase each resource shows, and the page a browser gets."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from aistack.pipelines.overview import LatestRun, render_html, rows
from aistack.pipelines.source import InvalidOrchestration, Snapshot
from aistack.resources import FieldError, parse_resource

REPO = Path(__file__).resolve().parents[2]


def orchestration(name: str, status: dict | None = None):
    data = copy.deepcopy(yaml.safe_load((REPO / "examples" / "question-answering" / "task.yaml").read_text()))
    data["metadata"]["name"] = name
    if status is not None:
        data["status"] = status
    return parse_resource(data)


def test_the_resource_status_wins_over_airflow_runs_and_unrun_pipelines_say_so():
    snapshot = Snapshot(
        valid=[
            orchestration("from-status", {"phase": "Running", "progress": "1/2", "runId": "r-status", "message": "answer running"}),
            orchestration("from-run"),
            orchestration("never-run"),
        ],
        source="cluster",
    )
    latest = {
        "aistack__default__from-status": LatestRun("r-older", "failed"),
        "aistack__default__from-run": LatestRun("r-7", "success"),
    }
    found = {r.name: r for r in rows(snapshot, latest)}
    assert (found["from-status"].phase, found["from-status"].progress, found["from-status"].run_id) == ("Running", "1/2", "r-status")
    assert (found["from-run"].phase, found["from-run"].run_id) == ("Succeeded", "r-7")
    assert (found["never-run"].phase, found["never-run"].run_id) == ("NotRun", None)
    assert found["never-run"].steps == 2


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
    assert 'href="../dags/aistack__default__qa/runs/manual__1"' in page
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "/srv/&lt;pipelines&gt;" in page
    assert "last good listing" in page


def test_an_empty_source_says_so():
    assert "No TaskOrchestrations." in render_html([], "cluster", False)
