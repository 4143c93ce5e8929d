"""Extractive JSON for a small substitute model: free strings are quoted from the prompt.

The bundled SmolLM2-135M, standing in for the `llama2` a manifest names, cannot write a faithful
summary: asked for JSON, it invents dates, meetings and criticism that no document mentions
(bench/pipeline_quality.py). What it can do is choose. So when it answers with a JSON schema, the
runtime turns every free string of the schema (no enum, const, pattern or format) into a choice
among the sentences of the request's last user message: the answer is an extractive one, every
statement a quote. A list of such strings takes its quotes in the order of the text, each at most
once, and at least MIN_LIST of them (a grammar of its own, `ordered_quotes_rule`: left free, the
model picks the same short sentence again and again, or stops after one). Fenced blocks (an upstream step's JSON, rendered by the agent) are left
out, so the quotes come from the document, not from another model's answer. Strings whose schema
caps their length only get sentences that fit.

This applies only to a bundled model that substitutes for another base (`BundledModel.quotes`)
and says so in /api/show; a real Ollama, or a model built on smollm2 by name, answers freely.
"""

from __future__ import annotations

import html
import re
from typing import Any

MAX_QUOTES = 48  # sentences offered to the grammar (an ordered list costs quotes² x maxItems alternatives)
MAX_QUOTE = 300  # characters of one quote
MIN_WORDS = 3
MIN_LIST = 2  # a list of quotes has at least this many (when its maxItems allows): left free, the model stops at one
MAX_DEPTH = 32
_SENTENCE_MARKS = ".!?)”"
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9À-ÖØ-Þ])")
_MARKUP = re.compile(r"^\s*(?:[#>*\-+]+|\d+[.)])\s*")


def sentences(text: str) -> list[str]:
    """The prompt's sentences and one-line items (headings, list items), in order, each once."""
    text = _FENCE.sub("\n", text)
    text = html.unescape(re.sub(r"<[^>]{1,200}>", " ", text))  # an HTML document's tags and entities
    found: list[str] = []
    seen: set[str] = set()
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:[#>*\-+]|\d+[.)])\s)", text):
        line = " ".join(block.split())
        for piece in _SENTENCE_END.split(line):
            piece = _MARKUP.sub("", piece).strip().strip('"')
            if len(piece.split()) < MIN_WORDS or len(piece) > MAX_QUOTE or piece in seen:
                continue
            if any(ch in piece for ch in '"\\') or not piece[0].isalnum():
                continue
            seen.add(piece)
            found.append(piece)
            if len(found) >= MAX_QUOTES:
                return found
    return found


def _fitting(schema: dict[str, Any], quotes: list[str]) -> list[str]:
    low, high = int(schema.get("minLength", 0)), int(schema.get("maxLength", MAX_QUOTE))
    return [q for q in quotes if low <= len(q) <= high]


def _free_string(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "string" and not {"enum", "const", "format"} & schema.keys()


def quoted_schema(schema: Any, quotes: list[str], lists: list[tuple[list[str], int, int]], depth: int = 0) -> Any:
    """`schema` with each free string an enum of the quotes that fit it, and each list of free
    strings a sentinel enum whose rule `grammar` writes itself (its quotes, minItems, maxItems
    appended to `lists`). Parts no quote fits are left as they are."""
    if depth > MAX_DEPTH or not quotes:
        return schema
    if isinstance(schema, list):
        return [quoted_schema(item, quotes, lists, depth + 1) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "array" and _free_string(schema.get("items")):
        fitting = [q for q in _fitting(schema["items"], quotes) if q[-1] in _SENTENCE_MARKS]  # no headings
        if fitting:
            high = int(schema.get("maxItems", len(fitting)))
            lists.append((fitting, max(int(schema.get("minItems", 0)), min(MIN_LIST, high)), high))
            return {"enum": [_sentinel(len(lists) - 1)]}
    result = {key: quoted_schema(value, quotes, lists, depth + 1) if key not in ("enum", "const", "required") else value for key, value in schema.items()}
    if _free_string(result):
        fitting = _fitting(result, quotes)
        if fitting:
            for key in ("pattern", "minLength", "maxLength"):
                result.pop(key, None)
            result["enum"] = fitting
    return result


def _sentinel(index: int) -> str:
    return f"AISTACKQUOTES{index}"


def _literal(text: str) -> str:
    """A GBNF literal matching `text` as a JSON string, quotes included."""
    inner = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = inner.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"\\"{escaped}\\""'


def ordered_quotes_rule(name: str, quotes: list[str], low: int, high: int) -> list[str]:
    """GBNF rules for a JSON list of `low`..`high` of the quotes, in their order, each at most once.

    `{name}-after-i-c`: what may follow once quote i is the c-th item: a later quote, or (from
    `low` items on) the end of the list."""
    high = min(high, len(quotes))
    low = min(low, high)
    rules = [f"{name}-q{i} ::= {_literal(q)} space" for i, q in enumerate(quotes)]

    def start(i: int, count: int) -> str:
        rest = f" {name}-after-{i}-{count}" if count < high and i < len(quotes) - 1 else ""
        return f"{name}-q{i}{rest}"

    def room(j: int, count: int) -> bool:  # quote j as item `count` leaves enough later quotes for `low`
        return len(quotes) - 1 - j >= low - count

    for count in range(1, high):
        for i in range(len(quotes) - 1):
            later = [f'"," space {start(j, count + 1)}' for j in range(i + 1, len(quotes)) if room(j, count + 1)]
            if later:
                rules.append(f"{name}-after-{i}-{count} ::= ({' | '.join(later)})" + ("?" if count >= low else ""))
            else:
                rules.append(f'{name}-after-{i}-{count} ::= ""')
    first = " | ".join(start(i, 1) for i in range(len(quotes)) if room(i, 1))
    rules.append(f'{name} ::= "[" space ({first})' + ("?" if low == 0 else "") + ' "]" space')
    return rules


def grammar(schema: dict[str, Any], prompt_text: str, convert: Any) -> str | None:
    """The GBNF of a quoting answer to `schema` (None: nothing in the prompt to quote).
    `convert` turns a JSON schema into GBNF (aistack.runtime.formats)."""
    quotes = sentences(prompt_text)
    if not quotes:
        return None
    lists: list[tuple[list[str], int, int]] = []
    rewritten = quoted_schema(schema, quotes, lists)
    text = convert(rewritten)
    extra: list[str] = []
    for index, (fitting, low, high) in enumerate(lists):
        name = f"aistack-quotes-{index}"
        text = text.replace(f'"\\"{_sentinel(index)}\\""', name)
        extra += ordered_quotes_rule(name, fitting, low, high)
    return text.rstrip("\n") + "\n" + "\n".join(extra) + "\n"
