"""The agent's work: one A2A task is one model call (plus one bounded retry for bad JSON).

For each message the executor publishes, in order: the Task (SUBMITTED, when the message starts
a new task), WORKING, the output artifacts, then COMPLETED, or FAILED with a status message that
says what to fix (model missing, Ollama down, invalid structured output), or REJECTED for input
it cannot take. Text answers are streamed as artifact chunks as the model produces them; JSON
answers are published whole, once parsed and validated (see artifacts.py for the convention a
caller uses to name the artifact and its media type).

The prompt is the message's parts rendered as text (inputs.py) after the earlier turns of the
same contextId (conversation.py). Model options come from the agent's profile (profile.py).

Cancel: `cancel()` marks the task and publishes CANCELED; the SDK then cancels `execute()`,
which closes the model stream on its way out, so generation stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.owner_resolver import resolve_user_scope
from a2a.server.tasks import TaskUpdater
from a2a.types import Message, Part, SendMessageConfiguration, Task, TaskState, TaskStatus
from google.protobuf import json_format
from opentelemetry.trace import SpanKind

from aistack import telemetry
from aistack.agents.artifacts import (
    InvalidOutput,
    OutputSpec,
    data_part,
    model_format,
    output_parts,
    requested_outputs,
    streams_text,
    text_part,
)
from aistack.agents.backend import ChatRequest, ModelBackend, ModelError
from aistack.agents.conversation import ConversationStore
from aistack.agents.inputs import InputError, render_message
from aistack.agents.limits import CALL_TIMEOUT_ENV, bounded_schema, call_timeout
from aistack.agents.logs import task_logger
from aistack.agents.metrics import AgentMetrics
from aistack.agents.profile import AgentProfile
from aistack.agents.quality import Evidence
from aistack.agents.usage import USAGE_KEY, UsageMeter
from aistack.agents.verdict import assess, evidence_note, judged
from aistack.resources.agent import AgentRole

logger = logging.getLogger("aistack.agents.executor")
TRACE_KEY = "aistack_trace_context"  # the caller's trace context, in the call context's state (handler.py)
DIGEST_SECONDS = 5.0  # as often as the readiness check learns it (the cache key uses that one)


def request_fingerprint(message: Message, configuration: SendMessageConfiguration | None, metadata: Mapping[str, Any]) -> str:
    """What makes two sends of one messageId the same request: the message but for the ids the
    server fills in, and the settings that shape the task (push config, accepted output modes,
    request metadata). `returnImmediately` and `historyLength` shape only the response, so a
    re-send may change them."""
    sent = Message()
    sent.CopyFrom(message)
    sent.ClearField("task_id")
    sent.ClearField("context_id")
    settings = SendMessageConfiguration()
    if configuration is not None:
        settings.CopyFrom(configuration)
    settings.ClearField("return_immediately")
    settings.ClearField("history_length")
    body = json.dumps([json_format.MessageToDict(sent), json_format.MessageToDict(settings), dict(metadata)], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class SentMessage:
    """The task a message started, and the fingerprint of the request that carried it."""

    task_id: str
    context_id: str
    fingerprint: str


class MessageIndex:
    """Which task each caller's message ids started, so a re-sent message finds its task and a
    message id reused for another request is told apart (see handler.py). Message ids are the
    caller's: the index is keyed by owner (as the task store resolves it) and message id."""

    def __init__(self, limit: int = 10_000):
        self.limit = limit
        self._sent: dict[tuple[str, str], SentMessage] = {}

    def remember(self, owner: str, message_id: str, sent: SentMessage) -> None:
        key = (owner, message_id)
        if message_id and key not in self._sent:
            self._sent[key] = sent
            while len(self._sent) > self.limit:
                self._sent.pop(next(iter(self._sent)))

    def lookup(self, owner: str, message_id: str) -> SentMessage | None:
        return self._sent.get((owner, message_id))


def metadata_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message.metadata) if message.HasField("metadata") else {}


