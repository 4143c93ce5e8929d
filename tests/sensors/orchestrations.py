"""TaskOrchestration manifests and cluster helpers shared by the watcher's tests."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from kubernetes import client

from aistack.resources import GROUP, VERSION

PLURAL = "taskorchestrations"


def orchestration(name: str, text: str = "Say hello.", namespace: str = "default", cycle: bool = False) -> dict[str, Any]:
    """A valid two-step TaskOrchestration; ``cycle`` makes the steps depend on each other, which the
    API server accepts (its rules check names only) and parse_resource rejects."""
    steps = [
        {"name": "first", "agentRef": "chat-agent", "prompt": "Answer."},
        {"name": "second", "agentRef": "qa-agent", "dependsOn": ["first"]},
    ]
    if cycle:
        steps[0]["dependsOn"] = ["second"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TaskOrchestration",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"input": {"text": text}, "pipeline": steps},
    }


def apply(kubectl, *manifests: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))


class Cluster:
    """Fast direct writes (no kubectl process) for the steps a test must do within a gap."""

    def __init__(self, kube_api) -> None:
        self.api = client.CustomObjectsApi(kube_api.sync_api_client())

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        ns = manifest["metadata"].get("namespace", "default")
        return self.api.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, copy.deepcopy(manifest))

    def get(self, name: str, namespace: str = "default") -> dict[str, Any]:
        return self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def set_text(self, name: str, text: str, namespace: str = "default") -> dict[str, Any]:
        body = {"spec": {"input": {"text": text}}}
        return self.api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)

    def set_label(self, name: str, key: str, value: str, namespace: str = "default") -> dict[str, Any]:
        body = {"metadata": {"labels": {key: value}}}
        return self.api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)

    def record(self, name: str, generation: int | None = None, namespace: str = "default") -> dict[str, Any]:
        """Write status.observedGeneration as the watcher does once a run is started."""
        generation = generation or self.get(name, namespace)["metadata"]["generation"]
        body = {"status": {"observedGeneration": generation, "phase": "Pending"}}
        return self.api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, body)

    def delete(self, name: str, namespace: str = "default") -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
