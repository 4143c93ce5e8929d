"""A look at the model calls the run's agents make: tokens for the console, timings for --trace.

`ModelTap.backends(url)` is the backend factory handed to `serve_agents`: every agent gets the
usual OllamaBackend, wrapped so that each chunk of the answer is passed on (to the console, when
the orchestration asks for streaming) and each call is recorded: agent, model, the exact
messages, options and format sent, when it started, its first token, when it ended and how many
tokens it produced. The bench replays those calls directly against the same runtime.

Embedded runtime only: a JSON schema's bounded integers (`minimum`/`maximum`, e.g. the QA
model's `score`, 0 to 10) are sent as the equivalent `enum`, because the embedded runtime's
schema-to-grammar converter (llama-cpp-python's) ignores bounds, so the model could answer
`"score": 100` and fail the agent's schema validation, where a real Ollama's converter enforces
them. The schema accepts exactly the same values; the agent still validates against the
original. (To be removed when aistack/runtime/formats.py enforces bounds itself.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from aistack.agents.backend import ChatChunk, ChatRequest, ModelBackend, OllamaBackend
from aistack.resources.agent import OllamaAgent
from aistack.resources.model_definition import OllamaModelDefinition

TokenSink = Callable[[str, str], None]  # (agent, text)


@dataclass
class ModelCall:
    agent: str
    model: str
    messages: list[dict[str, str]]
    options: dict[str, Any]
    format: Any
    started: float
    first_token: float | None = None
    ended: float | None = None
    tokens: int = 0
    answer_chars: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "model": self.model,
            "messages": self.messages,
            "options": self.options,
            "format": self.format,
            "started": self.started,
            "first_token": self.first_token,
            "ended": self.ended,
            "seconds": (self.ended - self.started) if self.ended else None,
            "tokens": self.tokens,
            "answer_chars": self.answer_chars,
            "error": self.error,
        }


@dataclass
class ModelTap:
    on_start: Callable[[ModelCall], None] | None = None
    on_token: TokenSink | None = None
    calls: list[ModelCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def backends(self, url: str, embedded: bool = False) -> Callable[[OllamaAgent, OllamaModelDefinition], ModelBackend]:
        return lambda agent, definition: TappedBackend(OllamaBackend(definition.model_name, host=url), agent.name, self)

    def start(self, agent: str, model: str, request: ChatRequest) -> ModelCall:
        call = ModelCall(agent, model, [dict(m) for m in request.messages], dict(request.options), request.format, time.time())
        with self.lock:
            self.calls.append(call)
        if self.on_start is not None:
            self.on_start(call)
        return call

    def chunk(self, call: ModelCall, chunk: ChatChunk) -> None:
        if chunk.text:
            if call.first_token is None:
                call.first_token = time.time()
            call.answer_chars += len(chunk.text)
            if not chunk.done:
                call.tokens += 1
            if self.on_token is not None:
                self.on_token(call.agent, chunk.text)
        if chunk.done and chunk.tokens is not None:
            call.tokens = chunk.tokens


class TappedBackend(ModelBackend):
    def __init__(self, inner: ModelBackend, agent: str, tap: ModelTap) -> None:
        self.inner, self.agent, self.tap = inner, agent, tap
        self.model = inner.model

    async def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        call = self.tap.start(self.agent, self.model, request)
        try:
            async with aclosing(self.inner.chat(request)) as stream:
                async for chunk in stream:
                    self.tap.chunk(call, chunk)
                    yield chunk
        except Exception as exc:
            call.error = str(exc)
            raise
        finally:
            call.ended = time.time()

    async def check(self) -> None:
        await self.inner.check()

    async def stand_in(self) -> str | None:
        return await self.inner.stand_in()

    async def digest(self) -> str | None:
        return await self.inner.digest()

    def describe(self) -> str:
        return self.inner.describe()

    async def aclose(self) -> None:
        await self.inner.aclose()
