"""TaskOrchestrationDispatcher's decisions, against the test Kubernetes API server and a fake Airflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aistack.kube.watch import DELETED, SUBMITTED, event_for
from aistack.pipelines.submissions import DagNotReady, TaskOrchestrationDispatcher
from tests.sensors.orchestrations import Cluster, orchestration

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeAirflow:
    def __init__(self) -> None:
        self.dags: dict[str, dict[str, Any]] = {}
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        self.parse_requests: list[tuple[str, str]] = []
        self.failed: list[tuple[str, str, str | None]] = []
        self.on_parse = lambda: None

    def request_parse(self, bundle_name: str, relative_fileloc: str) -> bool:
        self.parse_requests.append((bundle_name, relative_fileloc))
        self.on_parse()
        return True

    def get_dag(self, dag_id: str) -> dict[str, Any] | None:
        return self.dags.get(dag_id)

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> bool:
        if (dag_id, run_id) in self.runs:
            return False
        self.runs[(dag_id, run_id)] = {"dag_run_id": run_id, "conf": conf, "state": "queued"}
        return True

    def active_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return [r for (d, _), r in self.runs.items() if d == dag_id and r["state"] in ("queued", "running")]

    def fail_run(self, dag_id: str, run_id: str, note: str | None = None) -> None:
        self.runs[(dag_id, run_id)]["state"] = "failed"
        self.failed.append((dag_id, run_id, note))


@pytest.fixture
def cluster(kube_api, kubectl, repo: Path) -> Cluster:
    kubectl("apply", "-f", str(repo / "crds" / "taskorchestration_crd.yaml"))
    return Cluster(kube_api)


@pytest.fixture
def airflow() -> FakeAirflow:
    return FakeAirflow()


def dispatcher(cluster: Cluster, airflow: FakeAirflow, **kwargs: Any) -> TaskOrchestrationDispatcher:
    return TaskOrchestrationDispatcher(
        objects=cluster.api,
        airflow=airflow,
        trigger_run=airflow.trigger,
        generator=("dags-folder", "task_orchestrations.py"),
        ui_base_url="http://airflow.example/",
        now=lambda: NOW,
        **{"dag_timeout": 0.5, "poll_interval": 0.05, **kwargs},
    )


def test_waits_for_the_dag_of_the_new_generation(cluster: Cluster, airflow: FakeAirflow):
    obj = cluster.create(orchestration("qa"))
    cluster.record("qa")
    obj = cluster.set_text("qa", "v2")
    dag_id = "aistack__default__qa"
    # A parse of generation 1 long after the request: the generation marker decides, not the time.
    airflow.dags[dag_id] = {
        "dag_id": dag_id,
        "params": {"generation": {"value": 1}},
        "is_paused": False,
        "last_parsed_time": (NOW + timedelta(minutes=1)).isoformat(),
    }
    parses = []

    def parse() -> None:  # the second requested parse brings generation 2
        parses.append(1)
        if len(parses) == 2:
            airflow.dags[dag_id].update(params={"generation": {"value": 2}})

    airflow.on_parse = parse

    (outcome,) = dispatcher(cluster, airflow, reparse_interval=0.1, dag_timeout=5).handle([event_for(SUBMITTED, obj)])

    assert (outcome.action, outcome.generation, outcome.run_id) == ("triggered", 2, f"k8s__{obj['metadata']['uid']}__g2")
    assert airflow.parse_requests == [("dags-folder", "task_orchestrations.py")] * 2, "asked again while waiting"
    status = cluster.get("qa")["status"]
    assert status["runUrl"] == f"http://airflow.example/dags/{dag_id}/runs/{outcome.run_id}"
    assert status["observedGeneration"] == 2


def test_without_a_generation_tag_a_parse_after_the_request_counts(cluster: Cluster, airflow: FakeAirflow):
    obj = cluster.create(orchestration("qa"))
    dag_id = "aistack__default__qa"
    airflow.dags[dag_id] = {"dag_id": dag_id, "params": {"input": {"value": "x"}}, "last_parsed_time": (NOW - timedelta(minutes=5)).isoformat()}

    with pytest.raises(DagNotReady, match="did not appear"):
        dispatcher(cluster, airflow).handle([event_for(SUBMITTED, obj)])
    assert airflow.runs == {}, "a DAG parsed before the apply may be of an older spec"
    status = cluster.get("qa")["status"]
    assert "observedGeneration" not in status, "still pending: the next watcher run retries it"
    condition = status["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == ("Accepted", "Unknown", "WaitingForDag")

    airflow.dags[dag_id]["last_parsed_time"] = NOW.isoformat().replace("+00:00", "Z")
    (outcome,) = dispatcher(cluster, airflow).handle([event_for(SUBMITTED, obj)])
    assert outcome.action == "triggered"
    condition = cluster.get("qa")["status"]["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("True", "RunTriggered")


def test_stale_events_are_skipped(cluster: Cluster, airflow: FakeAirflow):
    old = cluster.create(orchestration("qa"))
    cluster.delete("qa")
    gone = dispatcher(cluster, airflow).handle([event_for(SUBMITTED, old)])
    assert [(o.action, o.detail) for o in gone] == [("skipped", "deleted since")]

    cluster.create(orchestration("qa"))  # a namesake with a new uid
    replaced = dispatcher(cluster, airflow).handle([event_for(SUBMITTED, old)])
    assert [(o.action, o.detail) for o in replaced] == [("skipped", "replaced by a new object since")]

    current = cluster.record("qa")
    handled = dispatcher(cluster, airflow).handle([event_for(SUBMITTED, current)])
    assert [o.action for o in handled] == ["skipped"]
    assert airflow.runs == {} and airflow.parse_requests == []


def test_a_deletion_stops_only_that_objects_runs(cluster: Cluster, airflow: FakeAirflow):
    dag_id = "aistack__default__qa"
    airflow.runs[(dag_id, "k8s__old-uid__g1")] = {"dag_run_id": "k8s__old-uid__g1", "conf": {}, "state": "running"}
    airflow.runs[(dag_id, "manual__1")] = {"dag_run_id": "manual__1", "conf": {"uid": "old-uid"}, "state": "queued"}
    airflow.runs[(dag_id, "k8s__new-uid__g1")] = {"dag_run_id": "k8s__new-uid__g1", "conf": {}, "state": "running"}
    airflow.runs[(dag_id, "k8s__old-uid__g0")] = {"dag_run_id": "k8s__old-uid__g0", "conf": {}, "state": "success"}
    event = {"type": DELETED, "namespace": "default", "name": "qa", "uid": "old-uid", "generation": 1, "resourceVersion": "9"}

    outcomes = dispatcher(cluster, airflow).handle([event])

    assert sorted(o.run_id for o in outcomes) == ["k8s__old-uid__g1", "manual__1"]
    assert {r["dag_run_id"]: r["state"] for r in airflow.runs.values()} == {
        "k8s__old-uid__g1": "failed",
        "manual__1": "failed",
        "k8s__new-uid__g1": "running",
        "k8s__old-uid__g0": "success",
    }
    assert airflow.failed[0][2] == "TaskOrchestration default/qa was deleted"
    assert airflow.parse_requests, "the generator is re-parsed so the DAG goes away"
