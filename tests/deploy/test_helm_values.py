"""helm-values/: every file uses only keys its pinned chart defines, and holds what aistack relies on.

The charts' key lists live in tests/deploy/charts/ (a pruned copy of the Airflow chart's
values.schema.json, checked with jsonschema; key trees written down from the other charts'
values, each file saying where it came from).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from aistack import settings
from aistack.models import build_pod
from aistack.resources import API_VERSION, OllamaAgent, OllamaModelDefinition, TaskOrchestration
from aistack.resources.agent import AgentPhase
from aistack.resources.orchestration import RunPhase

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "helm-values"
CHARTS = Path(__file__).resolve().parent / "charts"

# values file -> (chart name as written in its header, pinned version, key list file)
PINS = {
    "airflow.yaml": ("apache-airflow/airflow", "1.19.0", "airflow-1.19.0.values.schema.json"),
    "airflow-celery.yaml": ("apache-airflow/airflow", "1.19.0", "airflow-1.19.0.values.schema.json"),
    "ollama.yaml": ("ollama-helm/ollama", "1.50.0", "ollama-1.50.0.keys.yaml"),
    "gpu-operator.yaml": ("nvidia/gpu-operator", "v25.3.0", "gpu-operator-v25.3.0.keys.yaml"),
    "kube-prometheus-stack.yaml": ("prometheus-community/kube-prometheus-stack", "67.8.0", "kube-prometheus-stack-67.8.0.keys.yaml"),
}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def values(name: str) -> dict[str, Any]:
    return yaml.safe_load((VALUES / name).read_text())


def unknown_keys(data: Any, tree: Any, path: str = "") -> list[str]:
    """Paths in `data` that the key tree does not define (format: tests/deploy/charts/ollama-*.keys.yaml)."""
    if tree is None or data is None:
        return []
    if isinstance(tree, list):
        items = data if isinstance(data, list) else []
        return [p for i, item in enumerate(items) for p in unknown_keys(item, tree[0], f"{path}[{i}]")]
    if not isinstance(data, dict):
        return [f"{path or '<root>'}: a mapping is expected"]
    problems = []
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key in tree:
            problems += unknown_keys(value, tree[key], where)
        elif "*" in tree:
            problems += unknown_keys(value, tree["*"], where)
        else:
            problems.append(f"{where}: not a key of the chart")
    return problems


def chart_problems(name: str, data: Any) -> list[str]:
    keys_file = CHARTS / PINS[name][2]
    if keys_file.suffix == ".json":
        validator = jsonschema.Draft7Validator(json.loads(keys_file.read_text()))
        return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(data)]
    return unknown_keys(data, yaml.safe_load(keys_file.read_text()))


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, str]) -> bool:
    """Kubernetes' toleration matching (empty key with Exists tolerates everything)."""
    for t in tolerations:
        if t.get("effect") not in (None, "", taint["effect"]):
            continue
        if t.get("operator", "Equal") == "Exists":
            if t.get("key") in (None, "", taint["key"]):
                return True
        elif t.get("key") == taint["key"] and t.get("value", "") == taint["value"]:
            return True
    return False


@pytest.mark.parametrize("name", sorted(PINS))
def test_values_use_only_keys_of_the_pinned_chart(name):
    assert chart_problems(name, values(name)) == []


@pytest.mark.parametrize(
    "name, path, typo",
    [
        ("airflow.yaml", ("triggerer",), "enabeld"),
        ("airflow.yaml", ("dags", "gitSync"), "subpath"),
        ("ollama.yaml", ("ollama", "gpu"), "enable"),
        ("gpu-operator.yaml", ("dcgmExporter", "serviceMonitor"), "enable"),
        ("kube-prometheus-stack.yaml", ("kube-state-metrics", "customResourceState"), "enbled"),
    ],
)
def test_a_misspelt_key_is_reported_with_its_path(name, path, typo):
    data = copy.deepcopy(values(name))
    section = data
    for key in path:
        section = section[key]
    section[typo] = True
    problems = chart_problems(name, data)
    assert len(problems) == 1 and typo in problems[0], problems
    if name != "airflow.yaml":
        assert problems[0].startswith(".".join(path) + "." + typo)


