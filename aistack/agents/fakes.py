"""Deterministic fake model backends, for protocol tests and the latency benchmark.

They are named as fakes on purpose: an agent served with one answers without any model, so a
test that uses them checks the A2A layer, never model behaviour.

- `EchoModelBackend` answers at once with the user's last message ("echo: ..."), or with
  `{"echo": ...}` when JSON is asked for.
- `ScriptedModel` plays scripted replies in order (a string is streamed word by word, an
  exception is raised), optionally slowly, and records what it was asked and whether a stream
  was closed early. Its observations are thread-safe because servers run in a background thread.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncGenerator, Sequence

from aistack.agents.backend import ChatChunk, ChatRequest, ModelBackend, ModelError

_TOKEN = re.compile(r"\S+\s*|\s+")


def prompt_words(request: ChatRequest) -> int:
    """A fake's prompt token count: the words of every message (a real model counts its tokens)."""
    return sum(len(str(m.get("content", "")).split()) for m in request.messages)


class EchoModelBackend(ModelBackend):
    """Fake: echoes the last user message instantly."""

    def __init__(self, model: str = "echo:fake"):
        self.model = model

    async def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        last = next((m["content"] for m in reversed(request.messages) if m.get("role") == "user"), "")
        prompt = prompt_words(request)
        if request.format:
            yield ChatChunk(json.dumps({"echo": last}), done=True, tokens=1, prompt_tokens=prompt)
        else:
            yield ChatChunk(f"echo: {last}", done=True, tokens=1, prompt_tokens=prompt)

    async def check(self) -> None:
        return None


class ScriptedModel(ModelBackend):
    """Fake: replies from a script, in order (the last one repeats)."""

    def __init__(
        self,
        replies: Sequence[str | Exception] = ("scripted reply",),
        *,
        token_delay: float = 0.0,
        ready: Exception | None = None,
        model: str = "scripted:fake",
        build: str | None = None,
    ):
        self.model = model
        self.build = build  # the digest it reports: a test rebuilds the model by changing it
        self.replies = list(replies)
        self.token_delay = token_delay
        self.ready_error = ready
        self.requests: list[ChatRequest] = []
        self.tokens_sent = 0
        self.closed_early = 0
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.checks = 0
        self._lock = threading.Lock()

    def _next_reply(self) -> str | Exception:
        with self._lock:
            index = min(len(self.requests) - 1, len(self.replies) - 1)
            return self.replies[index]

    async def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        with self._lock:
            self.requests.append(request)
        reply = self._next_reply()
        if isinstance(reply, Exception):
            raise reply
        tokens = _TOKEN.findall(reply) or [""]
        finished = False
        try:
            self.started.set()
            for index, token in enumerate(tokens):
                if self.token_delay:
                    await asyncio.sleep(self.token_delay)
                with self._lock:
                    self.tokens_sent += 1
                last = index == len(tokens) - 1
                yield ChatChunk(token, done=last, tokens=len(tokens) if last else None, prompt_tokens=prompt_words(request) if last else None)
            finished = True
        finally:
            if not finished:
                with self._lock:
                    self.closed_early += 1
                self.stopped.set()

    async def check(self) -> None:
        self.checks += 1
        if self.ready_error is not None:
            raise self.ready_error

    async def digest(self) -> str | None:
        return self.build


class FailingModel(ScriptedModel):
    """Fake: every call fails with `error` (a ModelError by default)."""

    def __init__(self, error: Exception | None = None, model: str = "failing:fake"):
        error = error or ModelError("fake model failure")
        super().__init__([error], ready=error, model=model)


class SwappableModel(ModelBackend):
    """Fake: forwards each request to `current`, so a test can change the model of a running agent."""

    model = "swappable:fake"

    def __init__(self, current: ModelBackend) -> None:
        self.current = current

    def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        return self.current.chat(request)

    async def check(self) -> None:
        await self.current.check()

    async def digest(self) -> str | None:
        return await self.current.digest()
