"""A quality-check agent's verdict: the model's opinion, bounded by evidence aistack measures.

An agent whose role is `qa` answers with a JSON object holding `passed` (and usually `score`
and `issues`). Before that answer becomes the task's artifact, the work it judged and the
source it was judged against are taken from the message:

- the source is the text part named `input` (the run's input, which every pipeline step gets
  unless it opts out), else every text part;
- the work is the message's data parts (an upstream step's JSON artifacts: one as itself,
  several by name) and its named text parts other than the source, line by line.

`aistack.quality.measure` gives the evidence. The verdict passes only when the model said so
and the evidence holds; when the evidence fails, the score is at most the grounded share in
tenths and its problems are added to the issues. The artifact keeps the model's own opinion
(`modelVerdict`) and the evidence (`evidence`: the measure, the figures and the unsupported
statements). With no work in the message there is nothing to measure: the verdict is the
model's, and the evidence says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from a2a.types import Message, Part
from google.protobuf import json_format

from aistack.a2a.inputs import plain
from aistack.quality import RUN_INPUT, measure


def _name(part: Part) -> str | None:
    if part.HasField("metadata"):
        value = part.metadata.fields.get("name")
        if value is not None and value.string_value:
            return value.string_value
    return None


def work_and_source(message: Message) -> tuple[Any, str]:
    """(the work, or None; the source text) of a quality check's message."""
    named_source = [p.text for p in message.parts if p.WhichOneof("content") == "text" and _name(p) == RUN_INPUT]
    source = "\n\n".join(named_source or [p.text for p in message.parts if p.WhichOneof("content") == "text"])
    works: dict[str, Any] = {}
    for index, part in enumerate(message.parts):
        name = _name(part) or f"part-{index + 1}"
        kind = part.WhichOneof("content")
        if kind == "data":
            works[name] = plain(json_format.MessageToDict(part.data))
        elif kind == "text" and _name(part) not in (None, RUN_INPUT):
            works[name] = [line.strip() for line in part.text.splitlines() if line.strip()]
    if not works:
        return None, source
    return (next(iter(works.values())) if len(works) == 1 else works), source


def judged(answer: Any, message: Message) -> Any:
    """The answer with the verdict bounded by the evidence (see the module docstring)."""
    if not isinstance(answer, Mapping) or not isinstance(answer.get("passed"), bool):
        return answer
    work, source = work_and_source(message)
    opinion = {key: answer[key] for key in ("passed", "score") if key in answer}
    result = dict(answer)
    result["modelVerdict"] = opinion
    if work is None:
        result["evidence"] = {"passed": None, "measured": False,
                              "reason": "the message holds no work to check (no data part or named text part)"}
        return result
    evidence = measure(work, source)
    result["evidence"] = evidence.to_json()
    if not evidence.passed:
        result["passed"] = False
        if isinstance(answer.get("score"), int):
            result["score"] = min(answer["score"], round(10 * evidence.grounded_share))
        if isinstance(answer.get("issues"), list):
            result["issues"] = [*answer["issues"], *evidence.problems()]
    return result