def test_free_form_maps_accept_any_key():
    ollama = copy.deepcopy(values("ollama.yaml"))
    ollama["nodeSelector"]["topology.kubernetes.io/zone"] = "eu-west-1a"
    ollama["podAnnotations"] = {"example.com/anything": "x"}
    assert chart_problems("ollama.yaml", ollama) == []
    airflow = copy.deepcopy(values("airflow.yaml"))
    airflow["config"]["logging"] = {"logging_level": "DEBUG"}
    airflow["scheduler"]["podAnnotations"] = {"example.com/anything": "x"}
    assert chart_problems("airflow.yaml", airflow) == []


@pytest.mark.parametrize("name", sorted(PINS))
def test_pinned_chart_is_named_in_the_file_and_the_readme(name):
    chart, version, keys_file = PINS[name]
    header = (VALUES / name).read_text().splitlines()[0]
    assert re.search(rf"Chart: {re.escape(chart)} {re.escape(version)}\b", header), header
    assert f"--version {version}" in (VALUES / name).read_text()
    assert f"| `{name}` | `{chart}` | `{version}` |" in (VALUES / "README.md").read_text()
    assert version in keys_file


def test_airflow_runs_aistack_as_designed():
    airflow = values("airflow.yaml")
    assert airflow["executor"] == "KubernetesExecutor"
    assert airflow["triggerer"]["enabled"] is True
    image = airflow["images"]["airflow"]
    assert (image["repository"], image["tag"]) == ("ghcr.io/aistack/aistack-airflow", "0.1.0")
    assert (airflow["defaultAirflowRepository"], airflow["defaultAirflowTag"]) == ("ghcr.io/aistack/aistack-airflow", "0.1.0")
    assert airflow["airflowVersion"].startswith("3.")
    git = airflow["dags"]["gitSync"]
    assert git["enabled"] is True and git["repo"] == "https://github.com/aistack/aistack.git"
    assert (git["branch"], git["subPath"]) == ("main", "dags")
    assert airflow["config"]["core"]["min_serialized_dag_update_interval"] == 0
    assert airflow["apiSecretKeySecretName"] and airflow["jwtSecretName"]
    assert airflow["statsd"]["enabled"] is True and airflow["postgresql"]["enabled"] is True


def test_airflow_components_use_the_infra_base_service_account():
    airflow = values("airflow.yaml")
    for component in ("scheduler", "triggerer", "workers", "dagProcessor"):
        assert airflow[component]["serviceAccount"] == {"create": False, "name": "aistack-airflow"}, component
    assert airflow["multiNamespaceMode"] is False
    for component in ("scheduler", "triggerer", "workers", "dagProcessor", "apiServer", "statsd"):
        resources = airflow[component]["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"], component


def test_airflow_environment_matches_aistack_settings(monkeypatch):
    for variable in (settings.BUILD_NAMESPACE, settings.OLLAMA_URL, settings.AGENT_IMAGE, settings.AGENT_TOKEN_SECRET):
        monkeypatch.delenv(variable, raising=False)
    env = {e["name"]: e["value"] for e in values("airflow.yaml")["env"]}
    assert env[settings.BUILD_NAMESPACE] == settings.build_namespace() == "aistack-builds"
    assert env[settings.OLLAMA_URL] == settings.cluster_ollama_url()
    assert env[settings.AGENT_IMAGE] == settings.agent_image()
    assert env[settings.AGENT_TOKEN_SECRET] == settings.agent_token_secret()
    assert env[settings.AIRFLOW_UI_URL].startswith("http")


def test_airflow_connections_come_from_secrets():
    from aistack_airflow.hooks.airflow_api import CONNECTION_ID

    secrets = {s["envName"]: s for s in values("airflow.yaml")["secret"]}
    for conn_id in ("aws_default", CONNECTION_ID, "a2a_default"):
        entry = secrets[f"AIRFLOW_CONN_{conn_id.upper()}"]
        assert entry["secretKey"] == conn_id and entry["secretName"]
    token = secrets["AISTACK_AGENT_TOKEN"]
    assert (token["secretName"], token["secretKey"]) == (settings.agent_token_secret(), "token")


