"""What one agent task cost: tokens (the model's own counts), time to first token, time, model
and build, carried in the A2A task's metadata under `aistack.usage`.

The agent measures it (it is the one that calls the model) and returns it with the task, so a
caller over A2A gets it without access to the model server; a pipeline step copies it into its
XCom result, the resource's status node and its log (counts and durations only, never content),
and the run adds the steps up. The counts come from the model server: Ollama's
`prompt_eval_count` and `eval_count`, which aistack's embedded runtime reports the same way; a
server that gives none leaves the prompt count out and the answer counted by chunks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

USAGE_KEY = "aistack.usage"


@dataclass
class UsageMeter:
    """Collects the model calls of one task (a JSON answer may take a second call)."""

    model: str
    digest: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int = 0
    first_token_seconds: float | None = None
    model_seconds: float = 0.0
    calls: int = 0
    started: float = field(default_factory=time.perf_counter)

    def call(self, *, prompt_tokens: int | None, completion_tokens: int, first_token_seconds: float | None, seconds: float) -> None:
        self.calls += 1
        if prompt_tokens is not None:
            self.prompt_tokens = (self.prompt_tokens or 0) + prompt_tokens
        self.completion_tokens += completion_tokens
        if self.first_token_seconds is None:
            self.first_token_seconds = first_token_seconds
        self.model_seconds += seconds

    def to_json(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "model": self.model,
            "digest": self.digest,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "totalTokens": (self.prompt_tokens or 0) + self.completion_tokens,
            "timeToFirstTokenSeconds": _rounded(self.first_token_seconds),
            "durationSeconds": _rounded(time.perf_counter() - self.started),
            "modelSeconds": _rounded(self.model_seconds),
            "modelCalls": self.calls,
        }
        return {k: v for k, v in usage.items() if v is not None}


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 4)


def usage_of(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The usage in a task's metadata, if the agent reported one (any A2A agent may not)."""
    value = (metadata or {}).get(USAGE_KEY)
    return dict(value) if isinstance(value, Mapping) else None


COUNTS = ("promptTokens", "completionTokens", "totalTokens")


def run_totals(usages: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Totals over agent calls' usages, or over totals already made (a forEach step's items):
    tokens, model time and the agent calls that reported one."""
    totals: dict[str, Any] = {name: 0 for name in COUNTS} | {"modelSeconds": 0.0, "agentCalls": 0}
    for usage in usages:
        if not usage:
            continue
        for name in COUNTS:
            totals[name] += int(usage.get(name) or 0)
        totals["modelSeconds"] = round(totals["modelSeconds"] + float(usage.get("modelSeconds") or 0.0), 4)
        totals["agentCalls"] += int(usage.get("agentCalls", 1))
    return totals


def status_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a usage that goes on the resource's status: counts, durations, model, build."""
    kept = ("model", "digest", *COUNTS, "timeToFirstTokenSeconds", "durationSeconds", "modelSeconds", "modelCalls", "attempt", "agentCalls")
    return {k: usage[k] for k in kept if usage.get(k) is not None}


def describe(usage: Mapping[str, Any]) -> str:
    """One line for a task log: `usage: 812 prompt + 96 completion tokens, first token 0.21s, ...`."""
    prompt = usage.get("promptTokens")
    tokens = f"{prompt if prompt is not None else '?'} prompt + {usage.get('completionTokens', 0)} completion tokens"
    parts = [tokens]
    if usage.get("timeToFirstTokenSeconds") is not None:
        parts.append(f"first token {usage['timeToFirstTokenSeconds']:.2f}s")
    if usage.get("durationSeconds") is not None:
        parts.append(f"{usage['durationSeconds']:.2f}s in the agent")
    model = str(usage.get("model") or "?")
    if usage.get("digest"):
        model += f" (build {str(usage['digest']).removeprefix('sha256:')[:12]})"
    parts.append(f"model {model}")
    if usage.get("attempt") is not None:
        parts.append(f"attempt {usage['attempt']}")
    return "usage: " + ", ".join(parts)
