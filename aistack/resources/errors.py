"""Validation errors as (field path, message) pairs a person can act on.

Pydantic's errors are precise but terse; this module turns them into the form users see in
`aistack validate`, in the Airflow UI and in resource conditions: a JSON-path-like field path
and a message that says what to write instead.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidResource(ValueError):
    """Raised with every error of a resource, never only the first."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def format_path(loc: Iterable[str | int]) -> str:
    """('spec', 'pipeline', 1, 'dependsOn', 0) -> 'spec.pipeline[1].dependsOn[0]'."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate, matching case- and separator-insensitively before fuzzily."""
    options = sorted(set(candidates))
    squash = {c.lower().replace("_", "").replace("-", ""): c for c in options}
    exact = squash.get(word.lower().replace("_", "").replace("-", ""))
    if exact:
        return exact
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean "x"?)' or '' — the tail every "unknown name" message shares."""
    match = suggest(word, candidates)
    return f' (did you mean "{match}"?)' if match else ""


def from_pydantic(items: Iterable[Any], root: type[BaseModel]) -> list[FieldError]:
    """Convert pydantic's error items (`ValidationError.errors()`), adding suggestions for unknown fields."""
    return [FieldError(format_path(item["loc"]), _message(item, root, tuple(item["loc"]))) for item in items]


def _message(item: Any, root: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    kind, value = item["type"], item.get("input")
    if kind == "extra_forbidden":
        fields = _field_names(_model_at(root, loc[:-1]))
        hint = did_you_mean(str(loc[-1]), fields)
        return f"unknown field{hint}" if hint else f"unknown field; valid fields are: {', '.join(sorted(fields))}"
    if kind == "missing":
        return "required field is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping of fields, got {describe(value)}"
    if kind == "list_type":
        return f"expected a list, got {describe(value)}"
    if kind == "string_type" and isinstance(value, (int, float, bool)):
        return f'expected a string, got {describe(value)}: quote it, e.g. "{value}"'
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe(value)}"
    if kind in ("enum", "literal_error"):
        allowed = re.findall(r"'([^']*)'", str(item.get("ctx", {}).get("expected", "")))
        return f"must be one of {', '.join(allowed)}, got {value!r}{did_you_mean(str(value), allowed)}"
    if kind in ("too_short", "too_long"):
        ctx = item.get("ctx", {})
        bound = ("at least", ctx.get("min_length")) if kind == "too_short" else ("at most", ctx.get("max_length"))
        unit = "character(s)" if isinstance(value, str) else "item(s)"
        return f"must have {bound[0]} {bound[1]} {unit}, got {ctx.get('actual_length')}"
    message = item["msg"]
    message = message.removeprefix("Value error, ")
    return message.replace("Input should be", "must be")


_EXPECTED = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false", "string_type": "a string"}


MAX_SHOWN = 60


def shorten(text: str) -> str:
    """User text as shown inside an error message: at most MAX_SHOWN characters."""
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def describe(value: Any) -> str:
    """A value in a few words, for an error message: a long string is cut, never quoted whole."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= MAX_SHOWN else f"a string of {len(value):,} characters ({shorten(value)!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _field_names(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """Follow a pydantic error location through the model's field types to the model it names."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            current = fields[part].annotation if part in fields else None
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Strip Optional[...] and Annotated[...] so the model or container type is left."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0]
        else:
            return annotation
