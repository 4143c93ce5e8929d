"""Everything a pipeline needs on the test deployment, for the block: the Kubernetes API test server
with the CRDs, PostgreSQL, Redis, Airflow's components (airflow.py) over the watcher and generator
DAGs, and the agents, served from this process and listed in the agent registry the workers read.
Used by conftest.py (fake models) and bench/concurrent_runs.py (fake models or the embedded runtime)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aistack.agents.backend import ModelBackend
from aistack.agents.runner import serve_agents
from tests.deployment import services
from tests.deployment.airflow import AirflowDeployment, deployment
from tests.kubeapi import KubeAPIServer, Kubectl
from tests.standalone import call

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = ("task_orchestration_watcher.py", "task_orchestrations.py")


@dataclass
class Stack:
    airflow: AirflowDeployment
    kube: KubeAPIServer
    kubectl: Kubectl
    models: Mapping[str, ModelBackend]
    outputs: Path


@contextlib.contextmanager
def running_stack(
    root: Path,
    agents: list[tuple[Any, Any]],
    models: Mapping[str, ModelBackend] | None = None,
    ollama_host: str | None = None,
    env: Mapping[str, str] = (),
) -> Iterator[Stack]:
    """`agents`: (OllamaAgent, OllamaModelDefinition) pairs, answered by `models[agent name]` when
    given, else by the models of the Ollama at `ollama_host`. AISTACK_HOME is set in this process
    for the block (the registry the agents are listed in is the one the workers read)."""
    dags, home, outputs = root / "dags", root / "airflow", root / "outputs"
    dags.mkdir(parents=True)
    for name in DAG_FILES:
        shutil.copy(REPO / "dags" / name, dags)
    saved = os.environ.get("AISTACK_HOME")
    os.environ["AISTACK_HOME"] = str(home / "aistack")
    backends = (lambda agent, definition: models[agent.name]) if models is not None else None
    try:
        with KubeAPIServer() as kube:
            kubeconfig = kube.write_kubeconfig(root / "kubeconfig")
            kubectl = Kubectl(kubeconfig)
            kubectl("apply", "-f", str(REPO / "crds"))
            full_env = {"KUBECONFIG": str(kubeconfig), "AISTACK_OUTPUT_DIR": str(outputs), **dict(env)}
            with (
                services.postgres(root / "postgresql") as database,
                services.redis(root / "redis") as broker,
                serve_agents(agents, backends=backends, ollama_host=ollama_host, registry=True),
                deployment(home, dags, database, broker, full_env) as airflow,
            ):
                yield Stack(airflow, kube, kubectl, models or {}, outputs)
    finally:
        if saved is None:
            os.environ.pop("AISTACK_HOME", None)
        else:
            os.environ["AISTACK_HOME"] = saved


def watcher_armed(client: Any) -> bool:
    """The watcher's sensor is deferred: its watch is open in the triggerer."""
    runs = call(client, "GET", "/dags/task_orchestration_watcher/dagRuns", params={"state": "running"})["dag_runs"]
    for run in runs:
        ti = call(client, "GET", f"/dags/task_orchestration_watcher/dagRuns/{run['dag_run_id']}/taskInstances/wait_for_submissions")
        if ti["state"] == "deferred":
            return True
    return False
