"""The ollama_model_builds DAG against the test Kubernetes API server: one build per changed definition."""

import importlib
from pathlib import Path

import pytest

from tests.operators.test_model_build import LOG_SUCCESS, kubelet

pytestmark = pytest.mark.slow


def run_dag():
    import dags.ollama_model_builds as module

    return importlib.reload(module).dag.test()


@pytest.fixture
def cluster(kube_api, kubectl, repo: Path, airflow_db, monkeypatch):
    monkeypatch.setenv("AISTACK_BUILD_NAMESPACE", "default")
    monkeypatch.delenv("AISTACK_MODELS_PATH", raising=False)
    kubectl("apply", "-f", str(repo / "crds"))
    kubectl("apply", "-f", str(repo / "models" / "qa" / "model.yaml"), "-f", str(repo / "models" / "chat" / "model.yaml"))
    return kube_api


def test_builds_each_changed_definition_once(cluster, kubectl):
    pods: list = []
    cluster.on_pod_created = kubelet(LOG_SUCCESS, "Succeeded", pods)

    assert run_dag().state == "success"
    built = sorted(p["metadata"]["labels"]["ai.stack/model"] for p in pods)
    assert built == ["chat-model", "qa-model"]
    for name in ("chat-model", "qa-model"):
        status = cluster.get_object("ai.stack/v1alpha1", "OllamaModelDefinition", name, "default")["status"]
        assert status["phase"] == "Complete"

    assert run_dag().state == "success"
    assert len(pods) == 2, "nothing changed, nothing is rebuilt"

    kubectl("patch", "omd", "qa-model", "--type=merge", "-p", '{"spec": {"build": {"system": "Be strict."}}}')
    assert run_dag().state == "success"
    assert [p["metadata"]["labels"]["ai.stack/model"] for p in pods[2:]] == ["qa-model"]
