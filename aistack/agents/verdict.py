"""A quality-check agent's verdict: the model's opinion, bounded by evidence aistack measures.

An agent whose role is `qa` answers with a JSON object holding `passed` (and usually `score`
and `issues`). Before that answer becomes the task's artifact, the work it judged and the
source it was judged against are taken from the message:

- the source is the text part named `input` (the run's input, which every pipeline step gets
  unless it opts out), else every text part;
- the work is the message's data parts (an upstream step's JSON artifacts: one as itself,
  several by name) and its named text parts other than the source, line by line.

`aistack.agents.quality.measure` gives the evidence, which the model also sees: `evidence_note` adds
the figures to its prompt; both are given the one measurement `assess` takes. The verdict passes only when the model said so
and the evidence holds; when the evidence fails, the score is at most the grounded share in
tenths and its problems are added to the issues. The artifact keeps the model's own opinion
(`modelVerdict`) and the evidence (`evidence`: the measure, the figures and the unsupported
statements). With no work in the message there is nothing to measure: the verdict is the
model's, and the evidence says so. When the model is a small stand-in for the one its
definition names (the embedded runtime's SmolLM2 for `llama2`), its opinion is recorded and not
counted: its `passed` was measured to be noise (bench/pipeline_quality.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from a2a.types import Message
from google.protobuf import json_format

from aistack.agents.inputs import part_name, plain
from aistack.agents.quality import RUN_INPUT, Evidence, measure


def work_and_source(message: Message) -> tuple[Any, str]:
    """(the work, or None; the source text) of a quality check's message."""
    named_source = [p.text for p in message.parts if p.WhichOneof("content") == "text" and part_name(p) == RUN_INPUT]
    source = "\n\n".join(named_source or [p.text for p in message.parts if p.WhichOneof("content") == "text"])
    works: dict[str, Any] = {}
    for index, part in enumerate(message.parts):
        name = part_name(part)
        kind = part.WhichOneof("content")
        if kind == "data":
            works[name or f"part-{index + 1}"] = plain(json_format.MessageToDict(part.data))
        elif kind == "text" and name not in (None, RUN_INPUT):
            works[name] = [line.strip() for line in part.text.splitlines() if line.strip()]
    if not works:
        return None, source
    return (next(iter(works.values())) if len(works) == 1 else works), source


def assess(message: Message) -> Evidence | None:
    """The evidence about the work in a quality check's message (None: there is no work in it)."""
    work, source = work_and_source(message)
    return None if work is None else measure(work, source)


def evidence_note(evidence: Evidence) -> str:
    """What aistack measured, as a paragraph for the quality check's prompt. A judge that sees the
    measurements decides better than one that guesses; small models in particular otherwise
    answer `passed` whatever the work."""
    lines = [f"Measured by aistack against the input: {evidence.supported} of {evidence.statements} statements of the work are supported by the input."]
    lines += [f"Not supported: {text}" for text in evidence.unsupported[:5]]
    lines += [f"Problem: {problem}" for problem in evidence.degenerate[:5]]
    return "\n".join(lines)


def judged(answer: Any, evidence: Evidence | None, stand_in: str | None = None) -> Any:
    """The answer with the verdict bounded by `evidence` (from `assess`; see the module docstring).
    With `stand_in` (the model is a small substitute for the one its definition names, e.g.
    "llama2 -> smollm2:135m"), the model's opinion is recorded but does not decide: the verdict
    rests on the evidence alone, and says so."""
    if not isinstance(answer, Mapping) or not isinstance(answer.get("passed"), bool):
        return answer
    opinion: dict[str, Any] = {key: answer[key] for key in ("passed", "score") if key in answer}
    result = dict(answer)
    result["modelVerdict"] = opinion
    if evidence is None:
        result["evidence"] = {"passed": None, "measured": False, "reason": "the message holds no work to check (no data part or named text part)"}
        return result
    result["evidence"] = evidence.to_json()
    if stand_in:
        opinion["counted"] = False
        opinion["why"] = f"the model is a stand-in ({stand_in}): the verdict rests on the evidence"
        result["passed"] = evidence.passed
        if evidence.passed and isinstance(answer.get("score"), int):
            result["score"] = max(answer["score"], round(10 * evidence.grounded_share))
        if isinstance(answer.get("issues"), list):
            result["issues"] = []  # a stand-in's issues are quotes of its prompt, not findings
    if not evidence.passed:
        result["passed"] = False
        if isinstance(answer.get("score"), int):
            result["score"] = min(answer["score"], round(10 * evidence.grounded_share))
        if isinstance(answer.get("issues"), list):
            result["issues"] = [*result["issues"], *evidence.problems()]
    return result
