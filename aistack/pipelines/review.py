"""What a person sees of a step's output or of an agent's question, and what their answer does
(no Airflow here: operators/pipeline_review.py and operators/a2a_questions.py ask through
Airflow's human-in-the-loop requests).

The body is Markdown, which Airflow's UI renders: every artifact is shown inside a fenced block
whose fence is longer than any run of backticks in it, so an agent's text is shown, never
rendered as markup, and the body is bounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aistack.agents.client import artifact_body

APPROVE, REJECT = "Approve", "Reject"
MAX_SHOWN = 20_000  # characters of one artifact in the body; the full text is in XCom
_TICKS = re.compile(r"`+")


def fenced(text: str) -> str:
    """`text` as a Markdown code block that nothing inside it can close."""
    longest = max((len(run) for run in _TICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def review_body(pipeline: str, step: str, result: Mapping[str, Any]) -> str:
    lines = [f"Step **{step}** of pipeline **{pipeline}** returned:", ""]
    for artifact in result.get("artifacts") or ():
        body = artifact_body(artifact)
        cut = f"\n\n(first {MAX_SHOWN:,} of {len(body):,} characters)" if len(body) > MAX_SHOWN else ""
        lines += [f"**{artifact.get('name')}** ({artifact.get('mediaType')}):", "", fenced(body[:MAX_SHOWN]) + cut, ""]
    lines.append("Approve to go on with it (edited, if you change the fields below), or reject to fail the step.")
    return "\n".join(lines)


@dataclass(frozen=True)
class Decision:
    approved: bool
    summary: str  # for the status node and the log: "approved by alice", "timed out: rejected"...
    edits: dict[str, str] = field(default_factory=dict)


def decision_of(answer: Mapping[str, Any], *, timed_out: bool, original: Mapping[str, Any], editable: Sequence[str]) -> Decision:
    """The reviewer's answer (chosen option, form fields, who) as a decision on the step."""
    approved = APPROVE in (answer.get("chosen_options") or ())
    user = answer.get("responded_by_user") or {}
    who = user.get("name") or user.get("id") if isinstance(user, Mapping) else None
    if timed_out:
        return Decision(approved, f"timed out: {'approved' if approved else 'rejected'}")
    texts = {a.get("name"): a.get("text") for a in original.get("artifacts") or ()}
    fields = answer.get("params_input") or {}
    edits = {name: str(fields[name]) for name in editable if isinstance(fields.get(name), str) and fields[name] != texts.get(name)}
    verb = ("edited" if edits else "approved") if approved else "rejected"
    return Decision(approved, f"{verb} by {who or 'a reviewer'}", edits if approved else {})


def edited_result(result: Mapping[str, Any], decision: Decision) -> dict[str, Any]:
    """The step's result as downstream steps get it: the reviewer's edits in place, and the review."""
    artifacts = [{**a, "text": decision.edits[a["name"]]} if a.get("name") in decision.edits else dict(a) for a in result.get("artifacts") or ()]
    return {**result, "artifacts": artifacts, "review": {"decision": decision.summary, "edited": sorted(decision.edits)}}


# -- an agent's question (TASK_STATE_INPUT_REQUIRED), answered by a person -----------------

ANSWER, GIVE_UP = "Send answer", "Give up"
ANSWER_FIELD = "answer"


class Unanswered(Exception):
    """Nobody answered the agent's question, or the person gave up: the step fails with this."""


def question_body(agent: str, step: str, question: str, round_: int, rounds: int, task_id: str) -> str:
    """What the person sees: the agent's question (fenced, like a review's artifacts), which round
    it is, and where the answer goes."""
    shown = question[:MAX_SHOWN] or "(the agent asked without saying what it needs)"
    return "\n".join(
        [
            f"Agent **{agent}** needs more input to finish step **{step}** (question {round_} of at most {rounds}):",
            "",
            fenced(shown),
            "",
            f"Write the answer below and choose {ANSWER!r}: it goes back to the agent's task `{task_id}`. "
            f"{GIVE_UP!r} fails the step. If the agent asks again, this request opens again; "
            "its newest question is then in the task's log and in its XCom `agent_question`.",
        ]
    )


def answer_of(event: Mapping[str, Any], *, timeout: str) -> str:
    """The person's answer from Airflow's human-in-the-loop event, or Unanswered saying why not."""
    if "error" in event:
        if event.get("error_type") == "timeout":
            raise Unanswered(f"nobody answered the agent's question within {timeout} (inputRequired.timeout)")
        raise Unanswered(f"the question could not be answered: {event['error']}")
    if GIVE_UP in (event.get("chosen_options") or ()):
        user = event.get("responded_by_user") or {}
        who = user.get("name") if isinstance(user, Mapping) else None
        raise Unanswered(f"{who or 'the person asked'} gave up on the agent's question")
    answer = (event.get("params_input") or {}).get(ANSWER_FIELD)
    if not isinstance(answer, str) or not answer.strip():
        raise Unanswered(f"the answer to the agent's question was empty: write it in the field {ANSWER_FIELD!r}")
    return answer
