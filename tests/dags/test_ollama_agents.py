"""The ollama_agents DAG against the test Kubernetes API server; the test plays the Deployment controller."""

import importlib
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client

pytestmark = pytest.mark.slow


def run_dag():
    import aistack_airflow.dags.ollama_agents as module

    return importlib.reload(module).dag.test()


def roll_out(kube_api, stop: threading.Event, ready: bool = True):
    """Mark every agent Deployment's current generation as rolled out (ready or not)."""
    apps = client.AppsV1Api(kube_api.sync_api_client())
    while not stop.is_set():
        for deployment in apps.list_deployment_for_all_namespaces().items:
            want = deployment.spec.replicas
            body = {
                "status": {
                    "observedGeneration": deployment.metadata.generation,
                    "replicas": want,
                    "readyReplicas": want if ready else 0,
                    "availableReplicas": want if ready else 0,
                }
            }
            apps.patch_namespaced_deployment_status(deployment.metadata.name, deployment.metadata.namespace, body)
        time.sleep(0.2)


@pytest.fixture
def cluster(kube_api, kubectl, repo: Path, airflow_db):
    kubectl("apply", "-f", str(repo / "crds"))
    kubectl("apply", "-f", str(repo / "examples" / "question-answering"))
    return kube_api


def controller(kube_api, ready: bool):
    stop = threading.Event()
    thread = threading.Thread(target=roll_out, args=(kube_api, stop, ready), daemon=True)
    thread.start()
    return stop, thread


def test_agents_are_deployed_and_report_ready(cluster):
    stop, thread = controller(cluster, ready=True)
    try:
        assert run_dag().state == "success"
    finally:
        stop.set()
        thread.join()
    for name in ("chat-agent", "qa-agent"):
        deployment = cluster.get_object("apps/v1", "Deployment", name, "default")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert cluster.get_object("v1", "Service", name, "default")["spec"]["ports"][0]["port"] == 80
        owner = deployment["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("OllamaAgent", name)
        status = cluster.get_object("ai.stack/v1alpha1", "OllamaAgent", name, "default")["status"]
        assert status["phase"] == "Ready" and status["ready"] is True
        assert status["url"].startswith(f"http://{name}.default.svc.cluster.local")
        assert status["conditions"][0]["type"] == "Ready" and status["conditions"][0]["status"] == "True"
    qa = cluster.get_object("ai.stack/v1alpha1", "OllamaAgent", "qa-agent", "default")["status"]
    assert qa["url"] == "http://qa-agent.default.svc.cluster.local/api/v1/agent"
    assert qa["model"] == "qa-model:1.0.0"


def test_agent_whose_model_is_missing_fails_with_a_reason(cluster, kubectl):
    kubectl("delete", "omd", "chat-model")
    stop, thread = controller(cluster, ready=True)
    try:
        assert run_dag().state == "failed"
    finally:
        stop.set()
        thread.join()
    status = cluster.get_object("ai.stack/v1alpha1", "OllamaAgent", "chat-agent", "default")["status"]
    assert status["phase"] == "Failed"
    assert 'OllamaModelDefinition "chat-model" does not exist in namespace "default"' in status["message"]
    assert cluster.get_object("ai.stack/v1alpha1", "OllamaAgent", "qa-agent", "default")["status"]["phase"] == "Ready"
