"""labelSelector and fieldSelector parsing with the apiserver's grammar and errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*")
_EQ_RE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=|>|<)\s*({_VALUE})\s*")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # in, notin, exists, !exists, gt, lt
    values: frozenset[str]

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if not present or value is None:
            return False
        try:
            number, bound = int(value), int(next(iter(self.values)))
        except ValueError:
            return False
        return number > bound if self.op == "gt" else number < bound


def parse_label_selector(text: str | None) -> list[Requirement]:
    rest = (text or "").strip()
    requirements: list[Requirement] = []
    while rest:
        requirement, rest = _parse_requirement(rest)
        requirements.append(requirement)
        rest = rest.lstrip()
        if rest:
            if not rest.startswith(","):
                raise bad_request(f"unable to parse requirement: found '{rest[0]}', expected: ',' or end")
            rest = rest[1:].lstrip()
            if not rest:
                raise bad_request("unable to parse requirement: found '', expected: identifier")
    return requirements


def _parse_requirement(text: str) -> tuple[Requirement, str]:
    if match := _SET_RE.match(text):
        key, op, raw = match.groups()
        values = frozenset(v.strip() for v in raw.split(",") if v.strip())
        return Requirement(key, op, values), text[match.end() :]
    if match := _EQ_RE.match(text):
        key, op, value = match.groups()
        if op in (">", "<"):
            if not value.lstrip("-").isdigit():
                raise bad_request("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer")
            return Requirement(key, "gt" if op == ">" else "lt", frozenset({value})), text[match.end() :]
        return Requirement(key, "in" if op != "!=" else "notin", frozenset({value})), text[match.end() :]
    if match := _EXISTS_RE.match(text):
        negated, key = match.groups()
        return Requirement(key, "!exists" if negated else "exists", frozenset()), text[match.end() :]
    raise bad_request(f"unable to parse requirement: found '{text[:1]}', expected: identifier")


def label_predicate(text: str | None) -> Predicate:
    requirements = parse_label_selector(text)

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(labels) for r in requirements)

    return matches


# Field selectors each built-in kind supports beyond metadata.name/namespace.
_FIELDS_BY_KIND: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
}


def field_predicate(text: str | None, kind: str, extra_fields: tuple[str, ...] = ()) -> Predicate:
    allowed = {"metadata.name", "metadata.namespace", *_FIELDS_BY_KIND.get(kind, ()), *extra_fields}
    terms: list[tuple[str, bool, str]] = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        match = re.fullmatch(r"([^!=]+?)\s*(==|=|!=)\s*(.*)", part)
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        path, op, value = match.groups()
        if path not in allowed:
            raise bad_request(f"field label not supported: {path}")
        terms.append((path, op != "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) == equal for path, equal, value in terms)

    return matches


def _field_value(obj: dict[str, Any], path: str) -> str:
    if path == "source":
        path = "source.component"
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)
