"""Extractive JSON for a stand-in model: the sentences offered, and a grammar that quotes them in
order, each once, in the bounds of the list (checked by llama.cpp's own grammar parser and by
the real model)."""

from __future__ import annotations

import json

import pytest
from llama_cpp.llama_grammar import LlamaGrammar

from aistack.runtime import formats, quotes

DOCUMENT = """# Riverside Library: report on the pilot

From March to August, the library stayed open until 21:00. Visits grew steadily.

## What we found

- Book loans in the evening reached 1,920.
- The homework club became the most popular evening activity!

```json
{"made_up": "An upstream model said the pool closed."}
```

<p>The north abutment lost fill &amp; needs repair.</p>
"""


def test_sentences_are_the_texts_sentences_and_items_without_markup_or_fenced_blocks():
    found = quotes.sentences(DOCUMENT)
    assert found == [
        "Riverside Library: report on the pilot",
        "From March to August, the library stayed open until 21:00.",
        "Visits grew steadily.",
        "What we found",
        "Book loans in the evening reached 1,920.",
        "The homework club became the most popular evening activity!",
        "The north abutment lost fill & needs repair.",
    ]


def _grammar(schema):
    text = quotes.grammar(schema, DOCUMENT, formats.schema_grammar)
    LlamaGrammar.from_string(text, verbose=False)  # llama.cpp accepts it
    return text


def test_a_list_of_free_strings_quotes_sentences_not_headings():
    schema = {"type": "object", "required": ["points"], "properties": {"points": {"type": "array", "maxItems": 4, "items": {"type": "string"}}}}
    text = _grammar(schema)
    assert '"\\"Visits grew steadily.\\""' in text
    assert "What we found" not in text and "pool closed" not in text


def test_a_single_free_string_is_an_enum_of_every_quote_that_fits():
    rewritten = quotes.quoted_schema({"type": "string", "maxLength": 25}, quotes.sentences(DOCUMENT), [])
    assert rewritten == {"type": "string", "enum": ["Visits grew steadily.", "What we found"]}


def test_constrained_strings_and_other_types_are_left_alone():
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["a", "b"]}, "score": {"type": "integer"}, "when": {"type": "string", "format": "date"}},
    }
    assert quotes.quoted_schema(schema, quotes.sentences(DOCUMENT), []) == schema


@pytest.mark.parametrize("low, high", [(0, 2), (1, 3), (3, 3), (2, 10)])
def test_the_ordered_rule_parses_for_any_bounds(low, high):
    rules = quotes.ordered_quotes_rule("x", ["a b c.", "d e f.", "g h i.", "j k l."], low, high)
    LlamaGrammar.from_string('root ::= x\nspace ::= " "?\n' + "\n".join(rules), verbose=False)


def test_the_real_model_quotes_in_order_each_once(tmp_path):
    """Through the embedded runtime: a stand-in model (llama2 -> smollm2:135m) answering a schema."""
    import ollama

    from aistack.runtime.config import RuntimeConfig
    from aistack.runtime.endpoint import embedded_server

    schema = {"type": "object", "required": ["points"], "properties": {"points": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "string"}}}}
    with embedded_server(RuntimeConfig(store=tmp_path / "ollama", substitutions={"*": "smollm2:135m"}, n_ctx=1024)) as server:
        client = ollama.Client(host=server.url)
        client.create(model="stand-in:1", from_="llama2")
        offered = [q for q in quotes.sentences(DOCUMENT) if q[-1] in ".!?"]
        for seed in (1, 2, 3):
            answer = client.chat(
                model="stand-in:1", messages=[{"role": "user", "content": DOCUMENT}], format=schema, options={"seed": seed, "temperature": 1.0, "num_predict": 256}
            )
            points = json.loads(answer.message.content)["points"]
            assert 1 <= len(points) <= 3 and all(p in offered for p in points), points
            assert [offered.index(p) for p in points] == sorted({offered.index(p) for p in points}), "in order, each once"
        assert client.show("stand-in:1").modelinfo["aistack.json_quotes_prompt"] is True
        client.create(model="by-name:1", from_="smollm2:135m")
        assert client.show("by-name:1").modelinfo["aistack.json_quotes_prompt"] is False
