"""Resuming a failed run: the clearTaskInstances request, the refusals, `aistack resume`, and the
ai.stack/resume annotation acted on once (the test Kubernetes API server, a recorded Airflow REST
server on 127.0.0.1 that plays the few endpoints a resume calls)."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aistack.cli import main
from aistack.kube.watch import RESUME, ResourceWatch, collect_batch, resume_event
from aistack.pipelines.airflow_rest import AirflowAPI
from aistack.pipelines.resume import NOTE, ResumeRefused, clear_body, resume_run
from aistack.pipelines.status import RunReporter
from aistack.pipelines.submissions import PLURAL, RESUME_ANNOTATION, TaskOrchestrationDispatcher, is_pending, resume_request
from tests.aistack.agents.support import ThreadedServer
from tests.sensors.orchestrations import Cluster, orchestration

pytestmark = pytest.mark.timeout(60)

DAG_ID = "aistack__default__qa"
FAILED = "manual__2026-03-01T12:00:00+00:00"
OLDER = "manual__2026-03-01T09:00:00+00:00"


def ti(task_id: str, state: str | None, map_index: int = -1, try_number: int = 1) -> dict[str, Any]:
    return {"task_id": task_id, "map_index": map_index, "state": state, "try_number": try_number, "note": None}


class RecordedAirflow(ThreadedServer):
    """Fake: Airflow's REST endpoints that a resume calls, over runs kept in memory; records each request.

    A clear resets the named task instances and every task instance of the tasks ``after`` them,
    and queues the run, as Airflow's clearTaskInstances with include_downstream does.
    """

    def __init__(self) -> None:
        self.dags = {DAG_ID}
        self.runs: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, list[dict[str, Any]]] = {}
        self.after = {"second": ["publish"], "each": ["publish"]}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        routes = [
            Route("/auth/token", self.token, methods=["POST"]),
            Route("/api/v2/dags/{dag_id}/details", self.dag),
            Route("/api/v2/dags/{dag_id}/dagRuns", self.list_runs),
            Route("/api/v2/dags/{dag_id}/dagRuns/{run_id}", self.run),
            Route("/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", self.task_instances),
            Route("/api/v2/dags/{dag_id}/clearTaskInstances", self.clear, methods=["POST"]),
        ]
        super().__init__(Starlette(routes=routes))

    def add_run(self, run_id: str, state: str, tasks: list[dict[str, Any]], ended: str = "2026-03-01T12:05:00Z") -> None:
        self.runs[run_id] = {"dag_run_id": run_id, "dag_id": DAG_ID, "state": state, "end_date": ended}
        self.tasks[run_id] = tasks

    def clears(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"].endswith("/clearTaskInstances")]

    async def _record(self, request: Request) -> dict[str, Any]:
        body = json.loads(await request.body() or b"null")
        with self.lock:
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "params": list(request.query_params.multi_items()),
                    "body": body,
                    "headers": dict(request.headers),
                }
            )
        return body

    async def token(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        return JSONResponse({"access_token": f"token-of-{body['username']}-{body['password']}"})

    async def dag(self, request: Request) -> JSONResponse:
        await self._record(request)
        found = request.path_params["dag_id"] in self.dags
        return JSONResponse({"dag_id": request.path_params["dag_id"]} if found else {"detail": "not found"}, status_code=200 if found else 404)

    async def list_runs(self, request: Request) -> JSONResponse:
        await self._record(request)
        if request.path_params["dag_id"] not in self.dags:
            return JSONResponse({"detail": "not found"}, status_code=404)
        runs = [r for r in self.runs.values() if r["state"] in request.query_params.getlist("state")]
        assert request.query_params["order_by"] == "-end_date"
        runs.sort(key=lambda r: r["end_date"], reverse=True)
        return JSONResponse({"dag_runs": runs[: int(request.query_params["limit"])], "total_entries": len(runs)})

    async def run(self, request: Request) -> JSONResponse:
        await self._record(request)
        run = self.runs.get(request.path_params["run_id"]) if request.path_params["dag_id"] in self.dags else None
        return JSONResponse(run or {"detail": "not found"}, status_code=200 if run else 404)

    async def task_instances(self, request: Request) -> JSONResponse:
        await self._record(request)
        tasks = self.tasks.get(request.path_params["run_id"], [])
        return JSONResponse({"task_instances": tasks, "total_entries": len(tasks)})

    async def clear(self, request: Request) -> JSONResponse:
        from airflow.api_fastapi.core_api.datamodels.task_instances import ClearTaskInstancesBody

        body = await self._record(request)
        ClearTaskInstancesBody.model_validate(body)  # Airflow's own schema: no unknown or misspelt field
        run_id = body["dag_run_id"]
        if run_id not in self.runs:
            return JSONResponse({"detail": "not found"}, status_code=404)
        named = [m if isinstance(m, str) else tuple(m) for m in body["task_ids"]]
        after = {t for m in named for t in self.after.get(m if isinstance(m, str) else m[0], [])}
        chosen = [t for t in self.tasks[run_id] if t["task_id"] in named or (t["task_id"], t["map_index"]) in named or t["task_id"] in after]
        for task in chosen:
            task.update(state=None, note=body["note"])
        self.runs[run_id]["state"] = "queued"
        return JSONResponse({"task_instances": chosen, "total_entries": len(chosen)})


@pytest.fixture
def airflow() -> Any:
    with RecordedAirflow() as server:
        server.add_run(
            FAILED,
            "failed",
            [
                ti("first", "success"),
                ti("each", "success", 0),
                ti("each", "failed", 1),
                ti("second", "failed"),
                ti("third", "upstream_failed"),
                ti("publish", "failed"),
            ],
        )
        server.add_run(OLDER, "failed", [ti("first", "failed"), ti("publish", "failed")], ended="2026-03-01T09:05:00Z")
        yield server


# -- the request -----------------------------------------------------------------------


def test_a_resume_clears_the_failed_tasks_and_what_follows_not_what_succeeded(airflow: RecordedAirflow):
    with AirflowAPI(airflow.url) as api:
        resumed = resume_run(api, DAG_ID, FAILED)

    assert airflow.clears() == [
        {
            "dag_run_id": FAILED,
            "task_ids": [["each", 1], "second", "third", "publish"],
            "include_downstream": True,
            "include_upstream": False,
            "only_failed": False,
            "reset_dag_runs": True,
            "dry_run": False,
            "note": NOTE,
        }
    ]
    assert resumed.cleared == ("each[1]", "publish", "second", "third"), "first and item 0 succeeded: kept"
    assert (resumed.run_id, resumed.earlier) == (FAILED, False)
    assert airflow.runs[FAILED]["state"] == "queued"


def test_without_a_run_id_the_run_that_failed_last_is_resumed(airflow: RecordedAirflow):
    with AirflowAPI(airflow.url) as api:
        assert resume_run(api, DAG_ID).run_id == FAILED
    (listing,) = [r for r in airflow.requests if r["path"].endswith("/dagRuns")]
    assert ("state", "failed") in listing["params"]


@pytest.mark.parametrize(
    ("dag_id", "run_id", "state", "refusal"),
    [
        (DAG_ID, FAILED, "running", "is running: wait until it ends"),
        (DAG_ID, FAILED, "queued", "is queued: wait until it ends"),
        (DAG_ID, FAILED, "success", "succeeded: nothing to resume"),
        (DAG_ID, "manual__nope", None, f"DAG {DAG_ID} has no run manual__nope"),
        ("aistack__default__nope", FAILED, None, "Airflow has no DAG aistack__default__nope"),
        ("aistack__default__nope", None, None, "Airflow has no DAG aistack__default__nope"),
    ],
)
def test_refusals_say_why_and_clear_nothing(airflow: RecordedAirflow, dag_id: str, run_id: str | None, state: str | None, refusal: str):
    if state:
        airflow.runs[FAILED]["state"] = state
    with AirflowAPI(airflow.url) as api, pytest.raises(ResumeRefused, match=re.escape(refusal)):
        resume_run(api, dag_id, run_id)
    assert airflow.clears() == []


def test_a_dag_without_a_failed_run_or_a_run_without_a_failed_task_is_refused(airflow: RecordedAirflow):
    airflow.tasks[OLDER] = [ti("first", "success"), ti("publish", "skipped")]  # marked failed by hand
    with AirflowAPI(airflow.url) as api:
        with pytest.raises(ResumeRefused, match="failed without a failed task"):
            resume_run(api, DAG_ID, OLDER)
        airflow.runs.clear()
        with pytest.raises(ResumeRefused, match=f"DAG {DAG_ID} has no failed run: nothing to resume"):
            resume_run(api, DAG_ID)
    assert airflow.clears() == []


def test_the_same_request_again_finds_its_own_resume(airflow: RecordedAirflow):
    with AirflowAPI(airflow.url) as api:
        first = resume_run(api, DAG_ID, FAILED, note="request A")
        again = resume_run(api, DAG_ID, FAILED, note="request A")
        with pytest.raises(ResumeRefused, match="is queued"):
            resume_run(api, DAG_ID, FAILED, note="request B")
    assert (again.cleared, again.earlier) == (first.cleared, True)
    assert len(airflow.clears()) == 1


def test_the_body_is_what_airflows_clear_endpoint_accepts():
    from airflow.api_fastapi.core_api.datamodels.task_instances import ClearTaskInstancesBody

    body = ClearTaskInstancesBody.model_validate(clear_body(FAILED, [ti("second", "failed"), ti("each", "failed", 3)], NOTE))
    assert (body.dry_run, body.only_failed, body.reset_dag_runs, body.include_downstream) == (False, False, True, True)
    assert body.task_ids == ["second", ("each", 3)]


# -- aistack resume --------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AISTACK_AIRFLOW_URL", raising=False)
    return tmp_path / "home"


def test_cli_resumes_a_named_orchestrations_last_failed_run(airflow: RecordedAirflow, home: Path, capsys: pytest.CaptureFixture[str]):
    airflow.dags = {"aistack__team-a__qa"}
    airflow.runs[FAILED]["dag_id"] = "aistack__team-a__qa"

    assert main(["resume", "qa", "-n", "team-a", "--url", airflow.url]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out == [f"run {FAILED} of aistack__team-a__qa resumed: cleared each[1], publish, second, third", f"{airflow.url}/dags/aistack__team-a__qa/runs/{FAILED}"]
    assert not any(r["path"] == "/auth/token" for r in airflow.requests), "no password anywhere: no login"


def test_cli_refuses_with_a_message_and_status_1(airflow: RecordedAirflow, home: Path, capsys: pytest.CaptureFixture[str]):
    airflow.runs[FAILED]["state"] = "running"
    assert main(["resume", DAG_ID, FAILED, "--url", airflow.url]) == 1
    assert capsys.readouterr().err.strip() == f"aistack resume: run {FAILED} of {DAG_ID} is running: wait until it ends, and resume it if it fails"
    assert main(["resume", DAG_ID, "--url", "http://127.0.0.1:9"]) == 1, "no Airflow there"
    assert "aistack resume: GET http://127.0.0.1:9/api/v2/dags/" in capsys.readouterr().err


def test_cli_logs_in_with_the_password_aistack_airflow_generated(airflow: RecordedAirflow, home: Path):
    (home / "airflow-ui").mkdir(parents=True)
    (home / "airflow-ui" / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": "generated"}))
    assert main(["resume", "qa", OLDER, "--url", airflow.url]) == 0
    login, *calls = airflow.requests
    assert (login["path"], login["body"]) == ("/auth/token", {"username": "admin", "password": "generated"})
    assert {c["headers"]["authorization"] for c in calls} == {"Bearer token-of-admin-generated"}


# -- the ai.stack/resume annotation ------------------------------------------------------


@pytest.fixture
def cluster(kube_api, kubectl, repo: Path) -> Cluster:
    kubectl("apply", "-f", str(repo / "crds" / "taskorchestration_crd.yaml"))
    return Cluster(kube_api)


def failed_run_recorded(cluster: Cluster, run_id: str = FAILED) -> dict[str, Any]:
    """A TaskOrchestration whose run failed, as the watcher and the run's tasks left its status."""
    cluster.create(orchestration("qa"))
    cluster.record("qa")
    status = {
        "phase": "Failed",
        "dagId": DAG_ID,
        "runId": run_id,
        "finishedAt": "2026-03-01T12:05:00Z",
        "message": "steps that did not complete: second",
        "progress": "1/2",
        "nodes": {"first": {"phase": "Succeeded", "attempts": 1}, "second": {"phase": "Failed", "attempts": 1}},
    }
    return cluster.api.patch_namespaced_custom_object_status("ai.stack", "v1alpha1", "default", PLURAL, "qa", {"status": status})


