"""Decoding the protobuf bodies that ``kubectl create <kind>`` sends for small kinds.

kubectl's typed clients always send ``application/vnd.kubernetes.protobuf``
bodies (the ``k8s\\0`` envelope around a ``runtime.Unknown``), with no JSON
fallback. Responses can stay JSON. Only kinds whose messages are small are
mapped here (Namespace, ConfigMap, Secret, ServiceAccount); any field outside
the tables below is refused with 415 rather than silently dropped.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from .errors import APIError, unsupported_media_type

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# message name -> field number -> (JSON name, field type); types ending in "*" repeat.
_MESSAGES: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {
        1: ("typeMeta", "TypeMeta"),
        2: ("raw", "bytes"),
        3: ("contentEncoding", "string"),
        4: ("contentType", "string"),
    },
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        4: ("selfLink", "string"),
        5: ("uid", "string"),
        6: ("resourceVersion", "string"),
        7: ("generation", "int"),
        8: ("creationTimestamp", "Time"),
        9: ("deletionTimestamp", "Time"),
        10: ("deletionGracePeriodSeconds", "int"),
        11: ("labels", "map<string>"),
        12: ("annotations", "map<string>"),
        14: ("finalizers", "string*"),
    },
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec"), 3: ("status", "NamespaceStatus")},
    "NamespaceSpec": {1: ("finalizers", "string*")},
    "NamespaceStatus": {1: ("phase", "string")},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map<string>"),
        3: ("binaryData", "map<bytes>"),
        4: ("immutable", "bool"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map<bytes>"),
        3: ("type", "string"),
        4: ("stringData", "map<string>"),
        5: ("immutable", "bool"),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta"),
        3: ("imagePullSecrets", "LocalObjectReference*"),
        4: ("automountServiceAccountToken", "bool"),
    },
    "LocalObjectReference": {1: ("name", "string")},
    "Time": {1: ("seconds", "int"), 2: ("nanos", "int")},
}
_TOP_LEVEL = {("v1", kind) for kind in ("Namespace", "ConfigMap", "Secret", "ServiceAccount")}


class _Unsupported(Exception):
    pass


def decode(raw: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object, or 415 if it is not one we can read."""
    try:
        if not raw.startswith(MAGIC):
            raise _Unsupported("missing k8s protobuf envelope")
        envelope = _message(raw[len(MAGIC) :], "Unknown")
        type_meta = envelope.get("typeMeta", {})
        key = (type_meta.get("apiVersion", ""), type_meta.get("kind", ""))
        if key not in _TOP_LEVEL:
            raise _Unsupported(f"{key[1]} in {key[0]}")
        obj = _message(envelope.get("raw", b""), key[1])
    except (_Unsupported, IndexError, ValueError) as exc:
        raise _refusal(str(exc)) from None
    return {"apiVersion": key[0], "kind": key[1], **obj}


def _refusal(why: str) -> APIError:
    error = unsupported_media_type(MEDIA_TYPE, ["application/json", "application/yaml"])
    error.message += f" (the test API server decodes protobuf only for simple core kinds; not {why})"
    return error


def _message(data: bytes, name: str) -> Any:
    table = _MESSAGES[name]
    result: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in table:
            raise _Unsupported(f"field {number} of {name}")
        field, kind = table[number]
        converted = _convert(value, kind.rstrip("*"))
        if kind.endswith("*"):
            result.setdefault(field, []).append(converted)
        elif kind.startswith("map<"):
            result.setdefault(field, {}).update(converted)
        else:
            result[field] = converted
    return _finish(name, result)


def _convert(value: int | bytes, kind: str) -> Any:
    if kind == "int":
        return _int(value)
    if kind == "bool":
        return bool(_int(value))
    data = value if isinstance(value, bytes) else b""
    if kind == "string":
        return data.decode()
    if kind == "bytes":
        return data
    if kind.startswith("map<"):
        entry = dict(_fields(data))
        key = entry.get(1, b"")
        item = entry.get(2, b"")
        if not isinstance(key, bytes) or not isinstance(item, bytes):
            raise _Unsupported("malformed map entry")
        text = item.decode() if kind == "map<string>" else base64.b64encode(item).decode()
        return {key.decode(): text}
    return _message(data, kind)


def _finish(name: str, fields: dict[str, Any]) -> Any:
    """Go omits zero values in JSON; mirror that so defaults apply as for JSON bodies."""
    if name == "Time":
        if not fields.get("seconds"):
            return None
        moment = datetime.fromtimestamp(fields["seconds"], UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if name == "Unknown":
        return fields
    return {k: v for k, v in fields.items() if v not in ("", 0, None, [], {}) or isinstance(v, bool)}


def _int(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise _Unsupported("expected a varint")
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            yield number, value
        elif wire_type == 2:
            length, position = _varint(data, position)
            yield number, data[position : position + length]
            position += length
        else:
            raise _Unsupported(f"wire type {wire_type}")


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, position
