"""The model behind an agent, as an interface: the real one calls Ollama, tests use fakes.

The agent server only needs two things from a model: a streamed chat answer that stops as soon
as the stream is closed (that is how a cancelled task stops generating), and a readiness check.
`OllamaBackend` provides them with the official `ollama` client, so it works against a real
Ollama server and against aistack's embedded runtime alike. The deterministic fakes for tests
and benchmarks are in `aistack.agents.fakes`.

Model errors carry a message that says what to fix (build the model, start Ollama, set the
host), because that message ends up as the FAILED task's status message in a pipeline run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class ChatRequest:
    """One chat call: Ollama-style messages, options (temperature, num_ctx...) and format."""

    messages: tuple[Mapping[str, str], ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    format: str | dict[str, Any] | None = None


@dataclass(frozen=True)
class ChatChunk:
    """A piece of the answer; the last one has `done` and, when known, the model's own counts of
    the tokens it generated and of the prompt's tokens."""

    text: str
    done: bool = False
    tokens: int | None = None
    prompt_tokens: int | None = None


class ModelError(Exception):
    """A model call failed; the message says what to fix."""


class ModelNotFound(ModelError):
    pass


class ModelUnavailable(ModelError):
    pass


class ModelBackend(ABC):
    """What an agent needs from its model."""

    model: str

    @abstractmethod
    def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """Stream the answer; closing the iterator must stop generation promptly."""

    @abstractmethod
    async def check(self) -> None:
        """Return when the model can answer; raise ModelError (saying why) otherwise."""

    def describe(self) -> str:
        return self.model

    async def digest(self) -> str | None:
        """The build digest of the model (it changes when the model is rebuilt), or None when the
        server does not say: pipeline steps reuse a cached result only from the same build."""
        return None

    async def stand_in(self) -> str | None:
        """What the model stands in for, when the server built it on a substitute base model
        (aistack's embedded runtime says so in /api/show), else None."""
        return None

    async def aclose(self) -> None:
        return None


def ollama_url(host: str | None) -> str:
    """The URL the official client uses for `host` (None: OLLAMA_HOST, else its default)."""
    import os

    from ollama._client import _parse_host

    return _parse_host(host or os.environ.get("OLLAMA_HOST"))


class OllamaBackend(ModelBackend):
    """Calls `model` on the Ollama server at `host` (None: OLLAMA_HOST, as the client reads it)."""

    def __init__(self, model: str, host: str | None = None, timeout: float = 300.0):
        import ollama

        self.model = model
        self._client = ollama.AsyncClient(host=host, timeout=httpx.Timeout(timeout, connect=5.0))
        self.host = ollama_url(host)
        self._stand_in: str | None = None

    def describe(self) -> str:
        return f"{self.model} on Ollama at {self.host}"

    async def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        stream = None
        try:
            stream = await self._client.chat(  # type: ignore[call-overload]  # ollama's overloads want literal stream flags
                model=self.model,
                messages=[dict(m) for m in request.messages],
                options=dict(request.options) or None,
                format=request.format or None,
                stream=True,
            )
            async for part in stream:
                if part.done:
                    yield ChatChunk(part.message.content or "", done=True, tokens=part.eval_count, prompt_tokens=part.prompt_eval_count)
                else:
                    yield ChatChunk(part.message.content or "")
        except Exception as exc:
            raise self._translate(exc) from exc
        finally:
            if stream is not None:
                await stream.aclose()  # closes the HTTP response: the server stops generating

    async def check(self) -> None:
        try:
            await self._client.show(self.model)
        except Exception as exc:
            raise self._translate(exc) from exc

    async def digest(self) -> str | None:
        wanted = {self.model, f"{self.model}:latest"} if ":" not in self.model else {self.model}
        try:
            listed = (await self._client.list()).models
        except Exception:
            return None  # unknown now: the caller treats the model as unidentified
        return next((entry.digest for entry in listed if (entry.model or "") in wanted and entry.digest), None)

    async def stand_in(self) -> str | None:
        if self._stand_in is None:
            try:
                info = (await self._client.show(self.model)).modelinfo or {}
            except Exception:
                return None  # unknown now; asked again next time
            self._stand_in = str(info.get("aistack.substitution") or "")
        return self._stand_in or None

    async def aclose(self) -> None:
        await self._client.close()

    def _translate(self, exc: Exception) -> Exception:
        import ollama

        if isinstance(exc, ModelError):
            return exc
        from aistack.runtime.process import exit_cause

        died = exit_cause(self.host)
        if died is not None and isinstance(exc, (ConnectionError, httpx.TransportError)):
            return ModelUnavailable(died)
        if isinstance(exc, ollama.ResponseError):
            if exc.status_code == 404:
                return ModelNotFound(
                    f"model {self.model} is not on the Ollama server at {self.host}: build it from its "
                    "OllamaModelDefinition (`aistack agents serve` builds missing models; in a cluster the "
                    "model builds DAG does) and check the agent's spec.modelDefinition name and version"
                )
            return ModelError(f"Ollama at {self.host} failed for model {self.model} (HTTP {exc.status_code}): {exc.error}")
        if isinstance(exc, (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout)):
            return ModelUnavailable(
                f"cannot reach Ollama at {self.host}: start it (`ollama serve`, or `aistack ollama serve` for "
                "the embedded runtime) or point the agent at a running one (--ollama-host or OLLAMA_HOST)"
            )
        if isinstance(exc, httpx.TimeoutException):
            return ModelUnavailable(f"Ollama at {self.host} did not answer in time for model {self.model}")
        if isinstance(exc, httpx.TransportError):
            return ModelUnavailable(f"the connection to Ollama at {self.host} failed: {exc}")
        return exc
