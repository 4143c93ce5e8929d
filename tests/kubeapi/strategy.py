"""Per-kind write rules: what the apiserver's registry strategies do on create/update.

Covers the generic ObjectMeta bookkeeping (uid, timestamps, generation), status
subresource isolation, and the few kind-specific defaults and validations that
clients observe (pods start Pending, secrets fold stringData, namespaces are
Active, deployments need a matching selector, CRDs get their status).
"""

from __future__ import annotations

import base64
import copy
import itertools
from collections.abc import Callable
from typing import Any

from . import crds
from .cel import RULES
from .errors import FORBIDDEN, INVALID, REQUIRED, FieldError
from .meta import new_uid, rfc3339, validate_finalizer_change, validate_metadata
from .resources import ResourceType

Object = dict[str, Any]
_cluster_ips = itertools.count(1)
_DNS_LABEL_KINDS = {("", "Namespace"), ("", "Service")}


def spec_part(obj: Object) -> Object:
    """Everything generation tracks: the object minus metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def prepare_create(rt: ResourceType, obj: Object) -> None:
    meta = obj["metadata"]
    for key in (
        "uid",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    ):
        meta.pop(key, None)
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = rfc3339()
    if rt.tracks_generation:
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    if rt.status_subresource:
        obj.pop("status", None)
    _CREATE_HOOKS.get((rt.group, rt.kind), _noop)(obj)


def prepare_update(rt: ResourceType, new: Object, old: Object, subresource: str | None) -> Object:
    """Build the object to store from the request body and the stored object."""
    if subresource == "status":
        result = copy.deepcopy(old)
        if "status" in new:
            result["status"] = new["status"]
        else:
            result.pop("status", None)
        return result
    result = copy.deepcopy(new)
    meta = result.setdefault("metadata", {})
    old_meta = old["metadata"]
    for key in (
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "generation",
    ):
        if key in old_meta:
            meta[key] = old_meta[key]
        else:
            meta.pop(key, None)
    meta.pop("selfLink", None)
    if rt.status_subresource:
        if "status" in old:
            result["status"] = copy.deepcopy(old["status"])
        else:
            result.pop("status", None)
    _UPDATE_HOOKS.get((rt.group, rt.kind), _noop_update)(result, old)
    if rt.tracks_generation and spec_part(result) != spec_part(old):
        meta["generation"] = old_meta.get("generation", 0) + 1
    return result


def validate(rt: ResourceType, obj: Object, old: Object | None) -> list[FieldError]:
    errors = validate_metadata(obj["metadata"], (rt.group, rt.kind) in _DNS_LABEL_KINDS)
    if old is not None:
        errors += validate_finalizer_change(old, obj)
    errors += _VALIDATORS.get((rt.group, rt.kind), _no_errors)(obj, old)
    return errors


def _noop(obj: Object) -> None:
    return None


def _noop_update(obj: Object, old: Object) -> None:
    return None


def _no_errors(obj: Object, old: Object | None) -> list[FieldError]:
    return []


# -- pods ---------------------------------------------------------------------


def _pod_create(pod: Object) -> None:
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        if not isinstance(container, dict):
            continue
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = ":" not in tag or tag.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest and "@" not in image else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
    pod["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def _qos_class(spec: Object) -> str:
    resources = [c.get("resources") or {} for c in spec.get("containers", []) if isinstance(c, dict)]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(r.get("limits") and (r.get("requests") in (None, r.get("limits"))) for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"


def _pod_validate(pod: Object, old: Object | None) -> list[FieldError]:
    spec = pod.get("spec") or {}
    errors: list[FieldError] = []
    containers = spec.get("containers")
    if not containers:
        errors.append(FieldError("spec.containers", REQUIRED))
    for group in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(group) or []):
            for key in ("name", "image"):
                if not isinstance(container, dict) or not container.get(key):
                    errors.append(FieldError(f"spec.{group}[{index}].{key}", REQUIRED))
    if old is not None and _mutable_pod_spec(spec) != _mutable_pod_spec(old.get("spec") or {}):
        errors.append(
            FieldError(
                "spec",
                FORBIDDEN,
                detail="pod updates may not change fields other than `spec.containers[*].image`, "
                "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                "`spec.tolerations` (only additions to existing tolerations), "
                "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            )
        )
    return errors


def _mutable_pod_spec(spec: Object) -> Object:
    """A pod spec with the fields an update may change blanked out."""
    masked = copy.deepcopy(spec)
    for key in ("activeDeadlineSeconds", "tolerations"):
        masked.pop(key, None)
    for group in ("initContainers", "containers"):
        for container in masked.get(group) or []:
            if isinstance(container, dict):
                container.pop("image", None)
    return masked


# -- other built-ins ----------------------------------------------------------


def _namespace_create(ns: Object) -> None:
    ns.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    ns["status"] = {"phase": "Active"}
    ns["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = ns["metadata"]["name"]


def _secret_create(secret: Object) -> None:
    secret.setdefault("type", "Opaque")
    _fold_string_data(secret)


def _secret_update(secret: Object, old: Object) -> None:
    _fold_string_data(secret)


def _fold_string_data(secret: Object) -> None:
    string_data = secret.pop("stringData", None) or {}
    if string_data:
        data = secret.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _service_create(service: Object) -> None:
    spec = service.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("clusterIP") != "None":
        n = next(_cluster_ips)
        spec.setdefault("clusterIP", f"10.96.{n // 250}.{n % 250 + 1}")
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    service["status"] = {"loadBalancer": {}}


def _deployment_create(deployment: Object) -> None:
    spec = deployment.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    deployment["status"] = {}


def _deployment_validate(deployment: Object, old: Object | None) -> list[FieldError]:
    spec = deployment.get("spec") or {}
    selector = (spec.get("selector") or {}).get("matchLabels")
    if not spec.get("selector"):
        return [FieldError("spec.selector", REQUIRED)]
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if selector and any(labels.get(k) != v for k, v in selector.items()):
        return [FieldError("spec.template.metadata.labels", INVALID, labels, "`selector` does not match template `labels`")]
    return []


# -- CustomResourceDefinitions -------------------------------------------------


def _crd_create(crd: Object) -> None:
    crds.apply_defaults(crd)
    crd["status"] = crds.status_for(crd)


def _crd_update(crd: Object, old: Object) -> None:
    crds.apply_defaults(crd)
    crd["status"] = crds.status_for({**crd, "status": old.get("status")})


def _crd_validate(crd: Object, old: Object | None) -> list[FieldError]:
    return crds.validate(crd, RULES)


_CREATE_HOOKS: dict[tuple[str, str], Callable[[Object], None]] = {
    ("", "Pod"): _pod_create,
    ("", "Namespace"): _namespace_create,
    ("", "Secret"): _secret_create,
    ("", "Service"): _service_create,
    ("apps", "Deployment"): _deployment_create,
    (crds.CRD_GROUP, "CustomResourceDefinition"): _crd_create,
}
_UPDATE_HOOKS: dict[tuple[str, str], Callable[[Object, Object], None]] = {
    ("", "Secret"): _secret_update,
    (crds.CRD_GROUP, "CustomResourceDefinition"): _crd_update,
}
_VALIDATORS: dict[tuple[str, str], Callable[[Object, Object | None], list[FieldError]]] = {
    ("", "Pod"): _pod_validate,
    ("apps", "Deployment"): _deployment_validate,
    (crds.CRD_GROUP, "CustomResourceDefinition"): _crd_validate,
}
