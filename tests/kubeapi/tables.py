"""Server-side printing: meta.k8s.io/v1 Table responses for ``kubectl get``.

kubectl asks for ``as=Table`` and prints whatever columns the server sends,
so CRD additionalPrinterColumns are evaluated here (simple JSONPath subset:
fields, indexes, ``[*]`` and ``[?(@.key=="value")]`` filters).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .meta import now, parse_time
from .resources import PrinterColumn, ResourceType

Object = dict[str, Any]
NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}


@dataclass(frozen=True)
class _Computed(PrinterColumn):
    """A built-in column computed in code, as the apiserver's printers do."""

    compute: Callable[[Object], Any] = lambda obj: None


def _pod_statuses(pod: Object) -> list[Object]:
    return (pod.get("status") or {}).get("containerStatuses") or []


def _pod_ready(pod: Object) -> str:
    statuses = _pod_statuses(pod)
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(pod: Object) -> str:
    """Same precedence as kubectl's STATUS: terminated/waiting reasons beat the phase."""
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    for status in _pod_statuses(pod):
        state = status.get("state") or {}
        for key in ("terminated", "waiting"):
            if (state.get(key) or {}).get("reason"):
                return str(state[key]["reason"])
    return str((pod.get("status") or {}).get("phase", "Unknown"))


def _restarts(pod: Object) -> int:
    return sum(int(s.get("restartCount", 0)) for s in _pod_statuses(pod))


_AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "CreationTimestamp is when the object was created.")
_BUILTIN_COLUMNS: dict[tuple[str, str], tuple[PrinterColumn, ...]] = {
    ("", "Pod"): (
        _Computed("Ready", "string", "", compute=_pod_ready),
        _Computed("Status", "string", "", compute=_pod_status),
        _Computed("Restarts", "integer", "", compute=_restarts),
    ),
    ("", "Namespace"): (PrinterColumn("Status", "string", ".status.phase"),),
    ("", "Secret"): (PrinterColumn("Type", "string", ".type"),),
    ("", "Service"): (
        PrinterColumn("Type", "string", ".spec.type"),
        PrinterColumn("Cluster-IP", "string", ".spec.clusterIP"),
    ),
    ("apps", "Deployment"): (PrinterColumn("Replicas", "integer", ".spec.replicas"),),
}
# Kinds whose server-side printer has no AGE column.
_NO_AGE: dict[tuple[str, str], tuple[PrinterColumn, ...]] = {
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (_Computed("Created At", "date", "", compute=lambda crd: crd["metadata"].get("creationTimestamp")),),
}


def wants(accept: str, as_kind: str) -> bool:
    """True when the first acceptable media type asks for ``as=<as_kind>`` in meta.k8s.io/v1."""
    for media in accept.split(","):
        params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in media.split(";")[1:])}
        if params.get("as") == as_kind and params.get("g") == "meta.k8s.io" and params.get("v") == "v1":
            return True
    return False


def columns_for(rt: ResourceType) -> tuple[PrinterColumn, ...]:
    if rt.custom:
        return rt.printer_columns or (_AGE,)
    if (rt.group, rt.kind) in _NO_AGE:
        return _NO_AGE[(rt.group, rt.kind)]
    return (*_BUILTIN_COLUMNS.get((rt.group, rt.kind), ()), _AGE)


def to_table(rt: ResourceType, objects: list[Object], include_object: str, resource_version: str) -> Object:
    columns = columns_for(rt)
    definitions = [NAME_COLUMN] + [
        {
            "name": c.name,
            "type": c.type,
            "format": c.format,
            "description": c.description,
            "priority": c.priority,
        }
        for c in columns
    ]
    rows = []
    for obj in objects:
        cells = [obj["metadata"]["name"]] + [_cell(obj, c) for c in columns]
        row: Object = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }


def partial_metadata(obj: Object) -> Object:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def _cell(obj: Object, column: PrinterColumn) -> Any:
    if isinstance(column, _Computed):
        return column.compute(obj)
    values = evaluate(column.json_path, obj)
    if not values:
        return None
    value = values[0]
    if column.type == "date":
        # Like apiextensions' table convertor: dates leave the server as ages.
        try:
            return human_duration(now() - parse_time(str(value)))
        except ValueError:
            return "<invalid>"
    if column.type == "integer":
        return value if isinstance(value, int) else None
    if column.type == "number":
        return value if isinstance(value, (int, float)) else None
    if column.type == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


_TOKEN = re.compile(r"""\.([A-Za-z0-9_\-$]+(?:\\\.[A-Za-z0-9_\-$/]+)*)|\[(\d+|\*)\]|\[\?\(@\.([\w.\-]+)\s*==\s*["']([^"']*)["']\)\]|\[['"]([^'"]+)['"]\]""")


def evaluate(path: str, obj: Any) -> list[Any]:
    """All matches of a kubectl-style JSONPath (``{}`` braces optional)."""
    expression = path.strip()
    if expression.startswith("{") and expression.endswith("}"):
        expression = expression[1:-1]
    nodes = [obj]
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if not match:
            return []
        position = match.end()
        field, index, filter_key, filter_value, quoted = match.groups()
        nodes = _step(nodes, field.replace("\\.", ".") if field else quoted, index, filter_key, filter_value)
    return nodes


def _step(nodes: list[Any], field: str | None, index: str | None, key: str | None, value: str | None) -> list[Any]:
    result: list[Any] = []
    for node in nodes:
        if field is not None:
            if isinstance(node, dict) and field in node:
                result.append(node[field])
        elif index is not None and isinstance(node, list):
            result.extend(node if index == "*" else node[int(index) : int(index) + 1])
        elif key is not None and isinstance(node, list):
            result.extend(i for i in node if isinstance(i, dict) and str(_dig(i, key)) == value)
    return result


def _dig(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def human_duration(delta: timedelta) -> str:
    """Go's duration.HumanDuration, which kubectl uses for AGE."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{hours // 24 // 365}y"
