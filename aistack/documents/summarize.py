"""Map-reduce summarization of a chunked document through a summarizer (an A2A agent).

Map: each chunk is summarized on its own ("part i of n"). Reduce: the part summaries are packed
into groups that fit the chunk budget and each group is summarized into one ("combine these
summaries of consecutive parts"), level after level, until one summary is left. A document of
one chunk takes one call and no reduce.

The agent is asked for one text artifact, `summary` (text/markdown). Agents that answer in JSON
(the seed's summarizer-agent: its model's function schema has main_points and themes) still
produce that artifact, as JSON text; `answer_text()` renders JSON answers as markdown, and
salvages the strings of a JSON answer cut short by the model's token limit.

Every call has a message id derived from the caller's prefix and the call's place in the tree,
so a resent message (a retried Airflow task within the same try) finds the agent's first task.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aistack.documents.chunking import Chunk, pack
from aistack.documents.tokens import DEFAULT_TOKENIZER, Tokenizer

SUMMARY_ARTIFACT = {"name": "summary", "mediaType": "text/markdown"}
PROMPT_VERSION = 1  # part of the recipe fingerprint: bump when the prompts change

WHOLE_PROMPT = (
    'Summarize the document "{title}". Give its main points, key findings and any action items, '
    "briefly, using only what the document says.\n\n"
    "--- document ---\n{text}\n--- end of document ---"
)
PART_PROMPT = (
    'Summarize part {number} of {total} of the document "{title}". Give the main points and key '
    "findings of this part, briefly, using only what it says.\n\n"
    "--- part {number} of {total} ---\n{text}\n--- end of part {number} ---"
)
COMBINE_PROMPT = (
    'Below are summaries of consecutive parts of the document "{title}". Combine them into one '
    "summary of {scope}: main points, key findings and action items, without repeating yourself.\n\n"
    "{parts}"
)
COMBINED_PART = "--- summary of part {number} ---\n{text}"

# Summarizer: (prompt, message_id) -> the summary text
Summarizer = Callable[[str, str], str]


class SummaryError(RuntimeError):
    """The summarizer gave no usable summary (an empty answer)."""


@dataclass
class MapReduceResult:
    summary: str
    parts: list[str] = field(default_factory=list)  # the map step's summaries, one per chunk
    calls: int = 0
    levels: int = 0  # reduce levels (0: one chunk)


def message_id(prefix: str, *path: object) -> str:
    return hashlib.sha256("/".join([prefix, *map(str, path)]).encode()).hexdigest()[:32]


# -- answers -------------------------------------------------------------------------------

_FENCED = re.compile(r"\A```[a-zA-Z]*\s*\n?(.*?)\n?```\s*\Z", re.DOTALL)
_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:)?')
_TEXT_KEYS = ("summary", "text", "content", "answer", "output", "overview")


def _title(key: str) -> str:
    words = re.sub(r"[_\-]+", " ", re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key)).strip()
    return words[:1].upper() + words[1:].lower() if words else key


def _render(value: Any, depth: int = 0) -> list[str]:
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        lines: list[str] = []
        for item in value:
            rendered = _render(item, depth + 1)
            if rendered:
                lines.append("- " + " ".join(rendered))
        return lines
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            rendered = _render(item, depth + 1)
            if not rendered:
                continue
            if isinstance(item, str) and key.lower() in _TEXT_KEYS:
                lines += [*rendered, ""]
            elif isinstance(item, (list, dict)):
                lines += [f"**{_title(key)}**", *rendered, ""]
            else:
                lines += [f"**{_title(key)}:** {' '.join(rendered)}", ""]
        return lines[:-1] if lines and lines[-1] == "" else lines
    if value is None:
        return []
    return [json.dumps(value)]


def answer_text(answer: str) -> str:
    """The agent's answer as markdown text: JSON rendered, a cut-off JSON answer salvaged."""
    text = answer.strip()
    fenced = _FENCED.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if not text.startswith(("{", "[")):
        return text
    try:
        return "\n".join(_render(json.loads(text))).strip()
    except json.JSONDecodeError:
        pass
    values, end = [], 0
    for match in _JSON_STRING.finditer(text):
        end = match.end()
        if match.group(2):  # a key
            continue
        try:
            value = json.loads(f'"{match.group(1)}"').strip()
        except json.JSONDecodeError:
            continue
        if value:
            values.append(f"- {value}")
    tail = re.search(r'"((?:[^"\\]|\\.)*)\Z', text[end:])  # a string cut off at the end
    if tail and tail.group(1).strip():
        values.append(f"- {tail.group(1).strip()}...")
    return "\n".join(values)


# -- map-reduce ----------------------------------------------------------------------------


def _ask(summarize: Summarizer, prompt: str, mid: str) -> str:
    text = answer_text(summarize(prompt, mid))
    if not text:
        raise SummaryError("the summarizer returned an empty summary")
    return text


def summarize_chunks(
    title: str,
    chunks: Sequence[Chunk],
    summarize: Summarizer,
    *,
    budget: int,
    message_prefix: str,
    tokenizer: Tokenizer = DEFAULT_TOKENIZER,
) -> MapReduceResult:
    """Summarize a chunked document; `budget` bounds the tokens of part summaries per reduce call."""
    if not chunks:
        raise ValueError("nothing to summarize: no chunks")
    if len(chunks) == 1:
        summary = _ask(summarize, WHOLE_PROMPT.format(title=title, text=chunks[0].text), message_id(message_prefix, "whole"))
        return MapReduceResult(summary=summary, parts=[summary], calls=1, levels=0)
    total = len(chunks)
    parts = [
        _ask(summarize, PART_PROMPT.format(title=title, number=c.index + 1, total=total, text=c.text), message_id(message_prefix, "part", c.index)) for c in chunks
    ]
    result = MapReduceResult(summary="", parts=parts, calls=total)
    level = parts
    while len(level) > 1:
        result.levels += 1
        groups = pack([tokenizer.count(text) + 8 for text in level], budget)
        if len(groups) == len(level):  # every summary fills the budget alone: combine pairs anyway
            groups = [list(range(i, min(i + 2, len(level)))) for i in range(0, len(level), 2)]
        next_level = []
        for number, group in enumerate(groups):
            if len(group) == 1:
                next_level.append(level[group[0]])
                continue
            final = len(groups) == 1
            scope = "the whole document" if final else "these parts"
            combined = "\n\n".join(COMBINED_PART.format(number=i + 1, text=level[i]) for i in group)
            prompt = COMBINE_PROMPT.format(title=title, scope=scope, parts=combined)
            next_level.append(_ask(summarize, prompt, message_id(message_prefix, "combine", result.levels, number)))
            result.calls += 1
        level = next_level
    result.summary = level[0]
    return result


# -- the agent -----------------------------------------------------------------------------


class AgentSummarizer:
    """A summarizer backed by an A2A agent (a `Summarizer`: call it with prompt and message id)."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 600.0):
        from aistack.agents.client import SyncAgentClient

        self.url = url
        self._client = SyncAgentClient(url, token=token, timeout=timeout)

    def __call__(self, prompt: str, mid: str) -> str:
        result = self._client.send(prompt, artifact=SUMMARY_ARTIFACT, message_id=mid)
        artifact = result.artifact(SUMMARY_ARTIFACT["name"]) or (result.artifacts[0] if result.artifacts else None)
        if artifact is None:
            raise SummaryError(f"the agent at {self.url} returned no summary artifact")
        if "text" in artifact:
            return artifact["text"]
        return json.dumps(artifact.get("data"), ensure_ascii=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AgentSummarizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
