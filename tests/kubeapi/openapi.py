"""OpenAPI v3 documents, just enough for kubectl.

kubectl decides whether it may delegate ``--validate=strict`` to the server by
looking for a ``fieldValidation`` query parameter on the PATCH operation tagged
with the object's group/version/kind in ``/openapi/v3/<gv>``; it also reads CRD
schemas from there (``kubectl explain``). Built-in kinds get a permissive schema.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from .resources import Registry, ResourceType

_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def _path_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _schema_name(rt: ResourceType) -> str:
    if rt.custom:
        reversed_group = ".".join(reversed(rt.group.split(".")))
        return f"{reversed_group}.{rt.version}.{rt.kind}"
    group = rt.group.split(".")[0] if rt.group else "core"
    return f"io.k8s.api.{group}.{rt.version}.{rt.kind}"


def document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.types_in(group, version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rt in types:
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}
        base = f"/{_path_key(group, version)}"
        collection = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
        item = f"{collection}/{{name}}"
        paths[collection] = {
            "get": _operation("list", rt, gvk, ("labelSelector", "fieldSelector", "watch")),
            "post": _operation("post", rt, gvk, _WRITE_PARAMS, ref),
        }
        paths[item] = {
            "get": _operation("get", rt, gvk, ()),
            "put": _operation("put", rt, gvk, _WRITE_PARAMS, ref),
            "patch": _operation("patch", rt, gvk, (*_WRITE_PARAMS, "force"), {"type": "object"}),
            "delete": _operation("delete", rt, gvk, ("dryRun",)),
        }
        if rt.status_subresource:
            paths[f"{item}/status"] = {
                "get": _operation("get", rt, gvk, ()),
                "put": _operation("put", rt, gvk, _WRITE_PARAMS, ref),
                "patch": _operation("patch", rt, gvk, (*_WRITE_PARAMS, "force"), {"type": "object"}),
            }
        schemas[_schema_name(rt)] = _object_schema(rt, gvk)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.37.1"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _operation(action: str, rt: ResourceType, gvk: dict[str, str], params: tuple[str, ...], body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{action}{rt.kind}",
        "parameters": [{"name": p, "in": "query", "schema": {"type": "boolean" if p in ("watch", "force") else "string"}} for p in params],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if body is not None:
        op["requestBody"] = {"content": {"application/json": {"schema": body}}, "required": True}
    return op


def _object_schema(rt: ResourceType, gvk: dict[str, str]) -> dict[str, Any]:
    schema: dict[str, Any]
    if rt.custom and rt.schema:
        schema = copy.deepcopy(rt.schema)
    else:
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    properties = schema.setdefault("properties", {})
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    properties.setdefault("metadata", {"type": "object"})
    schema["x-kubernetes-group-version-kind"] = [gvk]
    return schema


def root(registry: Registry) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for group, versions in registry.group_versions():
        for version in versions:
            doc = document(registry, group, version)
            key = _path_key(group, version)
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest(doc)}"}
    return {"paths": paths}


def digest(doc: Any) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()