def annotate(cluster: Cluster, value: str) -> dict[str, Any]:
    body = {"metadata": {"annotations": {RESUME_ANNOTATION: value}}}
    return cluster.api.patch_namespaced_custom_object("ai.stack", "v1alpha1", "default", PLURAL, "qa", body)


def dispatcher(cluster: Cluster, airflow: RecordedAirflow) -> TaskOrchestrationDispatcher:
    def no_trigger(dag_id: str, run_id: str, conf: dict[str, Any]) -> bool:
        raise AssertionError("a resume triggers no run")

    return TaskOrchestrationDispatcher(
        objects=cluster.api,
        airflow=AirflowAPI(airflow.url),
        trigger_run=no_trigger,
        generator=("dags-folder", "task_orchestrations.py"),
        ui_base_url="http://airflow.example",
    )


def watch(kube_api) -> ResourceWatch:
    return ResourceWatch(PLURAL, pending=is_pending, resume_request=resume_request, configuration=kube_api.asyncio_configuration)


def first_listing(kube_api) -> list[dict[str, Any]]:
    """What a freshly started watch reports (a restarted watcher): its list, and a second of quiet."""
    events, _ = asyncio.run(collect_batch(watch(kube_api), 0.1, idle_timeout=1.0))
    return events


def test_the_annotation_resumes_the_run_once_and_the_status_records_it(kube_api, cluster: Cluster, airflow: RecordedAirflow):
    failed_run_recorded(cluster)
    obj = annotate(cluster, "latest")
    (event,) = first_listing(kube_api)
    assert (event["type"], event["request"]) == (RESUME, "latest")

    (outcome,) = dispatcher(cluster, airflow).handle([event])

    assert (outcome.action, outcome.run_id) == ("resumed", FAILED)
    status = cluster.get("qa")["status"]
    resume = status["resume"]
    assert {k: resume[k] for k in ("request", "runId", "result", "cleared", "resumes")} == {
        "request": "latest",
        "runId": FAILED,
        "result": "Resumed",
        "cleared": ["each[1]", "publish", "second", "third"],
        "resumes": 1,
    }
    assert resume["handledAt"] and resume["message"].startswith(f"run {FAILED} of {DAG_ID} resumed")
    assert status["phase"] == "Pending" and "finishedAt" not in status and "message" not in status, "the failed end is gone"
    assert status["nodes"]["first"] == {"phase": "Succeeded", "attempts": 1}, "the succeeded step keeps its node"
    assert status["runUrl"] == f"http://airflow.example/dags/{DAG_ID}/runs/{FAILED}"
    assert status["observedGeneration"] == 1 and "conditions" not in status, "no submission, no Accepted change"
    assert airflow.clears()[0]["note"] == f"resumed by the annotation {RESUME_ANNOTATION}=latest of TaskOrchestration default/qa"

    # A duplicate event and a restarted watcher do nothing.
    assert [o.action for o in dispatcher(cluster, airflow).handle([event, resume_event(obj, "latest")])] == ["skipped", "skipped"]
    assert first_listing(kube_api) == [], "the recorded value is no request"
    assert len(airflow.clears()) == 1

    # A new value asks again: the run failed once more.
    airflow.runs[FAILED]["state"] = "failed"
    airflow.tasks[FAILED][3]["state"] = "failed"
    annotate(cluster, "latest#again")
    (again,) = first_listing(kube_api)
    (outcome,) = dispatcher(cluster, airflow).handle([again])
    assert outcome.action == "resumed"
    assert cluster.get("qa")["status"]["resume"]["resumes"] == 2
    assert airflow.clears()[-1]["task_ids"] == ["second"]


