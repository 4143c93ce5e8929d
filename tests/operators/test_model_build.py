"""OllamaModelBuildOperator end to end against the test Kubernetes API server; the tests play kubelet."""

import importlib
import json
from pathlib import Path

import pytest
import yaml

from aistack.models.build_pod import BUILD_SCRIPT
from aistack.models.modelfile import build_request
from aistack.resources import parse_resource

pytestmark = pytest.mark.slow

MODEL_HASH = "sha256:" + "ab" * 32
LOG_SUCCESS = (
    "[aistack] step=serve\n[aistack] step=pull\npulling manifest\n[aistack] step=create\n"
    "writing manifest\nsuccess\n[aistack] step=digest\n"
    f'AISTACK_RESULT {{"modelHash": "{MODEL_HASH}", "model": "summarizer-model:1.0.0"}}\n'
)
LOG_PULL_FAILS = "[aistack] step=serve\n[aistack] step=pull\nError: pull model manifest: file does not exist\n"


def kubelet(log: str, phase: str, seen: list):
    def run(server, pod):
        seen.append(pod)
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        server.set_pod_phase(namespace, name, "Running")
        server.append_pod_log(namespace, name, log, container="base")
        server.set_pod_phase(namespace, name, phase, exit_code=0 if phase == "Succeeded" else 1)

    return run


def run_build(kubeconfig: Path) -> tuple[str, object]:
    """Run the test DAG once; a fresh import, as a worker would, so no client is cached across runs."""
    import tests.airflow_dags.model_build_dag as module

    run = importlib.reload(module).dag.test()
    return run.state, run


def status_of(kube_api) -> dict:
    return kube_api.get_object("ai.stack/v1alpha1", "OllamaModelDefinition", "summarizer-model", "default").get("status", {})


@pytest.fixture
def cluster(kube_api, kubectl, repo: Path, airflow_db):
    kubectl("apply", "-f", str(repo / "crds"))
    kubectl("apply", "-f", str(repo / "models" / "summarizer" / "model.yaml"))
    return kube_api


def test_build_pod_runs_ollama_create_on_a_gpu_node(cluster, kubeconfig: Path, repo: Path):
    pods: list = []
    cluster.on_pod_created = kubelet(LOG_SUCCESS, "Succeeded", pods)

    state, _ = run_build(kubeconfig)

    assert state == "success"
    (pod,) = pods
    spec = pod["spec"]
    container = spec["containers"][0]
    assert container["image"] == "ollama/ollama:0.24.0"
    assert container["command"] == ["/bin/sh", "-c"] and container["args"] == [BUILD_SCRIPT]
    env = {e["name"]: e["value"] for e in container["env"]}
    definition = parse_resource(yaml.safe_load((repo / "models" / "summarizer" / "model.yaml").read_text()))
    assert env["AISTACK_MODELFILE"] == build_request(definition).modelfile()
    assert env["AISTACK_MODEL"] == "summarizer-model:1.0.0" and env["AISTACK_BASE_MODEL"] == "llama2"
    assert container["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
    }
    assert spec["runtimeClassName"] == "nvidia"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["activeDeadlineSeconds"] == 3600
    assert spec["volumes"][0]["persistentVolumeClaim"] == {"claimName": "ollama-models"}
    assert cluster.list_objects("v1", "Pod", "default") == [], "the build pod is cleaned up"

    status = status_of(cluster)
    assert status["phase"] == "Complete"
    assert status["modelHash"] == MODEL_HASH
    assert status["buildDigest"] == build_request(definition).digest
    assert status["observedGeneration"] == 1
    assert status["conditions"][0]["type"] == "Built" and status["conditions"][0]["status"] == "True"
    assert status["buildStartTime"] <= status["lastBuildTime"]


def test_unchanged_definition_is_skipped_and_a_change_rebuilds(cluster, kubectl, kubeconfig: Path, repo: Path):
    pods: list = []
    cluster.on_pod_created = kubelet(LOG_SUCCESS, "Succeeded", pods)
    assert run_build(kubeconfig)[0] == "success"
    assert run_build(kubeconfig)[0] == "success"
    assert len(pods) == 1, "the second run skips the unchanged definition"

    kubectl("patch", "omd", "summarizer-model", "--type=merge", "-p", json.dumps({"spec": {"build": {"system": "Be brief."}}}))
    assert run_build(kubeconfig)[0] == "success"
    assert len(pods) == 2
    assert status_of(cluster)["observedGeneration"] == 2


def test_failed_build_reports_the_step_and_log_tail(cluster, kubeconfig: Path):
    pods: list = []
    cluster.on_pod_created = kubelet(LOG_PULL_FAILS, "Failed", pods)

    state, _ = run_build(kubeconfig)

    assert state == "failed"
    status = status_of(cluster)
    assert status["phase"] == "Failed"
    assert "failed at step 'pull'" in status["message"]
    assert "pull model manifest: file does not exist" in status["message"]
    built = status["conditions"][0]
    assert (built["type"], built["status"], built["reason"]) == ("Built", "False", "BuildFailed")
    assert cluster.list_objects("v1", "Pod", "default") == [], "failed build pods are cleaned up too"