class OllamaAgentExecutor(AgentExecutor):
    def __init__(
        self,
        profile: AgentProfile,
        backend: ModelBackend,
        *,
        conversations: ConversationStore | None = None,
        metrics: AgentMetrics | None = None,
        messages: MessageIndex | None = None,
        json_retries: int = 1,
        call_seconds: float | None = None,
    ):
        self.profile = profile
        self.backend = backend
        self.conversations = conversations if conversations is not None else ConversationStore()
        self.metrics = metrics
        self.messages = messages
        self.json_retries = json_retries
        self.call_seconds = call_seconds if call_seconds is not None else call_timeout()
        self._cancelled: set[str] = set()
        self._digest: tuple[float, str | None] = (float("-inf"), None)

    async def _model_digest(self) -> str | None:
        """The model's build digest for the usage report, asked of the server at most every
        DIGEST_SECONDS (a rebuild shows up within that time)."""
        asked, digest = self._digest
        if time.monotonic() - asked > DIGEST_SECONDS:
            digest = await self.backend.digest()
            self._digest = (time.monotonic(), digest)
        return digest

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        """The task, as a span `invoke_agent <name>` in the caller's trace (GenAI conventions)."""
        caller = context.call_context.state.get(TRACE_KEY) if context.call_context is not None else None
        attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": self.profile.name,
            "gen_ai.request.model": self.profile.model,
            "gen_ai.conversation.id": str(context.context_id),
            "a2a.task.id": str(context.task_id),
        }
        with telemetry.tracer().start_as_current_span(f"invoke_agent {self.profile.name}", context=caller, kind=SpanKind.SERVER, attributes=attributes):
            await self._execute(context, event_queue)

    async def _execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = str(context.task_id), str(context.context_id)
        message = context.message
        assert message is not None
        log = task_logger(logger, agent=self.profile.name, task_id=task_id, context_id=context_id, model=self.profile.model)
        owner = resolve_user_scope(context.call_context)
        if self.messages is not None:
            fingerprint = request_fingerprint(message, context.configuration, context.metadata)
            self.messages.remember(owner, message.message_id, SentMessage(task_id, context_id, fingerprint))
        updater = TaskUpdater(event_queue, task_id, context_id)
        meter = UsageMeter(self.profile.model)
        if context.current_task is None:
            task = Task(id=task_id, context_id=context_id, status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED), history=[message])
            task.status.timestamp.GetCurrentTime()
            await event_queue.enqueue_event(task)
        await updater.start_work()
        started = time.perf_counter()
        try:
            meter.digest = await self._model_digest()
            accepted = context.configuration.accepted_output_modes if context.configuration is not None else ()
            outputs = requested_outputs(metadata_dict(message), context.metadata, self.profile.json_output, accepted)
            prompt = render_message(message)
            evidence = assess(message) if self.profile.role is AgentRole.QA else None
            if evidence is not None:
                prompt = f"{prompt}\n\n{evidence_note(evidence)}"
            history = self.conversations.history(owner, context_id)
            fmt = model_format(outputs, self.profile.format)
            fmt = bounded_schema(fmt) if isinstance(fmt, dict) else fmt  # the grammar ends runaway strings and lists
            request = ChatRequest(tuple([*history, {"role": "user", "content": prompt}]), self.profile.options, fmt)
            log.info("task started (%d earlier turns)", len(history) // 2)
            if streams_text(outputs, fmt):
                answer = await self._stream_text(request, outputs[0], updater, task_id, meter)
            else:
                answer = await self._answer_whole(request, outputs, updater, task_id, evidence, meter)
            if task_id in self._cancelled:
                return
            self.conversations.record(owner, context_id, prompt, answer)
            usage = meter.to_json()
            telemetry.annotate(telemetry.usage_attributes(usage))
            await updater.update_status(TaskState.TASK_STATE_COMPLETED, metadata={USAGE_KEY: usage})
            log.info("task completed", extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1)})
        except InputError as exc:
            log.info("task rejected: %s", exc)
            await updater.reject(updater.new_agent_message([Part(text=str(exc))]))
        except (ModelError, InvalidOutput) as exc:
            if task_id in self._cancelled:
                return
            log.warning("task failed: %s", exc)
            telemetry.annotate({"error.type": type(exc).__name__})
            failure = updater.new_agent_message([Part(text=f"{self.profile.name}: {exc}")])
            await updater.update_status(TaskState.TASK_STATE_FAILED, message=failure, metadata={USAGE_KEY: meter.to_json()})
        except asyncio.CancelledError:
            log.info("task cancelled; model stream closed")
            raise
        finally:
            self._cancelled.discard(task_id)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id = str(context.task_id)
        self._cancelled.add(task_id)
        updater = TaskUpdater(event_queue, task_id, str(context.context_id or ""))
        await updater.cancel(updater.new_agent_message([Part(text="Cancelled at the client's request; generation stopped.")]))
        task_logger(logger, agent=self.profile.name, task_id=task_id, context_id=context.context_id).info("task cancel requested")

    async def _stream_text(self, request: ChatRequest, spec: OutputSpec, updater: TaskUpdater, task_id: str, meter: UsageMeter) -> str:
        artifact_id = uuid.uuid4().hex
        pieces: list[str] = []
        tokens, first, done = 0, True, False
        prompt_tokens: int | None = None
        first_token: float | None = None
        started = time.perf_counter()
        async with self._model_call(), self._time_limit(), aclosing(self.backend.chat(request)) as stream:
            async for chunk in stream:
                if task_id in self._cancelled:
                    return "".join(pieces)
                if not chunk.text and not chunk.done:
                    continue
                if first:
                    first_token = time.perf_counter() - started
                pieces.append(chunk.text)
                tokens = chunk.tokens if chunk.done and chunk.tokens is not None else tokens + (1 if chunk.text else 0)
                prompt_tokens = chunk.prompt_tokens if chunk.done else prompt_tokens
                await updater.add_artifact(
                    [text_part(chunk.text, spec.media_type)],
                    artifact_id=artifact_id,
                    name=spec.name,
                    append=not first,
                    last_chunk=chunk.done,
                )
                first, done = False, chunk.done
                if done:
                    break
            self._observe(meter, prompt_tokens, tokens, first_token, time.perf_counter() - started)
        if not done and task_id not in self._cancelled:
            await updater.add_artifact([text_part("", spec.media_type)], artifact_id=artifact_id, name=spec.name, append=not first, last_chunk=True)
        return "".join(pieces)

    async def _collect(self, request: ChatRequest, meter: UsageMeter) -> str:
        pieces: list[str] = []
        tokens = 0
        prompt_tokens: int | None = None
        first_token: float | None = None
        started = time.perf_counter()
        async with self._model_call(), self._time_limit(), aclosing(self.backend.chat(request)) as stream:
            async for chunk in stream:
                if not pieces:
                    first_token = time.perf_counter() - started
                pieces.append(chunk.text)
                tokens = chunk.tokens if chunk.done and chunk.tokens is not None else tokens + (1 if chunk.text else 0)
                if chunk.done:
                    prompt_tokens = chunk.prompt_tokens
                    break
            self._observe(meter, prompt_tokens, tokens, first_token, time.perf_counter() - started)
        return "".join(pieces)

    async def _answer_whole(
        self,
        request: ChatRequest,
        outputs: list[OutputSpec],
        updater: TaskUpdater,
        task_id: str,
        evidence: Evidence | None,
        meter: UsageMeter,
    ) -> str:
        """Collect the answer, build every artifact; on invalid JSON ask again, once (by default).
        A quality check's JSON verdict is bounded by measured evidence first (verdict.py)."""
        messages = list(request.messages)
        for attempt in range(self.json_retries + 1):
            answer = await self._collect(replace(request, messages=tuple(messages)), meter)
            try:
                built = []
                for spec in outputs:
                    parts, value = output_parts(spec, answer, spec.schema or self.profile.schema)
                    if value is not None and self.profile.role is AgentRole.QA:
                        parts = [data_part(judged(value, evidence, await self.backend.stand_in()))]
                    built.append((spec, parts))
                break
            except InvalidOutput as exc:
                if attempt == self.json_retries:
                    raise InvalidOutput(self._invalid_output_message(exc, outputs, attempt + 1)) from None
                task_logger(logger, agent=self.profile.name, task_id=task_id).info("invalid JSON answer, asking again: %s", exc)
                messages += [
                    {"role": "assistant", "content": answer},
                    {"role": "user", "content": f"That answer is not valid: {exc}. Reply again with only the JSON object, nothing else."},
                ]
        if task_id in self._cancelled:
            return answer
        for spec, parts in built:
            await updater.add_artifact(parts, artifact_id=uuid.uuid4().hex, name=spec.name, append=False, last_chunk=True)
        return answer

    def _invalid_output_message(self, exc: InvalidOutput, outputs: list[OutputSpec], attempts: int) -> str:
        caller_schema = any(spec.schema is not None for spec in outputs)
        where = (
            "the schema given in the message metadata (aistack.artifact.schema)"
            if caller_schema
            else f"the OllamaModelDefinition {self.profile.definition!r}: its system prompt should ask for JSON only "
            "and spec.build.functions[].parameters is the schema the answer must match"
        )
        return f"the model {self.profile.model} gave no valid JSON after {attempts} attempts: {exc}. Check {where}."

    @contextlib.asynccontextmanager
    async def _time_limit(self) -> AsyncIterator[None]:
        """One model call's time limit; leaving the block closes the stream, which stops generation."""
        try:
            async with asyncio.timeout(self.call_seconds):
                yield
        except TimeoutError:
            raise ModelError(
                f"the model {self.profile.model} did not finish within {self.call_seconds:g}s (the limit of one model call, {CALL_TIMEOUT_ENV})"
            ) from None

    @contextlib.asynccontextmanager
    async def _model_call(self) -> AsyncIterator[None]:
        """One model call as a span `chat <model>`, a child of the task's (GenAI conventions)."""
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "ollama", "gen_ai.request.model": self.profile.model}
        with telemetry.tracer().start_as_current_span(f"chat {self.profile.model}", kind=SpanKind.CLIENT, attributes=attributes):
            yield

    def _observe(self, meter: UsageMeter, prompt_tokens: int | None, tokens: int, first_token: float | None, seconds: float) -> None:
        """One model call: into the task's usage, its span and the agent's metrics."""
        meter.call(prompt_tokens=prompt_tokens, completion_tokens=tokens, first_token_seconds=first_token, seconds=seconds)
        telemetry.annotate({"gen_ai.usage.input_tokens": prompt_tokens, "gen_ai.usage.output_tokens": tokens, "gen_ai.response.model": self.profile.model})
        if self.metrics is not None:
            self.metrics.observe_model_call(self.profile.model, prompt_tokens=prompt_tokens, tokens=tokens, first_token=first_token, seconds=seconds)