def test_a_resumed_step_that_starts_brings_the_run_back_to_running(kube_api, cluster: Cluster, airflow: RecordedAirflow, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AISTACK_ORCHESTRATIONS_PATH", raising=False)  # the run reports to the cluster
    failed_run_recorded(cluster)
    annotate(cluster, "latest")
    dispatcher(cluster, airflow).handle(first_listing(kube_api))
    assert cluster.get("qa")["status"]["phase"] == "Pending"

    RunReporter("default", "qa", DAG_ID, FAILED, 2, None).step("second", "Running", attempts=2)  # as PipelineStepOperator does

    status = cluster.get("qa")["status"]
    assert (status["phase"], status["nodes"]["second"], status["nodes"]["first"]) == (
        "Running",
        {"phase": "Running", "attempts": 2},
        {"phase": "Succeeded", "attempts": 1},
    )
    assert "finishedAt" not in status and status["resume"]["resumes"] == 1


def test_a_refusal_is_recorded_once_and_leaves_the_run_alone(kube_api, cluster: Cluster, airflow: RecordedAirflow):
    failed_run_recorded(cluster)
    airflow.runs[FAILED]["state"] = "running"
    annotate(cluster, FAILED)
    (event,) = first_listing(kube_api)

    (outcome,) = dispatcher(cluster, airflow).handle([event])

    assert outcome.action == "refused"
    status = cluster.get("qa")["status"]
    assert status["resume"]["result"] == "Refused" and "is running: wait until it ends" in status["resume"]["message"]
    assert status["resume"]["resumes"] == 0 and "cleared" not in status["resume"]
    assert (status["phase"], status["finishedAt"]) == ("Failed", "2026-03-01T12:05:00Z"), "nothing was resumed"
    assert first_listing(kube_api) == [] and dispatcher(cluster, airflow).handle([event])[0].action == "skipped"
    assert airflow.clears() == []


def test_a_watcher_that_cleared_but_died_before_recording_records_it_when_retried(kube_api, cluster: Cluster, airflow: RecordedAirflow):
    failed_run_recorded(cluster)
    annotate(cluster, "latest")
    (event,) = first_listing(kube_api)
    dying = dispatcher(cluster, airflow)

    def killed(obj: dict[str, Any], status: dict[str, Any]) -> None:
        raise ConnectionError("the worker died")

    dying._patch_status = killed  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        dying.handle([event])
    assert airflow.runs[FAILED]["state"] == "queued" and "resume" not in cluster.get("qa")["status"]

    (outcome,) = dispatcher(cluster, airflow).handle([event])  # Airflow retries the task

    assert outcome.action == "resumed" and "was resumed already" in outcome.detail
    assert cluster.get("qa")["status"]["resume"]["resumes"] == 1
    assert len(airflow.clears()) == 1, "cleared once"


def test_within_one_watch_a_request_is_reported_once_and_status_changes_are_not_requests(kube_api, cluster: Cluster):
    async def scenario() -> list[tuple[str, str]]:
        seen: list[dict[str, Any]] = []
        running = watch(kube_api)

        async def collect() -> None:
            async for event in running.events():
                seen.append(event)

        task = asyncio.create_task(collect())
        try:
            deadline = time.monotonic() + 10
            while running.connects < 1:
                assert time.monotonic() < deadline, "the watch did not connect"
                await asyncio.sleep(0.02)
            await asyncio.to_thread(annotate, cluster, "latest")
            await asyncio.sleep(0.5)
            await asyncio.to_thread(
                cluster.api.patch_namespaced_custom_object_status, "ai.stack", "v1alpha1", "default", PLURAL, "qa", {"status": {"phase": "Running"}}
            )
            await asyncio.to_thread(annotate, cluster, "latest#2")
            await asyncio.sleep(0.5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return [(e["type"], e.get("request", "")) for e in seen]

    failed_run_recorded(cluster)
    assert asyncio.run(scenario()) == [(RESUME, "latest"), (RESUME, "latest#2")]


def test_resume_request_is_the_value_not_yet_recorded():
    obj = copy.deepcopy(orchestration("qa"))
    assert resume_request(obj) is None
    obj["metadata"]["annotations"] = {RESUME_ANNOTATION: "latest"}
    assert resume_request(obj) == "latest"
    obj["status"] = {"resume": {"request": "latest"}}
    assert resume_request(obj) is None
    obj["metadata"]["annotations"][RESUME_ANNOTATION] = "latest#2"
    obj["metadata"]["deletionTimestamp"] = "2026-03-01T12:00:00Z"
    assert resume_request(obj) is None, "a resource being deleted is not resumed"


def test_the_polling_sensor_and_the_trigger_report_resume_requests_too(kube_api, cluster: Cluster):
    from aistack_airflow.sensors.task_orchestration import TaskOrchestrationSensor
    from aistack_airflow.triggers.task_orchestration import TaskOrchestrationTrigger

    failed_run_recorded(cluster)
    annotate(cluster, "latest")
    poked = TaskOrchestrationSensor(task_id="wait", deferrable=False).poke({})
    assert poked.is_done and [(e["type"], e["name"], e["request"]) for e in poked.xcom_value] == [(RESUME, "qa", "latest")]
    assert TaskOrchestrationTrigger().make_watch().resume_request is resume_request
