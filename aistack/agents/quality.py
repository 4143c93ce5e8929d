"""Evidence about a piece of generated work, measured rather than asked of a model.

A quality-check agent's own opinion is not worth much when its model is small: the seed's
pipeline got `{"passed": true, "score": 10}` for summaries that were empty or made up. So the
verdict also rests on what aistack measures of the checked work (a JSON value, typically an
upstream step's artifact) against its source (the run's input document):

- **statements**: every string in the work (found by a bounded walk) is a statement;
- **grounding**, a lexical measure: a statement is *supported* when at least
  SUPPORT_THRESHOLD of its content words (lower-cased words of two or more letters or any
  digits, stop words left out, number words up to a hundred as digits, each reduced by a light
  suffix stemmer) occur in the source,
  and every number in it does (a made-up date reuses the source's other words);
  the work is grounded when at least GROUNDED_SHARE of its statements are supported. It
  catches invented facts and statements about another text, not paraphrase errors that reuse
  the source's words;
- **degenerate answers**: no statements at all, an empty list where the schema requires
  one, the same item twice in a list, a statement that repeats itself (fewer than half of
  its word trigrams distinct), schema words given as content ("items", "type", "array", or
  the schema's own property names), and statements over MAX_STATEMENT characters;
- **schema**: the work validates against its JSON schema, when one is known.

`Evidence.passed` is true only when every check holds. `is_verdict()` recognises the
artifact a quality check returns (`passed`, with `evidence`), so a pipeline step can fail
when the verdict does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

RUN_INPUT = "input"  # the name of the message part that carries the run's input (the source)
SUPPORT_THRESHOLD = 0.75
GROUNDED_SHARE = 0.8
MAX_STATEMENT = 600
MAX_STATEMENTS = 500  # the walk stops after this many strings
MAX_DEPTH = 16
MEASURE = (
    f"lexical: a statement is supported when at least {SUPPORT_THRESHOLD:.0%} of its content words "
    f"(stemmed, stop words left out) and all of its numbers occur in the source"
)
SCHEMA_WORDS = frozenset(
    {
        "items",
        "type",
        "array",
        "string",
        "object",
        "properties",
        "required",
        "number",
        "integer",
        "boolean",
        "null",
        "schema",
        "enum",
        "minitems",
        "maxitems",
        "json",
    }
)
STOP_WORDS = frozenset(
    """
a an the and or but if then else of to in on at by for with from into onto over under about as is are was were be
been being am do does did doing have has had having it its it's this that these those there here their them they he
she him her his hers we us our you your i me my mine not no nor so too very can could will would shall should may
might must also just than such each every all any both few more most other some own same only which who whom whose
what when where why how while during before after above below up down out off again further once per via s t
answer question context document text says say said states stated
""".split()
)  # the last line: words about the exchange, not its content ("the answer is ...", "the text says ...")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)


def stem(word: str) -> str:
    """A light suffix stemmer: enough that "opened", "opening" and "opens" meet "open"."""
    for suffix in ("ations", "ation", "ments", "ment", "ingly", "ings", "ing", "edly", "ies", "ied", "ers", "er", "ed", "es", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return word


def words(text: str) -> list[str]:
    """Lower-cased words, a possessive "'s" dropped ("spider's" is "spider")."""
    found = (w.lower().replace("’", "'") for w in _WORD.findall(text))
    return [w[:-2] if w.endswith("'s") else w for w in found]


NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90", "hundred": "100"}


def content_words(text: str) -> list[str]:
    """The words that carry content, stemmed; number words as digits ("eight" is "8")."""
    return [NUMBER_WORDS.get(w) or stem(w) for w in words(text) if (len(w) > 1 or w.isdigit()) and w not in STOP_WORDS]


def support(statement: str, source_words: frozenset[str]) -> float:
    """The share of the statement's content words found in the source (1.0 for none to check);
    0.0 when one of its numbers is not in the source: a date or a figure is a fact on its own."""
    mine = content_words(statement)
    if not mine:
        return 1.0
    if any(w.isdigit() and w not in source_words for w in mine):
        return 0.0
    return sum(1 for w in mine if w in source_words) / len(mine)


def statements(value: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    """(path, text) of every string in a JSON value, depth-first, within MAX_DEPTH."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, str):
        yield path or "/", value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from statements(item, f"{path}/{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from statements(item, f"{path}/{index}", depth + 1)


def repetitive(text: str) -> bool:
    tokens = words(text)
    if len(tokens) < 8:
        return False
    trigrams = [tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)]
    return len(set(trigrams)) < len(trigrams) / 2


