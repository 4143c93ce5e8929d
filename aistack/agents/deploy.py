"""Deploy an OllamaAgent to its cluster and report how it went on the resource's status.

Objects are server-side applied with one field manager, so re-running a deployment is a
no-op and fields other tools own are left alone; readiness is the Deployment's, judged on
the generation the apply produced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.dynamic import DynamicClient

from aistack.agents.workload import FIELD_MANAGER, render, service_url
from aistack.models.builds import now
from aistack.resources import OllamaAgent, OllamaModelDefinition
from aistack.resources.agent import AgentPhase
from aistack.resources.conditions import set_condition

READY = "Ready"


def apply_objects(api: client.ApiClient, objects: list[dict[str, Any]]) -> None:
    dynamic = DynamicClient(api)
    for obj in objects:
        resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        dynamic.server_side_apply(resource, body=obj, namespace=obj["metadata"].get("namespace"), field_manager=FIELD_MANAGER, force_conflicts=True)


def deployment_ready(deployment: Any) -> tuple[bool, str]:
    """(ready, why): the applied generation is observed and every wanted replica is ready."""
    wanted = deployment.spec.replicas or 0
    status = deployment.status
    ready = (status.ready_replicas or 0) if status else 0
    observed = (status.observed_generation or 0) if status else 0
    if observed < (deployment.metadata.generation or 0):
        return False, "the new Deployment generation is not rolled out yet"
    if wanted == 0:
        return False, "scaled to 0 replicas"
    return ready >= wanted, f"{ready}/{wanted} replicas ready"


def wait_until_ready(
    api: client.ApiClient, agent: OllamaAgent, timeout: float, interval: float = 2.0, sleep: Callable[[float], None] = time.sleep
) -> tuple[bool, str]:
    apps = client.AppsV1Api(api)
    deadline = time.monotonic() + timeout
    while True:
        ready, why = deployment_ready(apps.read_namespaced_deployment(agent.name, agent.namespace))
        if ready or time.monotonic() >= deadline:
            return ready, why
        sleep(interval)


def agent_status(agent: OllamaAgent, definition: OllamaModelDefinition | None, phase: AgentPhase, message: str) -> dict[str, Any]:
    ready = phase is AgentPhase.READY
    reason = {AgentPhase.READY: "DeploymentAvailable", AgentPhase.DEPLOYING: "DeploymentProgressing"}.get(phase, "DeploymentFailed")
    previous = agent.status.conditions if agent.status else None
    generation = agent.metadata.generation
    conditions = set_condition(previous, READY, ready if phase is not AgentPhase.DEPLOYING else None, reason, message, now(), generation)
    status: dict[str, Any] = {
        "phase": phase.value,
        "ready": ready,
        "url": service_url(agent),
        "message": message,
        "conditions": [c.to_wire() for c in conditions],
    }
    if definition is not None:
        status["model"] = definition.model_name
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def deploy(api: client.ApiClient, agent: OllamaAgent, definition: OllamaModelDefinition, timeout: float) -> dict[str, Any]:
    """Apply the agent's objects and wait for them; returns the status to write (never raises on a slow rollout)."""
    apply_objects(api, render(agent, definition))
    ready, why = wait_until_ready(api, agent, timeout)
    return agent_status(agent, definition, AgentPhase.READY if ready else AgentPhase.DEPLOYING, why)
