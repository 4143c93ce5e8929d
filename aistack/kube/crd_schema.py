"""Turn pydantic's JSON schema into a Kubernetes structural schema.

Kubernetes accepts a subset of OpenAPI v3 in CRDs: no $ref, no const, no title, nullable
instead of null unions, booleans for exclusive bounds, and `x-kubernetes-*` markers for
free-form objects and int-or-string values. Converting the models' own schema keeps the
CRDs exactly as strict as the Python validation.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_DROPPED = {"title", "default", "examples", "$defs"}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(schema, schema.get("$defs", {}))


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = _inline(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: _convert(child, defs) for name, child in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs)
        elif key == "anyOf":
            out[key] = [_convert(option, defs) for option in value]
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out[key] = _convert(value, defs)
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            out[key.replace("exclusive", "").lower()] = value
            out[key] = True
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return _ordered(out)


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """type and description first, the rest sorted: stable, readable diffs of crds/."""
    head = {key: node[key] for key in ("type", "description") if key in node}
    return head | {key: node[key] for key in sorted(node) if key not in head}


def _inline(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Resolve $ref and Optional[...] so the node stands on its own; the node's own keys win."""
    while True:
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        elif "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
            options = [option for option in node["anyOf"] if option.get("type") != "null"]
            if len(options) != 1:
                raise ValueError(f"unions cannot be expressed in a structural schema: {node['anyOf']}")
            node = {**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        else:
            return node
