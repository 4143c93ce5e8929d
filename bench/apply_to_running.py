"""Latency from `kubectl apply` of a new TaskOrchestration to its DAG run starting, in `airflow standalone`.

Run by hand from the repository root (takes about two minutes):

    .venv/bin/python bench/apply_to_running.py [--runs 5] [--keep]

What it sets up: the Kubernetes API test server (tests/kubeapi) with the CRDs, and `airflow
standalone` (SQLite, LocalExecutor, api-server, scheduler, dag-processor, triggerer; Airflow's
default intervals except the two settings below) in a temporary AIRFLOW_HOME whose DAG folder
holds the watcher DAG and the generator dags/task_orchestrations.py. Setting:
min_serialized_dag_update_interval=0 (a re-parse writes the new spec's DAG at once).
The DAG runs' tasks call agents that do not exist here and fail: only their start is measured.

For each run it waits until the watcher's sensor is deferred (the watch is open), applies a new
TaskOrchestration with kubectl and times, from just before kubectl starts:
  sensor   the sensor task ended (watch event -> triggerer -> scheduler -> worker resumed it)
  start    the start_runs task started
  queued   the run of the orchestration's DAG was created (queued_at)
  running  that run started (start_date: the scheduler set it running)  <- the target, < 10 s
  status   status.runId was seen on the resource (polled every 0.1 s)
Timestamps come from Airflow's REST API; everything runs on this machine, one clock.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.kubeapi import KubeAPIServer, Kubectl  # noqa: E402
from tests.kubeapi.support import eventually  # noqa: E402
from tests.standalone import airflow_standalone  # noqa: E402

WATCHER = "task_orchestration_watcher"


def ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def manifest(name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "ai.stack/v1alpha1",
            "kind": "TaskOrchestration",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"input": {"text": "Say hello."}, "pipeline": [{"name": "answer", "agentRef": "chat-agent"}]},
        }
    )


class Airflow:
    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def get(self, path: str, **params: Any) -> dict[str, Any] | None:
        try:
            response = self.http.get(path, params=params)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def watcher_armed(self) -> bool:
        runs = self.get(f"/dags/{WATCHER}/dagRuns", state="running")
        for run in (runs or {}).get("dag_runs", []):
            ti = self.get(f"/dags/{WATCHER}/dagRuns/{run['dag_run_id']}/taskInstances/wait_for_submissions")
            if ti and ti["state"] == "deferred":
                return True
        return False

    def watcher_tasks(self, after: float) -> dict[str, float | None]:
        """sensor end and start_runs start of the watcher run that handled the apply at ``after``."""
        runs = self.get(f"/dags/{WATCHER}/dagRuns", order_by="-start_date", limit=5) or {}
        for run in runs.get("dag_runs", []):
            tis = {t["task_id"]: t for t in (self.get(f"/dags/{WATCHER}/dagRuns/{run['dag_run_id']}/taskInstances") or {}).get("task_instances", [])}
            sensor, start = tis.get("wait_for_submissions"), tis.get("start_runs")
            if sensor and start and (ts(sensor.get("end_date")) or 0) >= after:
                return {"sensor": ts(sensor.get("end_date")), "start": ts(start.get("start_date"))}
        return {"sensor": None, "start": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the AIRFLOW_HOME and its logs")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="aistack-bench-airflow-"))
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "task_orchestration_watcher.py", dags)
    generator = REPO / "dags" / "task_orchestrations.py"
    shutil.copy(generator, dags / "task_orchestrations.py")
    print(f"generator: {generator.relative_to(REPO)}; AIRFLOW_HOME {home}")

    with KubeAPIServer() as kube:
        kubeconfig = kube.write_kubeconfig(home / "kubeconfig")
        kubectl = Kubectl(kubeconfig)
        kubectl("apply", "-f", str(REPO / "crds"))
        # A re-parse must write the new spec's DAG at once (Airflow's default keeps it 30 s).
        env = {"KUBECONFIG": str(kubeconfig), "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "0"}
        try:
            with airflow_standalone(home, dags, env) as client:
                measure(Airflow(client), kube, kubectl, args.runs)
        finally:
            if args.keep:
                print(f"kept {home}")
            else:
                shutil.rmtree(home, ignore_errors=True)


def measure(api: Airflow, kube: KubeAPIServer, kubectl: Kubectl, runs: int) -> None:
    started = time.monotonic()
    eventually(api.watcher_armed, timeout=240, interval=0.5)
    print(f"standalone up and the watcher armed after {time.monotonic() - started:.0f}s\n")
    print(f"{'run':>3} {'sensor':>7} {'start':>7} {'queued':>7} {'running':>8} {'status':>7}   (seconds after kubectl apply)")
    results = []
    for i in range(runs):
        name = f"bench-{i}"
        dag_id = f"aistack__default__{name}"
        t0 = time.time()
        kubectl("apply", "-f", "-", input=manifest(name))

        def run_started(dag_id: str = dag_id) -> dict[str, Any] | None:
            found = (api.get(f"/dags/{dag_id}/dagRuns") or {}).get("dag_runs", [])
            return found[0] if found and found[0].get("start_date") else None

        status_seen = None
        deadline = time.monotonic() + 120
        run = None
        while time.monotonic() < deadline and (run is None or status_seen is None):
            if status_seen is None and (kube.get_object("ai.stack/v1alpha1", "TaskOrchestration", name, "default") or {}).get("status", {}).get("runId"):
                status_seen = time.time()
            run = run or run_started()
            time.sleep(0.1)
        if run is None:
            raise TimeoutError(f"no run of {dag_id} started within 120s")
        phases = api.watcher_tasks(t0)
        row = {
            "sensor": phases["sensor"],
            "start": phases["start"],
            "queued": ts(run.get("queued_at")),
            "running": ts(run.get("start_date")),
            "status": status_seen,
        }
        row = {k: (v - t0 if v else float("nan")) for k, v in row.items()}
        results.append(row)
        print(f"{i:>3} {row['sensor']:7.2f} {row['start']:7.2f} {row['queued']:7.2f} {row['running']:8.2f} {row['status']:7.2f}")
        eventually(api.watcher_armed, timeout=60, interval=0.1)
        time.sleep(1.0)
    print()
    for key in ("sensor", "start", "queued", "running", "status"):
        values = [r[key] for r in results if r[key] == r[key]]
        if values:
            print(f"{key:>8}: median {statistics.median(values):5.2f}s  min {min(values):5.2f}s  max {max(values):5.2f}s")
    worst = max(r["running"] for r in results)
    print(f"\napply -> run running: {'OK' if worst < 10 else 'OVER'} the 10 s target (worst {worst:.2f}s)")


if __name__ == "__main__":
    main()