@dataclass
class Evidence:
    statements: int = 0
    supported: int = 0
    unsupported: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # paths of empty required lists (or an empty work)
    repeated: list[str] = field(default_factory=list)
    schema_words: list[str] = field(default_factory=list)
    overlong: list[str] = field(default_factory=list)
    schema_errors: list[str] = field(default_factory=list)

    @property
    def grounded_share(self) -> float:
        return self.supported / self.statements if self.statements else 0.0

    @property
    def degenerate(self) -> list[str]:
        found = [f"empty: {p}" for p in self.empty] + [f"repeated: {t}" for t in self.repeated]
        found += [f"schema word as content: {t}" for t in self.schema_words]
        return found + [f"over {MAX_STATEMENT} characters: {t[:80]}..." for t in self.overlong]

    @property
    def passed(self) -> bool:
        return self.statements > 0 and self.grounded_share >= GROUNDED_SHARE and not self.degenerate and not self.schema_errors

    def problems(self) -> list[str]:
        """What failed, in words a reader of the verdict understands."""
        found = []
        if self.statements == 0:
            found.append("the work contains no statements")
        elif self.grounded_share < GROUNDED_SHARE:
            found.append(
                f"only {self.supported} of {self.statements} statements are supported by the source ({self.grounded_share:.0%}; {GROUNDED_SHARE:.0%} needed)"
            )
        found += self.degenerate + [f"schema: {e}" for e in self.schema_errors]
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "measure": MEASURE,
            "statements": self.statements,
            "supported": self.supported,
            "groundedShare": round(self.grounded_share, 3),
            "unsupported": self.unsupported[:20],
            "degenerate": self.degenerate[:20],
            "schemaErrors": self.schema_errors[:10],
            "problems": self.problems()[:20],
        }


def measure(work: Any, source: str, schema: Mapping[str, Any] | None = None) -> Evidence:
    """The evidence about `work` (a JSON value) against `source` (see the module docstring)."""
    source_words = frozenset(content_words(source))
    evidence = Evidence()
    names = _property_names(schema) if schema else set()
    for _path, text in _bounded(statements(work)):
        text = text.strip()
        if not text:
            continue
        evidence.statements += 1
        if support(text, source_words) >= SUPPORT_THRESHOLD:
            evidence.supported += 1
        else:
            evidence.unsupported.append(text[:200])
        if len(text) > MAX_STATEMENT:
            evidence.overlong.append(text)
        if repetitive(text):
            evidence.repeated.append(text[:120])
        folded = text.lower().strip(" .:_-")
        if folded in SCHEMA_WORDS or folded in names:
            evidence.schema_words.append(text)
    for path, items in _lists(work):
        seen: set[str] = set()
        for item in items:
            key = " ".join(words(item)) if isinstance(item, str) else None
            if key and key in seen:
                evidence.repeated.append(f"{path}: {item[:120]}")
            elif key:
                seen.add(key)
    evidence.empty = _empty_required(work, schema) if schema else []
    if isinstance(work, (Mapping, list)) and not evidence.statements and not evidence.empty:
        evidence.empty.append("/")
    if schema is not None:
        evidence.schema_errors = _schema_errors(work, schema)
    return evidence


def _bounded(items: Iterator[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    for count, item in enumerate(items):
        if count >= MAX_STATEMENTS:
            return
        yield item


def _lists(value: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, list[Any]]]:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, list):
        yield path or "/", value
        for index, item in enumerate(value):
            yield from _lists(item, f"{path}/{index}", depth + 1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _lists(item, f"{path}/{key}", depth + 1)


def _property_names(schema: Any, depth: int = 0) -> set[str]:
    if depth > MAX_DEPTH or not isinstance(schema, Mapping):
        return set()
    names = {str(k).lower().replace("_", " ") for k in (schema.get("properties") or {})}
    names |= {str(k).lower() for k in (schema.get("properties") or {})}
    for child in (schema.get("properties") or {}).values():
        names |= _property_names(child, depth + 1)
    names |= _property_names(schema.get("items"), depth + 1)
    return names


def _empty_required(work: Any, schema: Mapping[str, Any], path: str = "", depth: int = 0) -> list[str]:
    """Paths of lists the schema requires that are empty (or missing)."""
    if depth > MAX_DEPTH or not isinstance(work, Mapping):
        return []
    found = []
    properties = schema.get("properties") or {}
    for name in schema.get("required") or ():
        child = properties.get(name) or {}
        value = work.get(name)
        if child.get("type") == "array" and not value:
            found.append(f"{path}/{name}")
    for name, child in properties.items():
        if isinstance(child, Mapping) and child.get("type") == "object":
            found += _empty_required(work.get(name), child, f"{path}/{name}", depth + 1)
    return found


def _schema_errors(work: Any, schema: Mapping[str, Any]) -> list[str]:
    import jsonschema

    try:
        validator = jsonschema.validators.validator_for(schema)(schema)
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '/'}: {e.message}" for e in validator.iter_errors(work)][:10]
    except jsonschema.SchemaError as exc:
        return [f"the schema is invalid: {exc.message}"]


def is_verdict(artifact: Mapping[str, Any]) -> bool:
    """Whether an artifact dict (`{"name", "mediaType", "data"}`) is a quality check's verdict."""
    data = artifact.get("data")
    return isinstance(data, Mapping) and isinstance(data.get("passed"), bool) and isinstance(data.get("evidence"), Mapping)
