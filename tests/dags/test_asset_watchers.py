"""Event-driven scheduling in a real `airflow standalone`: `kubectl apply` of an OllamaModelDefinition
or an OllamaAgent (to the test Kubernetes API server) makes the triggerer's asset watcher emit an
asset event, and the scheduler starts an asset-triggered run of the DAG that builds or deploys it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.kubeapi.support import eventually
from tests.standalone import airflow_standalone, call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

DAGS = {"ollama_model_builds": "aistack://ollamamodeldefinitions", "ollama_agents": "aistack://ollamaagents"}


def read(api, path: str, key: str) -> list[dict]:
    return call(api, "GET", path, params={"limit": 100})[key]


def asset_triggered_runs(api, dag_id: str) -> list[dict]:
    return [r for r in read(api, f"/dags/{dag_id}/dagRuns", "dag_runs") if r["run_type"] == "asset_triggered"]


def changes_reported(api, uri: str) -> list[str]:
    events = read(api, "/assets/events", "asset_events")
    return [c["name"] for e in events if e["uri"].rstrip("/") == uri for c in e["extra"]["payload"]["changes"]]


def test_applying_a_definition_or_an_agent_runs_its_dag(kube_api, kubectl, repo: Path, tmp_path: Path):
    kubectl("apply", "-f", str(repo / "crds"))
    dags = tmp_path / "dags"
    dags.mkdir()
    for name in DAGS:
        shutil.copy(repo / "dags" / f"{name}.py", dags)
    kubeconfig = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    with airflow_standalone(tmp_path, dags, {"KUBECONFIG": str(kubeconfig)}) as api:
        eventually(lambda: set(DAGS) <= {d["dag_id"] for d in read(api, "/dags", "dags")}, timeout=120, interval=0.5)
        for dag_id in DAGS:
            call(api, "PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        watched = {a["uri"].rstrip("/") for a in read(api, "/assets", "assets")}
        assert set(DAGS.values()) <= watched, "the assets and their watchers are registered"

        kubectl("apply", "-f", str(repo / "models" / "summarizer" / "model.yaml"))
        runs = eventually(lambda: asset_triggered_runs(api, "ollama_model_builds"), timeout=120, interval=0.5)
        assert "summarizer-model" in eventually(lambda: changes_reported(api, DAGS["ollama_model_builds"]), timeout=30)

        kubectl("apply", "-f", str(repo / "examples" / "summarization-pipeline" / "summarizer-agent.yaml"))
        eventually(lambda: asset_triggered_runs(api, "ollama_agents"), timeout=120, interval=0.5)

        kubectl("label", "omd", "summarizer-model", "team=blue")  # metadata only: no new generation
        time.sleep(8)
        assert len(asset_triggered_runs(api, "ollama_model_builds")) == len(runs), "a label is no new generation: no run"
