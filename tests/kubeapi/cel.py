"""x-kubernetes-validations (CEL) evaluation through cel-python.

cel-python implements the CEL standard (macros, has(), size(), matches(),
string/list/map operations) but not type checking, so compile errors are only
syntax errors, and Kubernetes' extension libraries are partly emulated below
(the common string/list helpers). A rule that calls anything else fails with a
clear "no such function" error instead of silently passing.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from .errors import DUPLICATE, FORBIDDEN, INVALID, OMIT, REQUIRED, FieldError
from .schema import Schema, join

_REASONS = {
    "FieldValueInvalid": INVALID,
    "FieldValueForbidden": FORBIDDEN,
    "FieldValueRequired": REQUIRED,
    "FieldValueDuplicate": DUPLICATE,
}


def _str(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        result = fn(*args)
        if isinstance(result, str):
            return celtypes.StringType(result)
        if isinstance(result, bool):
            return celtypes.BoolType(result)
        if isinstance(result, int):
            return celtypes.IntType(result)
        if isinstance(result, list):
            return celtypes.ListType(result)
        return result

    return wrapper


def _is_sorted(items: list[Any]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(items))


# Kubernetes CEL library functions (strings, lists) that cel-python lacks.
_K8S_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lowerAscii": _str(lambda s: s.lower()),
    "upperAscii": _str(lambda s: s.upper()),
    "trim": _str(lambda s: s.strip()),
    "replace": _str(lambda s, old, new, n=-1: s.replace(old, new, int(n))),
    "split": _str(lambda s, sep, n=-1: [celtypes.StringType(p) for p in s.split(sep, int(n) if n >= 0 else -1)]),
    "join": _str(lambda items, sep="": sep.join(items)),
    "indexOf": _str(lambda s, sub: s.find(sub) if isinstance(s, str) else (list(s).index(sub) if sub in s else -1)),
    "lastIndexOf": _str(lambda s, sub: s.rfind(sub)),
    "substring": _str(lambda s, start, end=None: s[int(start) : None if end is None else int(end)]),
    "charAt": _str(lambda s, i: s[int(i)] if int(i) < len(s) else ""),
    "isSorted": _str(_is_sorted),
    "sum": lambda items: functools.reduce(lambda a, b: a + b, items, celtypes.IntType(0)),
    "min": lambda items: min(items),
    "max": lambda items: max(items),
    "reverse": _str(lambda s: s[::-1]),
}


class RuleError(Exception):
    """A rule that cannot be compiled; reported when the CRD is written."""


class CelRules:
    """Compiles and caches rules once per CRD; evaluates them per schema node."""

    def __init__(self) -> None:
        self._env = celpy.Environment()
        self._programs: dict[str, Any] = {}

    def compile(self, rule: str) -> Any:
        if rule not in self._programs:
            try:
                ast = self._env.compile(rule)
            except CELParseError as exc:
                raise RuleError(f"compilation failed: {exc}") from exc
            self._programs[rule] = self._env.program(ast, functions=_K8S_FUNCTIONS)
        return self._programs[rule]

    def check_schema(self, schema: Any, path: str) -> list[FieldError]:
        """Compile every rule in a schema so broken rules reject the CRD, as the apiserver does."""
        if not isinstance(schema, dict):
            return []
        errors: list[FieldError] = []
        for index, rule in enumerate(schema.get("x-kubernetes-validations") or []):
            for key in ("rule", "messageExpression"):
                if key in rule:
                    try:
                        self.compile(rule[key])
                    except RuleError as exc:
                        errors.append(FieldError(f"{path}.x-kubernetes-validations[{index}].{key}", INVALID, rule[key], str(exc)))
        for key, sub in (schema.get("properties") or {}).items():
            errors += self.check_schema(sub, f"{path}.properties[{key}]")
        for key in ("items", "additionalProperties"):
            errors += self.check_schema(schema.get(key), f"{path}.{key}")
        return errors

    def evaluate(self, schema: Schema, value: Any, old: Any, path: str) -> list[FieldError]:
        errors: list[FieldError] = []
        type_name = schema.get("type") or "object"
        activation = {"self": json_to_cel(value)}
        for rule in schema.get("x-kubernetes-validations") or []:
            uses_old = re.search(r"\boldSelf\b", rule["rule"]) is not None
            if uses_old and not rule.get("optionalOldSelf"):
                if old is None:
                    continue  # transition rules only run on updates of existing values
                activation_for_rule = {**activation, "oldSelf": json_to_cel(old)}
            elif uses_old:
                activation_for_rule = {**activation, "oldSelf": json_to_cel(old) if old is not None else None}
            else:
                activation_for_rule = activation
            result = self._run(rule["rule"], activation_for_rule)
            if result is True:
                continue
            field_path = join(path, rule["fieldPath"].lstrip(".")) if rule.get("fieldPath") else path
            kind = _REASONS.get(rule.get("reason", ""), INVALID)
            if isinstance(result, str):  # evaluation error
                errors.append(FieldError(field_path, INVALID, type_name, result))
                continue
            errors.append(FieldError(field_path, kind, type_name if kind == INVALID else OMIT, self._message(rule, activation_for_rule)))
        return errors

    def _run(self, expression: str, activation: dict[str, Any]) -> bool | str:
        """True/False for a verdict, or the error text when evaluation fails."""
        try:
            outcome = self.compile(expression).evaluate(activation)
        except (RuleError, CELEvalError) as exc:
            return _describe(exc)
        if isinstance(outcome, CELEvalError):
            return _describe(outcome)
        if isinstance(outcome, (bool, celtypes.BoolType)):
            return bool(outcome)
        return f"rule did not evaluate to a bool: {outcome!r}"

    def _message(self, rule: dict[str, Any], activation: dict[str, Any]) -> str:
        if "messageExpression" in rule:
            try:
                text = self.compile(rule["messageExpression"]).evaluate(activation)
            except (RuleError, CELEvalError):
                text = None
            if isinstance(text, str) and text.strip():
                return str(text)
        return rule.get("message") or f"failed rule: {rule['rule']}"


def _describe(exc: Exception) -> str:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    text = args[0] if args and isinstance(args[0], str) else str(exc)
    if "no such member" in text or "no such key" in text:
        key = text.split(":")[-1].strip().strip("'")
        return f"no such key: {key}"
    if "undeclared reference" in text:
        names = args[2] if len(args) > 2 and isinstance(args[2], tuple) else ()
        return f"found no matching overload for '{names[0] if names else text}'"
    return text


# Compiled programs are pure, so every server shares one cache.
RULES = CelRules()
