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
        # Key order is kept: the grammar emits properties in the schema's order, as Ollama does.
        return _schema_grammar(json.dumps(format_, separators=(",", ":")))
    raise ApiError(400, f'invalid format: expected "json" or a JSON schema, got {json.dumps(format_)}')


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
