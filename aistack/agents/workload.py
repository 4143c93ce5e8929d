"""Kubernetes objects that run one OllamaAgent: a ConfigMap, a Deployment, a Service and a PDB.

The same rendering serves `aistack agents manifests` (GitOps: commit the output) and the
ollama_agents DAG (server-side apply). The agent pod requests no GPU: inference happens on
the Ollama servers, which own the GPUs (see helm-values/ollama.yaml); `resources.gpu` is
recorded on the Deployment as the agent's GPU demand on that pool.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aistack import settings, yaml_output
from aistack.resources import API_VERSION, OllamaAgent, OllamaModelDefinition

AGENT_PORT = 8000
CONFIG_PATH = "/etc/aistack"
TOKEN_PATH = "/var/run/secrets/aistack"
NAMESPACE_TOKENS_PATH = "/var/run/secrets/aistack-namespaces"
NAMESPACE_TOKENS_SECRET = "aistack-agent-namespace-tokens"  # key = namespace, value = its agent token
FIELD_MANAGER = "aistack"


def labels(agent: OllamaAgent) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": agent.name,
        "app.kubernetes.io/component": "agent",
        "app.kubernetes.io/part-of": "aistack",
        "ai.stack/agent": agent.name,
    }


def service_base_url(agent: OllamaAgent) -> str:
    """The agent's Service inside the cluster: what its card advertises as the base URL."""
    return f"http://{agent.name}.{agent.namespace}.svc.cluster.local"


def service_url(agent: OllamaAgent) -> str:
    """The agent's A2A URL inside the cluster: the Service, then the card's endpoint prefix."""
    return service_base_url(agent) + agent.spec.agent_card.endpoint.rstrip("/")


def render(agent: OllamaAgent, definition: OllamaModelDefinition) -> list[dict[str, Any]]:
    """Every object for the agent, in apply order."""
    config = _config_map(agent, definition)
    objects = [config, _deployment(agent, definition, config), _service(agent)]
    if agent.spec.replicas > 1:
        objects.append(_disruption_budget(agent))
    return objects


def _metadata(agent: OllamaAgent, name: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": agent.namespace, "labels": labels(agent)}
    if agent.metadata.uid:
        meta["ownerReferences"] = [
            {"apiVersion": API_VERSION, "kind": agent.kind, "name": agent.name, "uid": agent.metadata.uid, "controller": True, "blockOwnerDeletion": True}
        ]
    return meta


def _manifest(resource: OllamaAgent | OllamaModelDefinition) -> dict[str, Any]:
    """The resource as applied: spec and identity, no status or server-filled metadata."""
    return {"apiVersion": API_VERSION, "kind": resource.kind, "metadata": {"name": resource.name, "namespace": resource.namespace}, "spec": resource.spec.to_wire()}


def _config_map(agent: OllamaAgent, definition: OllamaModelDefinition) -> dict[str, Any]:
    documents = yaml_output.dump_all([_manifest(agent), _manifest(definition)])
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(agent, f"{agent.name}-config"), "data": {"agent.yaml": documents}}


def _deployment(agent: OllamaAgent, definition: OllamaModelDefinition, config: dict[str, Any]) -> dict[str, Any]:
    resources = agent.spec.resources
    requests = {k: v.text for k, v in (("cpu", resources and resources.cpu), ("memory", resources and resources.memory)) if v}
    limits = {"memory": requests["memory"]} if "memory" in requests else {}
    config_hash = hashlib.sha256(json.dumps(config["data"], sort_keys=True).encode()).hexdigest()[:16]
    probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3}
    container = {
        "name": "agent",
        "image": settings.agent_image(),
        "args": [
            "agents",
            "serve",
            f"{CONFIG_PATH}/agent.yaml",
            "--host",
            "0.0.0.0",
            "--port",
            str(AGENT_PORT),
            "--ollama-host",
            settings.cluster_ollama_url(),
            "--public-url",
            service_base_url(agent),
        ],
        "env": [
            {"name": "AISTACK_AGENT_TOKEN_FILE", "value": f"{TOKEN_PATH}/token"},
            {"name": "AISTACK_AGENT_TOKENS_DIR", "value": NAMESPACE_TOKENS_PATH},
            {"name": "AISTACK_AGENT_MODEL", "value": definition.model_name},
        ],
        "ports": [{"name": "http", "containerPort": AGENT_PORT}],
        "resources": {"requests": requests, "limits": limits},
        "readinessProbe": probe,
        "livenessProbe": {**probe, "httpGet": {"path": "/healthz", "port": "http"}, "failureThreshold": 6},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_PATH, "readOnly": True},
            {"name": "token", "mountPath": TOKEN_PATH, "readOnly": True},
            {"name": "namespace-tokens", "mountPath": NAMESPACE_TOKENS_PATH, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    annotations = {"ai.stack/config-hash": config_hash, "prometheus.io/scrape": "true", "prometheus.io/port": str(AGENT_PORT), "prometheus.io/path": "/metrics"}
    deployment_meta = _metadata(agent, agent.name)
    if resources and resources.gpu:
        deployment_meta["annotations"] = {"ai.stack/model-gpus": str(resources.gpu)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": deployment_meta,
        "spec": {
            "replicas": agent.spec.replicas,
            "selector": {"matchLabels": {"ai.stack/agent": agent.name}},
            "template": {
                "metadata": {"labels": labels(agent), "annotations": annotations},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": config["metadata"]["name"]}},
                        {"name": "token", "secret": {"secretName": settings.agent_token_secret()}},
                        # One key per caller namespace; optional, so agents start before any team is set up.
                        {"name": "namespace-tokens", "secret": {"secretName": NAMESPACE_TOKENS_SECRET, "optional": True}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def _service(agent: OllamaAgent) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(agent, agent.name),
        "spec": {"selector": {"ai.stack/agent": agent.name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }


def _disruption_budget(agent: OllamaAgent) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(agent, agent.name),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"ai.stack/agent": agent.name}}},
    }
