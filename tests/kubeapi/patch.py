"""The four PATCH flavours: JSON merge, JSON patch, strategic merge and apply.

Strategic merge knows the merge keys of the built-in lists that clients really
patch (containers, env, ports, volumes, conditions...), which is what kubectl's
client-side apply and the Python client's default patch content type rely on.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import APIError, bad_request, unprocessable

JSON = Any

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"

# Field name -> merge key for lists merged by key in built-in types.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "secrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
# Lists of scalars merged as sets (patchStrategy=merge on a primitive list).
_SET_LISTS = frozenset({"finalizers"})


def merge_patch(target: JSON, patch: JSON) -> JSON:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: JSON, operations: JSON) -> JSON:
    """RFC 6902; a failing operation is a 422 like the apiserver's."""
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request("the server rejected our request due to an error in our request")
        doc = _apply_operation(doc, op)
    return doc


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise unprocessable("the server rejected our request due to an error in our request")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _apply_operation(doc: JSON, op: dict[str, Any]) -> JSON:
    kind = op["op"]
    path = _pointer(op["path"])
    if kind == "test":
        if _resolve(doc, path, op["path"]) != op.get("value"):
            raise unprocessable("the server rejected our request due to an error in our request")
        return doc
    if kind == "remove":
        return _remove(doc, path, op["path"])
    if kind in ("add", "replace"):
        if "value" not in op:
            raise bad_request(f"missing value for operation {kind}")
        if kind == "replace":
            _resolve(doc, path, op["path"])
            doc = _remove(doc, path, op["path"])
        return _add(doc, path, copy.deepcopy(op["value"]), op["path"])
    if kind in ("move", "copy"):
        source = _pointer(op.get("from", ""))
        value = copy.deepcopy(_resolve(doc, source, op.get("from", "")))
        if kind == "move":
            doc = _remove(doc, source, op.get("from", ""))
        return _add(doc, path, value, op["path"])
    raise bad_request(f"Unexpected kind: {kind}")


def _missing(path: str) -> APIError:
    return unprocessable(f'the server rejected our request due to an error in our request: doc is missing path: "{path}"')


def _resolve(doc: JSON, parts: list[str], raw: str) -> JSON:
    node = doc
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise _missing(raw)
    return node


def _add(doc: JSON, parts: list[str], value: JSON, raw: str) -> JSON:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1], raw)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        index = len(parent) if last == "-" else int(last) if last.isdigit() else -1
        if not 0 <= index <= len(parent):
            raise _missing(raw)
        parent.insert(index, value)
    else:
        raise _missing(raw)
    return doc


def _remove(doc: JSON, parts: list[str], raw: str) -> JSON:
    if not parts:
        return None
    parent = _resolve(doc, parts[:-1], raw)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise _missing(raw)
    return doc


def strategic_merge(target: JSON, patch: JSON) -> JSON:
    """Strategic merge patch for built-in kinds (directive subset kubectl emits)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field, []) if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            current = result.get(key)
            result[key] = _merge_list(key, current if isinstance(current, list) else [], value)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    for key, order in patch.items():
        field = key.removeprefix("$setElementOrder/")
        if field != key and isinstance(order, list) and isinstance(result.get(field), list):
            result[field] = _reorder(field, result[field], order)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _reorder(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    """Apply ``$setElementOrder``: listed elements in that order, the rest after them."""
    key = _merge_key(field, items)

    def identity(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [identity(entry) for entry in order]
    rank = {repr(value): index for index, value in enumerate(wanted)}
    positions = sorted(range(len(items)), key=lambda i: (rank.get(repr(identity(items[i])), len(wanted)), i))
    return [items[i] for i in positions]


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return _MERGE_KEYS.get(field)


def _merge_list(field: str, current: list[Any], patch: list[Any]) -> list[Any]:
    if field in _SET_LISTS:
        return current + [v for v in patch if v not in current]
    key = _merge_key(field, patch + current)
    if key is None or not all(isinstance(i, dict) for i in patch + current):
        if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
            return [i for i in patch if not (isinstance(i, dict) and "$patch" in i)]
        return copy.deepcopy(patch)
    merged = copy.deepcopy(current)
    for item in patch:
        if item.get("$patch") == "replace":
            return [copy.deepcopy(i) for i in patch if "$patch" not in i]
        position = next((i for i, existing in enumerate(merged) if existing.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if position is not None:
                del merged[position]
        elif position is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[position] = strategic_merge(merged[position], item)
    return merged


def applied_paths(config: JSON, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Leaf paths a server-side apply configuration sets; lists are owned whole."""
    if not isinstance(config, dict) or not config:
        return {prefix} if prefix else set()
    paths: set[tuple[str, ...]] = set()
    for key, value in config.items():
        paths |= applied_paths(value, (*prefix, key))
    return paths


def server_side_apply(live: JSON, config: JSON, previously_applied: set[tuple[str, ...]]) -> JSON:
    """Merge an apply configuration into the live object for one field manager.

    Fields this manager applied before but omits now are removed, then the new
    configuration is merged over the live object. Conflicts between managers
    are not tracked: every apply behaves as if ``force=true``.
    """
    result = copy.deepcopy(live)
    for path in previously_applied - applied_paths(config):
        if path[:1] in (("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")):
            continue
        _drop_path(result, path)
    return _apply_merge(result, config)


def _apply_merge(live: JSON, config: JSON) -> JSON:
    if not isinstance(config, dict) or not isinstance(live, dict):
        return copy.deepcopy(config)
    result = copy.deepcopy(live)
    for key, value in config.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _apply_merge(result.get(key), value)
    return result


def _drop_path(obj: JSON, path: tuple[str, ...]) -> None:
    node = obj
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
