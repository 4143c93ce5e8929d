"""The task_orchestration_watcher DAG end to end with dag.test(): the sensor's trigger runs inline
against the test Kubernetes API server, the REST calls go to Airflow's real API app (in this
process, on 127.0.0.1), and a thread plays the DAG processor for the parse requests it queues.
The generator is the real dags/task_orchestrations.py, found beside the watcher, with its
listing cache off (see the cluster fixture)."""

from __future__ import annotations

import importlib
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aistack.pipelines.submissions import run_id_for
from tests.sensors.orchestrations import Cluster, apply, orchestration

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

GENERATOR = "task_orchestrations.py"


@pytest.fixture(scope="module")
def airflow_api(airflow_db):
    """Airflow's REST API (the real FastAPI app, simple auth manager, everyone admin) on 127.0.0.1."""
    import uvicorn

    env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__SECRET_KEY": "aistack-test-secret-key",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from airflow.api_fastapi.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app("core"), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class DagProcessor:
    """Plays the DAG processor: parses a file when a priority parse request for it is queued."""

    def __init__(self) -> None:
        self.parsed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def parse(bundle_name: str, relative_fileloc: str) -> None:
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

        manager = DagBundlesManager()
        manager.sync_bundles_to_db()
        bundle = manager.get_bundle(bundle_name)
        bag = BundleDagBag(dag_folder=bundle.path / relative_fileloc, bundle_path=bundle.path, bundle_name=bundle_name)
        assert not bag.import_errors, bag.import_errors
        sync_bag_to_db(bag, bundle_name, None)

    def _run(self) -> None:
        from airflow.models.dagbag import DagPriorityParsingRequest
        from airflow.utils.session import create_session
        from sqlalchemy import select

        while not self._stop.wait(0.05):
            with create_session() as session:
                requests = session.scalars(select(DagPriorityParsingRequest)).all()
                todo = [(r.bundle_name, r.relative_fileloc) for r in requests]
                for request in requests:
                    session.delete(request)
            for bundle_name, path in todo:
                self.parse(bundle_name, path)
                self.parsed.append(path)

    def __enter__(self) -> DagProcessor:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def cluster(kube_api, kubectl, repo: Path, airflow_api: str, tmp_path: Path, monkeypatch):
    kubectl("apply", "-f", str(repo / "crds" / "taskorchestration_crd.yaml"))
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "aistack"))
    # And Airflow keeps a DAG's serialized form for 30 s after a write unless told otherwise: a
    # spec change within that time would otherwise run the previous spec.
    monkeypatch.setenv("AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL", "0")
    monkeypatch.setenv("AIRFLOW_CONN_AISTACK_AIRFLOW_API", airflow_api.replace("http://", "http://admin:secret@"))
    from airflow.models.variable import Variable

    Variable.delete("aistack_task_orchestration_watch_rv")
    with DagProcessor() as processor:
        yield Cluster(kube_api), processor


def run_watcher():
    import aistack_airflow.dags.task_orchestration_watcher as module

    run = importlib.reload(module).dag.test()
    return run


def runs_of(dag_id: str) -> list[Any]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id)).all()
        session.expunge_all()
        return runs


def outcomes(run) -> list[dict[str, Any]]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalar(
            select(XComModel.value).where(
                XComModel.dag_id == run.dag_id,
                XComModel.run_id == run.run_id,
                XComModel.task_id == "start_runs",
                XComModel.key == "return_value",
            )
        )
    return json.loads(value) if isinstance(value, str) else value


def dag_input_of(run) -> str:
    """The input text of the DAG version a run was created with: which spec the run runs."""
    from airflow.models.dag_version import DagVersion
    from airflow.utils.session import create_session

    with create_session() as session:
        version = session.get(DagVersion, run.created_dag_version_id)
        return version.serialized_dag.dag.params["input"]


