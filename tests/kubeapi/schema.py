"""Structural-schema handling of custom resources: pruning, defaulting, validation.

Mirrors what apiextensions-apiserver does with a CRD's openAPIV3Schema, in the
same order: drop unknown fields (reporting them for fieldValidation), drop
nulls of non-nullable fields, apply defaults, then validate. Messages and field
paths copy kube-openapi's wording so tests can assert on them.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

from .errors import (
    DUPLICATE,
    FORBIDDEN,
    INVALID,
    NOT_SUPPORTED,
    REQUIRED,
    TOO_LONG,
    TOO_MANY,
    TYPE_INVALID,
    FieldError,
)
from .meta import OBJECT_META_FIELDS

Schema = dict[str, Any]
# Evaluates a node's x-kubernetes-validations: (schema, value, old value, path).
RuleHook = Callable[[Schema, Any, Any, str], list[FieldError]]
_ABSENT = object()
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _preserves(schema: Schema) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def _embedded(schema: Schema) -> bool:
    return bool(schema.get("x-kubernetes-embedded-resource"))


# -- pruning -------------------------------------------------------------------


def prune(obj: dict[str, Any], schema: Schema) -> list[str]:
    """Remove fields the schema does not know; returns their paths for fieldValidation."""
    unknown: list[str] = []
    _prune_meta(obj, "metadata", unknown)
    _prune_object(obj, schema, "", unknown, root=True)
    return unknown


def _prune_meta(obj: dict[str, Any], path: str, unknown: list[str]) -> None:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in [k for k in meta if k not in OBJECT_META_FIELDS]:
            unknown.append(join(path, key))
            del meta[key]


def _prune_object(value: dict[str, Any], schema: Schema, path: str, unknown: list[str], root: bool = False) -> None:
    properties: dict[str, Schema] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    keep_meta = root or _embedded(schema)
    for key in list(value):
        child_path = join(path, key)
        if keep_meta and key in _ROOT_FIELDS:
            if key == "metadata" and not root:
                _prune_meta(value, child_path, unknown)
            continue
        if key in properties:
            sub = properties[key]
        elif isinstance(additional, dict):
            sub = additional
        elif additional is True or _preserves(schema):
            continue
        else:
            unknown.append(child_path)
            del value[key]
            continue
        child = value[key]
        if child is None and not sub.get("nullable"):
            del value[key]
            continue
        _prune_value(child, sub, child_path, unknown)


def _prune_value(value: Any, schema: Schema, path: str, unknown: list[str]) -> None:
    if isinstance(value, dict):
        # A dict where the schema wants a scalar is left for validation to report.
        if schema.get("type") in ("object", None) and not schema.get("x-kubernetes-int-or-string"):
            _prune_object(value, schema, path, unknown)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _prune_value(item, schema["items"], f"{path}[{index}]", unknown)


# -- defaulting ------------------------------------------------------------------


def apply_defaults(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        properties: dict[str, Schema] = schema.get("properties") or {}
        for key, sub in properties.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                apply_defaults(value[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in value:
                if key not in properties:
                    apply_defaults(value[key], additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


# -- validation ------------------------------------------------------------------


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(value: Any, expected: str) -> bool:
    actual = json_type(value)
    return actual == expected or (expected == "number" and actual == "integer")


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, but 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and json_type(a) in (json_type(b), "integer", "number")


class Validator:
    """Validates one object against a CRD version's schema."""

    def __init__(self, schema: Schema, rules: RuleHook | None = None) -> None:
        self.schema = schema
        self.rules = rules

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
        errors: list[FieldError] = []
        schema = dict(self.schema)
        properties = {k: v for k, v in (schema.get("properties") or {}).items() if k not in _ROOT_FIELDS}
        schema["properties"] = properties
        errors += self._metadata(obj.get("metadata") or {})
        errors += self._node(obj, schema, "", old if old is not None else _ABSENT)
        return errors

    def _metadata(self, meta: dict[str, Any]) -> list[FieldError]:
        meta_schema = (self.schema.get("properties") or {}).get("metadata") or {}
        errors: list[FieldError] = []
        for key in ("name", "generateName"):
            sub = (meta_schema.get("properties") or {}).get(key)
            if sub and key in meta:
                errors += self._node(meta[key], sub, f"metadata.{key}", _ABSENT)
        return errors

    def _node(self, value: Any, schema: Schema, path: str, old: Any) -> list[FieldError]:
        shown = path or "<root>"
        if value is None:
            if schema.get("nullable") or not schema.get("type"):
                return []
            return [_type_error(path, shown, schema["type"], value)]
        if schema.get("x-kubernetes-int-or-string"):
            if json_type(value) not in ("integer", "string"):
                return [_type_error(path, shown, "integer,string", value)]
        elif schema.get("type") and not _type_ok(value, schema["type"]):
            return [_type_error(path, shown, schema["type"], value)]

        errors: list[FieldError] = []
        if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
            supported = ", ".join(_quote(option) for option in schema["enum"])
            errors.append(FieldError(path, NOT_SUPPORTED, value, f"supported values: {supported}"))
        if isinstance(value, str):
            errors += _string(value, schema, path, shown)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            errors += _number(value, schema, path, shown)
        elif isinstance(value, list):
            errors += self._array(value, schema, path, shown, old)
        elif isinstance(value, dict):
            errors += self._object(value, schema, path, shown, old)
        errors += self._combinators(value, schema, path, shown)
        if not errors and self.rules and schema.get("x-kubernetes-validations"):
            errors += self.rules(schema, value, None if old is _ABSENT else old, path)
        return errors

    def _object(self, value: dict[str, Any], schema: Schema, path: str, shown: str, old: Any) -> list[FieldError]:
        errors = [FieldError(join(path, key), REQUIRED) for key in schema.get("required", []) if key not in value]
        count = len(value)
        if "minProperties" in schema and count < schema["minProperties"]:
            errors.append(FieldError(path, INVALID, count, f"{shown} in body should have at least {schema['minProperties']} properties"))
        if "maxProperties" in schema and count > schema["maxProperties"]:
            errors.append(FieldError(path, TOO_MANY, count, f"must have at most {schema['maxProperties']} items"))
        properties: dict[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        old_map = old if isinstance(old, dict) else {}
        for key, child in value.items():
            sub = properties.get(key, additional if isinstance(additional, dict) else None)
            if sub is not None:
                errors += self._node(child, sub, join(path, key), old_map.get(key, _ABSENT))
        return errors

    def _array(self, value: list[Any], schema: Schema, path: str, shown: str, old: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(FieldError(path, INVALID, len(value), f"{shown} in body should have at least {schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(FieldError(path, TOO_MANY, len(value), f"must have at most {schema['maxItems']} items"))
        list_type = schema.get("x-kubernetes-list-type")
        keys: list[str] = schema.get("x-kubernetes-list-map-keys") or []
        if list_type == "set":
            errors += [FieldError(f"{path}[{i}]", DUPLICATE, value[i]) for i in _duplicates(value, lambda v: v)]
        elif list_type == "map" and keys:
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    errors += [FieldError(f"{path}[{index}].{k}", REQUIRED) for k in keys if k not in item]

            def keyed(item: Any) -> Any:
                return {k: item.get(k) for k in keys} if isinstance(item, dict) else item

            errors += [FieldError(f"{path}[{i}]", DUPLICATE, keyed(value[i])) for i in _duplicates(value, keyed)]
        items = schema.get("items")
        if isinstance(items, dict):
            old_items = _correlate(value, old, list_type, keys)
            for index, item in enumerate(value):
                errors += self._node(item, items, f"{path}[{index}]", next(old_items))
        return errors

    def _combinators(self, value: Any, schema: Schema, path: str, shown: str) -> list[FieldError]:
        errors: list[FieldError] = []
        if schema.get("x-kubernetes-int-or-string") and "anyOf" in schema:
            return errors
        for sub in schema.get("allOf", []):
            errors += self._node(value, sub, path, _ABSENT)
        if "anyOf" in schema and not any(not self._node(value, s, path, _ABSENT) for s in schema["anyOf"]):
            errors.append(FieldError(path, INVALID, value, f"{shown} in body must validate at least one schema (anyOf)"))
        if "oneOf" in schema and sum(not self._node(value, s, path, _ABSENT) for s in schema["oneOf"]) != 1:
            errors.append(FieldError(path, INVALID, value, f"{shown} in body must validate one and only one schema (oneOf)"))
        if "not" in schema and not self._node(value, schema["not"], path, _ABSENT):
            errors.append(FieldError(path, INVALID, value, f"{shown} in body should not validate the schema (not)"))
        return errors


def _type_error(path: str, shown: str, expected: str, value: Any) -> FieldError:
    actual = json_type(value)
    return FieldError(path, TYPE_INVALID, actual, f'{shown} in body must be of type {expected}: "{actual}"')


def _quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _number_text(value: float | int) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _string(value: str, schema: Schema, path: str, shown: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(FieldError(path, INVALID, value, f"{shown} in body should be at least {schema['minLength']} chars long"))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(FieldError(path, TOO_LONG, value, f"may not be more than {schema['maxLength']} bytes"))
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(FieldError(path, INVALID, value, f"{shown} in body should match '{schema['pattern']}'"))
    fmt = schema.get("format")
    if fmt and fmt in _FORMATS and not _FORMATS[fmt](value):
        errors.append(FieldError(path, INVALID, value, f'{shown} in body must be of type {fmt}: "{value}"'))
    return errors


def _number(value: float | int, schema: Schema, path: str, shown: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if "minimum" in schema:
        low = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= low:
            errors.append(FieldError(path, INVALID, value, f"{shown} in body should be greater than {_number_text(low)}"))
        elif value < low:
            errors.append(FieldError(path, INVALID, value, f"{shown} in body should be greater than or equal to {_number_text(low)}"))
    if "maximum" in schema:
        high = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= high:
            errors.append(FieldError(path, INVALID, value, f"{shown} in body should be less than {_number_text(high)}"))
        elif value > high:
            errors.append(FieldError(path, INVALID, value, f"{shown} in body should be less than or equal to {_number_text(high)}"))
    step = schema.get("multipleOf")
    if step and (value / step) != int(value / step):
        errors.append(FieldError(path, INVALID, value, f"{shown} in body should be a multiple of {_number_text(step)}"))
    return errors


def _duplicates(items: list[Any], key: Callable[[Any], Any]) -> list[int]:
    seen: list[Any] = []
    duplicates: list[int] = []
    for index, item in enumerate(items):
        marker = key(item)
        if any(_same(marker, s) for s in seen):
            duplicates.append(index)
        else:
            seen.append(marker)
    return duplicates


def _correlate(value: list[Any], old: Any, list_type: str | None, keys: list[str]) -> Iterator[Any]:
    """Old counterpart of each item, for CEL transition rules (map and set lists only)."""
    old_items = old if isinstance(old, list) else []
    for item in value:
        match: Any = _ABSENT
        if list_type == "map" and isinstance(item, dict):
            match = next((o for o in old_items if isinstance(o, dict) and all(o.get(k) == item.get(k) for k in keys)), _ABSENT)
        elif list_type == "set":
            match = item if any(_same(item, o) for o in old_items) else _ABSENT
        yield match


def _is_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return "T" in text.upper() or " " in text


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _is_byte(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": _is_datetime,
    "datetime": _is_datetime,
    "date": _is_date,
    "uuid": _is_uuid,
    "byte": _is_byte,
    "ipv4": lambda t: bool(re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}", t)) and all(int(p) < 256 for p in t.split(".")),
    "hostname": lambda t: bool(re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*", t)),
}


# -- schema checks when a CRD is written -----------------------------------------


def structural_errors(schema: Any, path: str) -> list[FieldError]:
    """The subset of the apiserver's structural-schema checks that catch typos in CRDs."""
    if not isinstance(schema, dict):
        return [FieldError(path, INVALID, schema, "must be an object")]
    errors: list[FieldError] = []
    relaxed = schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
    if not schema.get("type") and not relaxed:
        errors.append(FieldError(f"{path}.type", REQUIRED, detail="must not be empty for specified object fields"))
    if schema.get("type") == "array" and not isinstance(schema.get("items"), dict):
        errors.append(FieldError(f"{path}.items", REQUIRED, detail="must be specified"))
    for key, sub in (schema.get("properties") or {}).items():
        errors += structural_errors(sub, f"{path}.properties[{key}]")
    if isinstance(schema.get("additionalProperties"), dict):
        if schema.get("properties"):
            errors.append(
                FieldError(
                    f"{path}.additionalProperties",
                    FORBIDDEN,
                    detail="additionalProperties and properties are mutual exclusive",
                )
            )
        errors += structural_errors(schema["additionalProperties"], f"{path}.additionalProperties")
    if isinstance(schema.get("items"), dict):
        errors += structural_errors(schema["items"], f"{path}.items")
    for key, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict) and "pattern" in sub:
            try:
                re.compile(sub["pattern"])
            except re.error as exc:
                errors.append(FieldError(f"{path}.properties[{key}].pattern", INVALID, sub["pattern"], str(exc)))
    return errors
