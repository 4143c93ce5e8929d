"""aistack resources in a Kubernetes cluster, through the official `kubernetes` client.

Reads are tolerant (one invalid object never hides the others) and status writes go through
the status subresource with a merge patch, so they never touch what the user applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar, cast

from kubernetes import client, config

from aistack.resources import GROUP, VERSION, AnyResource, FieldError, InvalidResource, OllamaAgent, OllamaModelDefinition, TaskOrchestration, parse_resource

R = TypeVar("R", OllamaModelDefinition, OllamaAgent, TaskOrchestration)


def api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """In a pod, the service account; elsewhere the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    configuration = client.Configuration()
    try:
        if kubeconfig or context:
            raise config.ConfigException("explicit kubeconfig requested")
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    return client.ApiClient(configuration)


@dataclass
class InvalidObject:
    """A stored object that does not validate: reported, never raised, so others still load."""

    namespace: str
    name: str
    errors: list[FieldError]


class ResourceClient:
    """Typed get/list and status patches for the three aistack kinds."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = client.CustomObjectsApi(api)

    def get_raw(self, kind: type[AnyResource], name: str, namespace: str) -> dict[str, Any]:
        return self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, kind.PLURAL, name)

    def get(self, kind: type[R], name: str, namespace: str) -> R:
        return cast(R, parse_resource(self.get_raw(kind, name, namespace)))

    def list(self, kind: type[R], namespace: str | None = None, label_selector: str | None = None) -> tuple[list[R], list[InvalidObject], str]:
        """Every object of a kind: the valid ones, the invalid ones, and the list's resourceVersion."""
        if namespace:
            raw = self.api.list_namespaced_custom_object(GROUP, VERSION, namespace, kind.PLURAL, label_selector=label_selector)
        else:
            raw = self.api.list_cluster_custom_object(GROUP, VERSION, kind.PLURAL, label_selector=label_selector)
        valid: list[R] = []
        invalid: list[InvalidObject] = []
        for item in raw.get("items", []):
            meta = item.get("metadata", {})
            try:
                valid.append(cast(R, parse_resource(item)))
            except InvalidResource as exc:
                invalid.append(InvalidObject(meta.get("namespace", ""), meta.get("name", ""), exc.errors))
        return valid, invalid, raw.get("metadata", {}).get("resourceVersion", "")

    def apply(self, kind: type[AnyResource], manifest: dict[str, Any], namespace: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Create the object, or merge its spec, labels and annotations into the one there (as
        `kubectl apply` would for these fields); returns the object before (None: it was created)
        and after."""
        name = manifest["metadata"]["name"]
        body = {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}}
        try:
            return None, self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, kind.PLURAL, body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        before = self.get_raw(kind, name, namespace)
        metadata = {key: manifest["metadata"][key] for key in ("labels", "annotations") if key in manifest["metadata"]}
        after = self.api.patch_namespaced_custom_object(GROUP, VERSION, namespace, kind.PLURAL, name, {"metadata": metadata, "spec": manifest.get("spec", {})})
        return before, after

    def patch_status(self, kind: type[AnyResource], name: str, namespace: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge `status` into the object's status (lists, like conditions, are replaced whole)."""
        return self.api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, kind.PLURAL, name, {"status": status})