def test_ollama_serves_on_gpus_where_the_build_pods_store_models():
    ollama = values("ollama.yaml")
    gpu = ollama["ollama"]["gpu"]
    assert gpu["enabled"] is True and gpu["nvidiaResource"] == build_pod.GPU_RESOURCE and gpu["number"] >= 1
    pod_settings = build_pod.BuildPodSettings()
    assert tolerates(ollama["tolerations"], GPU_TAINT)
    assert ollama["nodeSelector"] == pod_settings.gpu_node_selector
    assert ollama["runtimeClassName"] == pod_settings.gpu_runtime_class
    assert ollama["persistentVolume"] == {"enabled": True, "existingClaim": pod_settings.models_claim}
    assert ollama["ollama"]["mountPath"] == build_pod.MODELS_PATH
    assert ollama["image"]["tag"] == build_pod.DEFAULT_OLLAMA_IMAGE.split(":")[1]


def test_ollama_service_is_the_one_agents_call(monkeypatch):
    monkeypatch.delenv(settings.OLLAMA_URL, raising=False)
    ollama = values("ollama.yaml")
    url = f"http://{ollama['fullnameOverride']}.ollama.svc.cluster.local:{ollama['service']['port']}"
    assert url == settings.cluster_ollama_url()


def _base_models() -> set[str]:
    bases = set()
    for path in [*REPO.glob("models/**/*.yaml"), *REPO.glob("examples/**/*.yaml")]:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == OllamaModelDefinition.KIND:
                bases.add(doc["spec"]["from"])
    return bases


def _tagged(model: str) -> str:
    return model if ":" in model else f"{model}:latest"


def test_every_base_model_is_pulled_by_ollama():
    bases = _base_models()
    assert bases, "no OllamaModelDefinition found"
    pulled = {_tagged(m) for m in values("ollama.yaml")["ollama"]["models"]["pull"]}
    assert {_tagged(b) for b in bases} <= pulled


def test_gpu_operator_provides_the_device_plugin_and_gpu_metrics():
    gpu = values("gpu-operator.yaml")
    for component in ("devicePlugin", "gfd", "dcgmExporter"):
        assert gpu[component]["enabled"] is True, component
    # The Terraform GPU node group runs an NVIDIA AMI (driver and toolkit on the node): none twice.
    assert re.search(r'ami_type\s*=\s*"AL2023_x86_64_NVIDIA"', (REPO / "infra" / "cluster-iac" / "cluster.tf").read_text())
    assert (gpu["driver"]["enabled"], gpu["toolkit"]["enabled"]) == (False, False)
    assert gpu["dcgmExporter"]["serviceMonitor"]["enabled"] is True
    assert tolerates(gpu["daemonsets"]["tolerations"], GPU_TAINT)


def _custom_resources() -> dict[str, dict[str, Any]]:
    config = values("kube-prometheus-stack.yaml")["kube-state-metrics"]["customResourceState"]["config"]
    return {r["groupVersionKind"]["kind"]: r for r in config["spec"]["resources"]}


def test_state_metrics_know_every_phase_of_the_resources():
    resources = _custom_resources()
    assert set(resources) == {TaskOrchestration.KIND, OllamaAgent.KIND}
    group, version = API_VERSION.split("/")
    for resource in resources.values():
        assert (resource["groupVersionKind"]["group"], resource["groupVersionKind"]["version"]) == (group, version)
    phases = {kind: next(m["each"]["stateSet"]["list"] for m in r["metrics"] if m["each"]["type"] == "StateSet") for kind, r in resources.items()}
    assert phases[TaskOrchestration.KIND] == [p.value for p in RunPhase]
    assert phases[OllamaAgent.KIND] == [p.value for p in AgentPhase]


def test_state_metrics_may_list_the_resources():
    kps = values("kube-prometheus-stack.yaml")["kube-state-metrics"]
    group = API_VERSION.split("/")[0]
    granted = {(g, r) for rule in kps["rbac"]["extraRules"] if {"list", "watch"} <= set(rule["verbs"]) for g in rule["apiGroups"] for r in rule["resources"]}
    assert {(group, TaskOrchestration.PLURAL), (group, OllamaAgent.PLURAL)} <= granted
    assert kps["customResourceState"]["enabled"] is True
