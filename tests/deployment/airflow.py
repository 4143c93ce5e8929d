"""Airflow as `helm-values/airflow.yaml` + `helm-values/airflow-celery.yaml` deploy it, on this
machine: PostgreSQL as the metadata database and Celery's result backend, Redis as the broker,
and the api-server, scheduler, DAG processor, triggerer and `workers.replicas` Celery workers
each as a process of its own (its own process group, so a test can kill one and start it again).

What is taken from the Helm values, so that a change there changes what the tests run:
``executor``, every ``config`` option (as AIRFLOW__<SECTION>__<KEY>), ``workers.replicas``, the
shared API secret key and JWT secret (one value for every component, as the chart's Secrets give
them). What differs, and why, is in ``TEST_SETTINGS``: timings shortened so that the failure
scenarios take seconds, not minutes. tests/deployment/test_helm_values.py fails when an option
of the values files is not what the running components read.

Each component has its own hostname (tests/deployment/hostname.py), as each pod has in a cluster:
a task instance's ``hostname`` says which worker ran it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from aistack.local.standalone import stop_process_group
from tests.deployment.services import Postgres
from tests.standalone import free_port

REPO = Path(__file__).resolve().parents[2]
VALUES = (REPO / "helm-values" / "airflow.yaml", REPO / "helm-values" / "airflow-celery.yaml")
AIRFLOW = str(Path(sys.executable).parent / "airflow")

# Options that the tests set apart from the Helm values, each with its reason.
TEST_SETTINGS: dict[tuple[str, str], str] = {
    # A killed worker's task is failed (and retried) after this long without a heartbeat, instead of the deployed 60 s.
    ("scheduler", "task_instance_heartbeat_timeout"): "15",
    ("scheduler", "task_instance_heartbeat_timeout_detection_interval"): "3",
    # A dead triggerer's triggers move to a live one after this long, instead of Airflow's 30 s.
    ("triggerer", "triggerer_health_check_threshold"): "10",
}
HOSTNAME_CALLABLE = "tests.deployment.hostname.component"
COMPONENT_VARIABLE = "AISTACK_DEPLOYMENT_COMPONENT"


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of `-f a.yaml -f b.yaml`: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def helm_values() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in VALUES:
        merged = deep_merge(merged, yaml.safe_load(path.read_text()) or {})
    return merged


def helm_config(values: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """The chart's `config:` as (section, key) -> the string Airflow reads."""
    options = {}
    for section, entries in (values.get("config") or {}).items():
        for key, value in (entries or {}).items():
            options[(section, key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return options


def env_name(section: str, key: str) -> str:
    return f"AIRFLOW__{section.upper()}__{key.upper()}"


class AirflowDeployment:
    """The components of one deployment; `start()` migrates the database and starts them all."""

    def __init__(self, home: Path, dags: Path, database: Postgres, broker: str, env: Mapping[str, str] = ()) -> None:
        self.home, self.dags = home, dags
        self.values = helm_values()
        self.workers = [f"worker-{i}" for i in range(1, int(self.values["workers"]["replicas"]) + 1)]
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env = self._environment(database, broker, dict(env))

    def _environment(self, database: Postgres, broker: str, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"}
        env.update({env_name(s, k): v for (s, k), v in helm_config(self.values).items()})
        env.update({env_name(s, k): v for (s, k), v in TEST_SETTINGS.items()})
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__EXECUTOR": self.values["executor"],
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database.sqlalchemy_url,
                # psycopg 3 drives the async engine too (Airflow would derive asyncpg, another driver).
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database.sqlalchemy_url,
                "AIRFLOW__CELERY__BROKER_URL": broker,
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database.sqlalchemy_url}",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                # One value for every component (the chart's apiSecretKeySecretName and jwtSecretName).
                "AIRFLOW__API__SECRET_KEY": "aistack-deployment-test-secret",
                "AIRFLOW__API_AUTH__JWT_SECRET": "aistack-deployment-test-jwt-secret",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "task-logs"),
                "AIRFLOW_CONN_AISTACK_AIRFLOW_API": self.base_url,  # the watcher's way back to the API
                "AISTACK_HOME": str(self.home / "aistack"),
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    def commands(self) -> dict[str, list[str]]:
        """Every component's command line. No log servers (Airflow's bind every interface): on one
        machine the api-server reads the task log files itself."""
        commands = {
            "api-server": [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(self.port)],
            "scheduler": [AIRFLOW, "scheduler", "--skip-serve-logs"],
            "dag-processor": [AIRFLOW, "dag-processor"],
            "triggerer": [AIRFLOW, "triggerer", "--skip-serve-logs"],
        }
        for name in self.workers:
            commands[name] = [AIRFLOW, "celery", "worker", "--skip-serve-logs", "--celery-hostname", f"{name}@%h", "--without-gossip", "--without-mingle"]
        return commands

    def log(self, component: str) -> Path:
        return self.home / "logs" / f"{component}.log"

    def migrate(self) -> None:
        done = subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

    def start_component(self, component: str) -> subprocess.Popen[bytes]:
        with self.log(component).open("ab") as log:
            process = subprocess.Popen(
                self.commands()[component],
                env={**self.env, COMPONENT_VARIABLE: component},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[component] = process
        return process

    def kill(self, component: str, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a worker's task processes die with it), and wait for its leader."""
        process = self.processes[component]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def start(self, timeout: float = 300) -> None:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        self.migrate()
        for component in self.commands():
            self.start_component(component)
        self.wait_healthy(timeout)
        for worker in self.workers:
            self.wait_for_worker(worker, timeout)

    def wait_healthy(self, timeout: float) -> None:
        """Until the api-server answers and reports scheduler, triggerer and DAG processor healthy."""
        deadline = time.monotonic() + timeout
        health: Any = None
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while time.monotonic() < deadline:
                self.check_alive()
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    health = client.get("/api/v2/monitor/health").json()
                    if all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")):
                        return
                time.sleep(0.5)
        raise RuntimeError(f"the deployment did not become healthy in {timeout:.0f}s (last health: {health})\n{self.tails()}")

    def wait_for_worker(self, worker: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while b" ready." not in self.log(worker).read_bytes():
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{worker} did not become ready\n{self.tails()}")
            time.sleep(0.3)

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"components ended: {dead}\n{self.tails()}")

    def tails(self, size: int = 2500) -> str:
        return "\n".join(f"--- {name} ---\n{self.log(name).read_text(errors='replace')[-size:]}" for name in self.processes)

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            stop_process_group(process, timeout=20)


@contextlib.contextmanager
def deployment(home: Path, dags: Path, database: Postgres, broker: str, env: Mapping[str, str] = ()) -> Iterator[AirflowDeployment]:
    running = AirflowDeployment(home, dags, database, broker, env)
    try:
        running.start()
        yield running
    finally:
        running.stop()
