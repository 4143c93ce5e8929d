"""The `format` of a chat or generate request as a llama.cpp grammar.

`"json"` constrains the output to one JSON object (llama.cpp's JSON grammar); a JSON schema
(a mapping) is converted by llama-cpp-python's schema-to-GBNF converter, so the output parses
and validates against it. Ollama's request shape is kept: `""`/None means free text, any
other string is a 400. Conversions are cached: agents send the same schema on every call.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from aistack.runtime.errors import ApiError


def grammar_text(format_: Any) -> str | None:
    """GBNF for a request's `format`, or None for free text; ApiError(400) when it is invalid."""
    if format_ is None or format_ == "":
        return None
    if format_ == "json":
        return _json_grammar()
    if isinstance(format_, Mapping):
        return schema_grammar(format_)
    raise ApiError(400, f'invalid format: expected "json" or a JSON schema, got {json.dumps(format_)}')


def schema_grammar(schema: Mapping[str, Any]) -> str:
    """GBNF for a JSON schema; ApiError(400) when the converter cannot express it."""
    # Key order is kept: the grammar emits properties in the schema's order, as Ollama does.
    return _schema_grammar(json.dumps(bounded_integers_as_enums(schema), separators=(",", ":")))


MAX_ENUM_RANGE = 256  # bounded integer ranges up to this size become enums


def bounded_integers_as_enums(schema: Any) -> Any:
    """The same JSON schema with every small bounded integer range written as an enum.

    llama-cpp-python's schema converter ignores minimum/maximum (a 0-10 score came back as 1000);
    an enum of the same values is enforced by the grammar, and accepts exactly the same answers.
    """
    if isinstance(schema, list):
        return [bounded_integers_as_enums(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: bounded_integers_as_enums(value) for key, value in schema.items()}
    if result.get("type") == "integer" and "enum" not in result:
        low = result.get("minimum", result["exclusiveMinimum"] + 1 if isinstance(result.get("exclusiveMinimum"), int) else None)
        high = result.get("maximum", result["exclusiveMaximum"] - 1 if isinstance(result.get("exclusiveMaximum"), int) else None)
        if isinstance(low, int) and isinstance(high, int) and 0 <= high - low < MAX_ENUM_RANGE:
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                result.pop(key, None)
            result["enum"] = list(range(low, high + 1))
    return result


@functools.lru_cache(maxsize=1)
def _json_grammar() -> str:
    from llama_cpp.llama_grammar import JSON_GBNF

    return JSON_GBNF


@functools.lru_cache(maxsize=256)
def _schema_grammar(schema: str) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        return json_schema_to_gbnf(schema)
    except Exception as e:  # the converter raises several types for schemas it cannot express
        raise ApiError(400, f"invalid format: cannot turn this JSON schema into a grammar: {e}") from None


def make_grammar(text: str | None) -> Any:
    """A LlamaGrammar for GBNF text (llama.cpp compiles it per generation)."""
    if text is None:
        return None
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_string(text, verbose=False)