def accepted(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Accepted")


def test_a_submission_starts_one_run_and_an_invalid_one_none(cluster, kubectl):
    objects, processor = cluster
    apply(kubectl, orchestration("watch-qa"), orchestration("watch-broken", cycle=True))
    qa, broken = objects.get("watch-qa"), objects.get("watch-broken")
    uid = qa["metadata"]["uid"]

    watcher = run_watcher()

    assert watcher.state == "success"
    (run,) = runs_of("aistack__default__watch-qa")
    assert run.run_id == run_id_for(uid, 1) == f"k8s__{uid}__g1"
    assert run.conf == {"namespace": "default", "name": "watch-qa", "uid": uid, "generation": 1}
    assert run.state == "queued"
    assert processor.parsed and set(processor.parsed) == {GENERATOR}, "the watcher asked for a parse of the generator"

    status = objects.get("watch-qa")["status"]
    assert status["observedGeneration"] == 1 and status["phase"] == "Pending"
    assert status["dagId"] == "aistack__default__watch-qa" and status["runId"] == run.run_id
    assert status["runUrl"].endswith(f"/dags/aistack__default__watch-qa/runs/{run.run_id}")
    condition = accepted(objects.get("watch-qa"))
    assert (condition["status"], condition["reason"], condition["observedGeneration"]) == ("True", "RunTriggered", 1)

    assert runs_of("aistack__default__watch-broken") == []
    rejected = objects.get("watch-broken")
    assert rejected["status"]["observedGeneration"] == 1
    condition = accepted(rejected)
    assert (condition["status"], condition["reason"]) == ("False", "InvalidSpec")
    assert "cycle" in condition["message"], condition["message"]
    assert broken["metadata"]["uid"] == rejected["metadata"]["uid"]

    results = {(o["name"], o["action"]) for o in outcomes(watcher)}
    assert results == {("watch-qa", "triggered"), ("watch-broken", "rejected")}

    # A new generation: a second run.
    apply(kubectl, orchestration("watch-qa", text="Say goodbye."))
    assert run_watcher().state == "success"
    runs = {r.run_id: r for r in runs_of("aistack__default__watch-qa")}
    assert set(runs) == {f"k8s__{uid}__g1", f"k8s__{uid}__g2"}
    assert runs[f"k8s__{uid}__g2"].conf["generation"] == 2
    assert dag_input_of(runs[f"k8s__{uid}__g1"]) == "Say hello."
    assert dag_input_of(runs[f"k8s__{uid}__g2"]) == "Say goodbye.", "the run is of the DAG parsed from generation 2"
    assert objects.get("watch-qa")["status"]["observedGeneration"] == 2

    # The watcher crashed after starting the run but before recording it: the submission is
    # pending again and reported again, and the deterministic run id refuses a second run.
    objects.api.patch_namespaced_custom_object_status("ai.stack", "v1alpha1", "default", "taskorchestrations", "watch-qa", {"status": {"observedGeneration": 1}})
    again = run_watcher()
    assert [(o["name"], o["action"]) for o in outcomes(again)] == [("watch-qa", "existed")]
    assert len(runs_of("aistack__default__watch-qa")) == 2
    assert objects.get("watch-qa")["status"]["observedGeneration"] == 2


def test_deleting_a_resource_stops_its_runs(cluster, kubectl):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    objects, _ = cluster
    apply(kubectl, orchestration("watch-gone"), orchestration("watch-stays"))
    assert run_watcher().state == "success"
    gone_uid = objects.get("watch-gone")["metadata"]["uid"]
    (gone_run,) = runs_of("aistack__default__watch-gone")
    (stays_run,) = runs_of("aistack__default__watch-stays")
    with create_session() as session:  # the scheduler started one of them
        session.get(DagRun, gone_run.id).state = DagRunState.RUNNING

    kubectl("delete", "taskorchestration", "watch-gone")
    # The deletion happened between two watcher runs: the next sensor replays it from the
    # resourceVersion the last one reached.
    watcher = run_watcher()

    assert watcher.state == "success"
    assert [(o["action"], o["run_id"]) for o in outcomes(watcher)] == [("stopped", f"k8s__{gone_uid}__g1")]
    assert runs_of("aistack__default__watch-gone")[0].state == "failed"
    assert runs_of("aistack__default__watch-stays")[0].state == stays_run.state == "queued"
