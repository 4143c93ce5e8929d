"""Event-driven scheduling in a real `airflow standalone`: `kubectl apply` of an OllamaModelDefinition
or an OllamaAgent (to the test Kubernetes API server) makes the triggerer's asset watcher emit an
asset event, and the scheduler starts an asset-triggered run of the DAG that builds or deploys it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.kubeapi.support import eventually
from tests.standalone import airflow_standalone

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

DAGS = {"ollama_model_builds": "aistack://ollamamodeldefinitions", "ollama_agents": "aistack://ollamaagents"}


def asset_triggered_runs(api, dag_id: str) -> list[dict]:
    runs = api.get(f"/dags/{dag_id}/dagRuns", params={"limit": 50}).json().get("dag_runs", [])
    return [r for r in runs if r["run_type"] == "asset_triggered"]


def test_applying_a_definition_or_an_agent_runs_its_dag(kube_api, kubectl, repo: Path, tmp_path: Path):
    kubectl("apply", "-f", str(repo / "crds"))
    dags = tmp_path / "dags"
    dags.mkdir()
    for name in DAGS:
        shutil.copy(repo / "dags" / f"{name}.py", dags)
    kubeconfig = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    with airflow_standalone(tmp_path, dags, {"KUBECONFIG": str(kubeconfig)}) as api:
        eventually(lambda: set(DAGS) <= {d["dag_id"] for d in api.get("/dags").json()["dags"]}, timeout=120, interval=0.5)
        for dag_id in DAGS:
            assert api.patch(f"/dags/{dag_id}", json={"is_paused": False}).status_code == 200
        watched = {a["uri"].rstrip("/"): a for a in api.get("/assets", params={"limit": 100}).json()["assets"]}
        assert set(DAGS.values()) <= set(watched), "the assets and their watchers are registered"

        kubectl("apply", "-f", str(repo / "models" / "summarizer" / "model.yaml"))
        runs = eventually(lambda: asset_triggered_runs(api, "ollama_model_builds"), timeout=120, interval=0.5)
        events = api.get("/assets/events", params={"limit": 50}).json()["asset_events"]
        changes = [e["extra"] for e in events if e["uri"].rstrip("/") == DAGS["ollama_model_builds"]]
        assert any(c["name"] == "summarizer-model" for extra in changes for c in extra["payload"]["changes"]), changes

        kubectl("apply", "-f", str(repo / "examples" / "summarization-pipeline" / "summarizer-agent.yaml"))
        eventually(lambda: asset_triggered_runs(api, "ollama_agents"), timeout=120, interval=0.5)

        kubectl("label", "omd", "summarizer-model", "team=blue")  # metadata only: no new generation
        before = len(asset_triggered_runs(api, "ollama_model_builds"))
        time.sleep(8)
        assert len(asset_triggered_runs(api, "ollama_model_builds")) == before == len(runs)
