"""How far one model call of an agent may go: tokens, seconds, and the size of a JSON answer.

A small model held to a JSON grammar can write one string for minutes: the grammar allows a
string of any length, and nothing stopped the tokens. Every call an agent makes is bounded:

- tokens: the model definition's `numPredict` when it sets one (a Modelfile PARAMETER, applied
  by Ollama itself), else `num_predict` = DEFAULT_NUM_PREDICT is sent with the call;
- time: the whole call, stream included, is given AISTACK_MODEL_CALL_TIMEOUT seconds
  (default 180); past it the stream is closed, which stops generation, and the task fails
  saying so;
- JSON size and shape: in the schema the answer is constrained by (not the one it is validated
  against, which stays as written), a string with no `maxLength` gets MAX_STRING characters,
  an array with no `maxItems` gets MAX_ITEMS items, and a required array at least one item, so
  the grammar itself ends a runaway string or list; an object schema that lists no `required`
  fields asks for all of its properties (a small model otherwise leaves out the answer itself); free strings also start with a visible
  character and stay on one line (`statement_pattern`). Bounds the schema states are kept.

Repetition is damped by Ollama's own defaults (repeat_penalty 1.1 over the last 64 tokens),
which the embedded runtime applies too; a definition's `repeatPenalty` replaces them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

DEFAULT_NUM_PREDICT = 512
DEFAULT_CALL_TIMEOUT = 180.0
CALL_TIMEOUT_ENV = "AISTACK_MODEL_CALL_TIMEOUT"
MAX_STRING = 300
MAX_ITEMS = 5
MAX_DEPTH = 32  # schemas nested deeper are left as they are (and still validated)


def call_timeout(env: Mapping[str, str] | None = None) -> float:
    env = os.environ if env is None else env
    raw = env.get(CALL_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_CALL_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{CALL_TIMEOUT_ENV}={raw!r}: write a number of seconds, e.g. 180") from None
    if value <= 0:
        raise ValueError(f"{CALL_TIMEOUT_ENV}={raw!r}: must be more than 0 seconds")
    return value


def token_options(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The options a call adds so it has a token limit: none when the model defines num_predict."""
    return {} if parameters.get("num_predict") is not None else {"num_predict": DEFAULT_NUM_PREDICT}


def statement_pattern(min_length: int, max_length: int) -> str:
    """A string that starts with a visible character (not a space, a newline or JSON punctuation) and
    stays on one line: what a small model writes instead of a statement is often `"]\\n"` or spaces."""
    return rf'^[^ \t\n\r\[\]{{}}",:\\][^\n\r"\\]{{{max(min_length - 1, 0)},{max(max_length - 1, 0)}}}$'


def bounded_schema(schema: Any, depth: int = 0) -> Any:
    """The schema with a size bound on every string and array that has none (see the docstring)."""
    if depth > MAX_DEPTH:
        return schema
    if isinstance(schema, list):
        return [bounded_schema(item, depth + 1) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: bounded_schema(value, depth + 1) if key not in ("enum", "const", "required") else value for key, value in schema.items()}
    kind = result.get("type")
    if kind == "string" and not {"enum", "const", "pattern", "format"} & result.keys():
        low = int(result.get("minLength", 1))
        result.setdefault("maxLength", max(MAX_STRING, low))
        result["pattern"] = statement_pattern(low, int(result["maxLength"]))
    if kind == "array" and "maxItems" not in result and isinstance(result.get("items"), dict):
        result["maxItems"] = max(MAX_ITEMS, int(result.get("minItems", 0)))
    properties = result.get("properties")
    if kind == "object" and isinstance(properties, dict):
        if "required" not in result:  # a schema that names no required field describes the answer it wants
            result["required"] = list(properties)
        for name in result["required"]:
            child = properties.get(name)
            if isinstance(child, dict) and child.get("type") == "array" and "minItems" not in child:
                properties[name] = {**child, "minItems": 1}  # a required list is not an empty one
    return result
