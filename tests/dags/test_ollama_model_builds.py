"""The ollama_model_builds DAG against the test Kubernetes API server: one build per changed definition."""

import importlib
from pathlib import Path

import pytest

from tests.operators.test_model_build import LOG_SUCCESS, kubelet

pytestmark = pytest.mark.slow


def run_dag():
    import aistack_airflow.dags.ollama_model_builds as module

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


def test_folder_mode_builds_every_definition_into_the_embedded_runtime(repo: Path, embedded_ollama, airflow_db, monkeypatch):
    import ollama

    monkeypatch.setenv("AISTACK_MODELS_PATH", str(repo / "models"))
    monkeypatch.setenv("OLLAMA_HOST", embedded_ollama)
    dag_run = run_dag()
    assert dag_run.state == "success"
    outcomes = [ti.xcom_pull(task_ids="build", map_indexes=ti.map_index) for ti in dag_run.get_task_instances() if ti.task_id == "build"]
    assert sorted(o["model"] for o in outcomes) == ["analyzer-model:1.0.0", "chat-model:1.0.0", "classifier-model:1.0.0", "qa-model:1.0.0", "summarizer-model:1.0.0"]
    assert {o["baseModel"] for o in outcomes} == {"smollm2:135m"}, "the runtime's substitution is recorded"
    listed = {m.model: m.digest for m in ollama.Client(host=embedded_ollama).list().models}
    for outcome in outcomes:
        assert outcome["modelHash"].removeprefix("sha256:") in listed[outcome["model"]]
