"""What `aistack run` prints: a short header, each step's state as it changes, streamed tokens, the result.

Everything goes through one `Console` (one lock), because step events arrive from the thread
that reads the Airflow worker's pipe while tokens arrive from the agents' event loop. Colour is
used only on a terminal, and never with NO_COLOR set.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from aistack.agents.client import artifact_body
from aistack.pipelines.plan import PipelinePlan

STATE_WORDS = {
    "running": "running",
    "success": "succeeded",
    "failed": "failed",
    "up_for_retry": "failed, will retry",
    "skipped": "skipped",
    "upstream_failed": "not run (an upstream step failed)",
}
ARTIFACT_LIMIT = 4000  # characters of one artifact printed; the files have everything


class Console:
    def __init__(self, out: IO[str] | None = None, color: bool | None = None) -> None:
        self.out = out or sys.stdout
        if color is None:
            color = bool(getattr(self.out, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")
        self.color = color
        self.lock = threading.RLock()
        self.started = time.monotonic()
        self._streaming = False  # in the middle of a token stream
        self.wrote = False  # anything printed yet
        self._calls: dict[str, int] = {}

    # -- low level -----------------------------------------------------------------------

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def _end_stream(self) -> None:
        if self._streaming:
            self.out.write("\n")
            self._streaming = False

    def line(self, text: str = "") -> None:
        with self.lock:
            self._end_stream()
            self.out.write(text + "\n")
            self.out.flush()
            self.wrote = True

    def field(self, name: str, value: str) -> None:
        self.line(f"  {self._paint(name.ljust(9), '1')} {value}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def stamp(self) -> str:
        return self._paint(f"[{self.elapsed():6.1f}s]", "2")

    # -- progress ------------------------------------------------------------------------

    def step(self, task: str, state: str, detail: str = "") -> None:
        colour = {"success": "32", "failed": "31", "up_for_retry": "33", "running": "36"}.get(state, "0")
        words = self._paint(STATE_WORDS.get(state, state), colour)
        if state == "running":
            self._calls.clear()
        self.line(f"{self.stamp()} {task.ljust(20)} {words}{('  ' + detail) if detail else ''}")

    def model_call(self, call: Any) -> None:
        """A model call started; a second call of the same agent in one step is a JSON retry."""
        with self.lock:
            count = self._calls.get(call.agent, 0) + 1
            self._calls[call.agent] = count
            if count > 1:
                self.line(self._paint(f"           {call.agent} asks its model again (the answer did not fit the schema)", "2"))

    def token(self, agent: str, text: str) -> None:
        with self.lock:
            prefix = "           " + self._paint("│", "2") + " "
            if not self._streaming:
                self.out.write(prefix)
                self._streaming = True
            self.out.write(self._paint(text.replace("\r", ""), "2").replace("\n", "\n" + prefix))
            self.out.flush()

    # -- summaries -----------------------------------------------------------------------

    def result(self, plan: PipelinePlan, outcome: Any, target_note: str | None = None) -> None:
        states = {t["task"]: t for t in outcome.tasks}
        verdict = self._paint("succeeded", "32;1") if outcome.succeeded else self._paint("failed", "31;1")
        self.line()
        self.line(f"Run {outcome.run_id or '(not started)'} of {plan.namespace}/{plan.name} {verdict} in {self.elapsed():.1f}s.")
        for step in plan.steps:
            info = states.get(step.task_id, {})
            state = info.get("state", "not run")
            duration = f" in {info['duration']:.1f}s" if info.get("duration") else ""
            attempts = f", {info['attempts']} attempts" if (info.get("attempts") or 0) > 1 else ""
            self.line()
            self.line(self._paint(f"{step.task_id} ({step.agent_ref}): {STATE_WORDS.get(state, state)}{duration}{attempts}", "1"))
            result = (outcome.results or {}).get(step.task_id) or {}
            artifacts = result.get("artifacts") or []
            if not artifacts and state == "success":
                self.line("  (no artifacts)")
            for artifact in artifacts:
                self.line(f"  {artifact.get('name')} ({artifact.get('mediaType')}):")
                for text_line in render_artifact(artifact).splitlines() or [""]:
                    self.line("    " + text_line)
        self.line()
        if outcome.outputs:
            self.line("Results written to:" + (f" ({target_note})" if target_note else ""))
            for location in outcome.outputs:
                self.line(f"  {location}")
        elif outcome.rolled_back:
            self.line("The results this run had written were rolled back (errorPolicy.failureAction: rollback):")
            for key in outcome.rolled_back:
                self.line(f"  {key}")
        if outcome.log:
            self.line(f"Log (Airflow, agents, model runtime): {outcome.log}")


def render_artifact(artifact: Mapping[str, Any]) -> str:
    body = artifact_body(artifact)
    if len(body) > ARTIFACT_LIMIT:
        body = body[:ARTIFACT_LIMIT] + f"\n... ({len(body) - ARTIFACT_LIMIT} more characters in the result files)"
    return body


def pipeline_shape(plan: PipelinePlan) -> str:
    """`a → b → c`, with steps that can run side by side joined by `+`: `classify + reply → merge`."""
    depth: dict[str, int] = {}
    for step in plan.steps:  # dependsOn names earlier or later steps; resolve by repeated passes
        depth.setdefault(step.task_id, 0)
    for _ in range(len(plan.steps)):
        for step in plan.steps:
            if step.upstream:
                depth[step.task_id] = max(depth[u] for u in step.upstream) + 1
    levels: dict[int, list[str]] = {}
    for step in plan.steps:
        levels.setdefault(depth[step.task_id], []).append(step.task_id)
    return " → ".join(" + ".join(names) for _, names in sorted(levels.items()))


def words(text: str) -> str:
    count = len(text.split())
    return f"{count} word{'s' if count != 1 else ''}, {len(text)} characters"
