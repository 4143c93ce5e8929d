"""Calling A2A agents the way aistack does: for the Airflow operator, its trigger and `aistack run`.

    async with await AgentClient.connect("http://127.0.0.1:8101") as agent:
        result = await agent.send("Summarize this", inputs=[upstream_artifact],
                                  artifact={"name": "summary", "mediaType": "text/markdown"})
        result.artifacts  # [{"name": "summary", "mediaType": "text/markdown", "text": "..."}]

What it does for the caller:

- resolves the agent card from the base URL and builds an SDK client for the card's preferred
  interface (JSON-RPC, with HTTP+JSON as the fallback; `transport=` forces one), sending
  `A2A-Version: 1.0` and, when the card requires it, the bearer token (tokens.py): with
  `namespace=`, that namespace's token when one is configured, else the shared one;
- builds messages from text, upstream artifacts (rendered by the agent as labelled inputs) and
  metadata, with a caller-chosen `message_id` so that a retried send is recognised by the agent
  (it returns the task the first send started instead of running the model again);
- `artifact=` asks for the output artifact by name and media type (artifacts.py's convention);
- turns a Task into plain results (`TaskResult`): state, ids, status message, and artifacts as
  dicts `{"name", "mediaType", "data"}` for JSON or `{"name", "mediaType", "text"}` for text;
- maps failures to `AgentUnavailable` (cannot connect, timeouts, 5xx), `AgentAuthError` (401,
  403), `AgentRequestError` (the agent refused the request: invalid params, unsupported type,
  unknown task...) and `AgentTaskFailed` (the task ended FAILED, REJECTED or CANCELED).

`SyncAgentClient` offers the same calls to synchronous code (it runs its own event loop thread).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.client import ClientCallContext
from a2a.client.errors import A2AClientError, A2AClientTimeoutError, AgentCardResolutionError
from a2a.types import (
    AgentCard,
    Artifact,
    AuthenticationInfo,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.constants import PROTOCOL_VERSION_1_0, VERSION_HEADER, TransportProtocol
from a2a.utils.errors import A2AError
from google.protobuf import json_format, struct_pb2

from aistack import telemetry
from aistack.agents.inputs import plain
from aistack.agents.tokens import client_token
from aistack.agents.usage import usage_of

T = TypeVar("T")

TERMINAL = frozenset({"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"})
INTERRUPTED = frozenset({"TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"})
TRANSPORTS = {"jsonrpc": TransportProtocol.JSONRPC, "rest": TransportProtocol.HTTP_JSON, "http+json": TransportProtocol.HTTP_JSON}


class AgentError(Exception):
    """A call to an agent failed."""


class AgentUnavailable(AgentError):
    """The agent cannot be reached or did not answer (connection, timeout, 5xx)."""


class AgentAuthError(AgentError):
    """The agent refused the credentials (401/403)."""


class AgentRequestError(AgentError):
    """The agent refused the request; `reason` is the A2A error (e.g. InvalidParamsError)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class AgentTaskFailed(AgentError):
    """The task ended in FAILED, REJECTED or CANCELED; `result` has the state and message."""

    def __init__(self, result: TaskResult):
        super().__init__(f"task {result.task_id} ended {result.state}: {result.message or 'no message'}")
        self.result = result


@dataclass
class TaskResult:
    """A task as plain data (what a pipeline step stores and passes on)."""

    state: str
    task_id: str
    context_id: str
    message: str = ""
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None  # what the agent reported it cost (aistack.agents.usage)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.state == "TASK_STATE_COMPLETED"

    def artifact(self, name: str) -> dict[str, Any] | None:
        return next((a for a in self.artifacts if a["name"] == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "taskId": self.task_id,
            "contextId": self.context_id,
            "message": self.message,
            "artifacts": self.artifacts,
            **({"usage": self.usage} if self.usage else {}),
        }


def _text(parts: Sequence[Part]) -> str:
    return "".join(part.text for part in parts if part.WhichOneof("content") == "text")


def artifact_dict(artifact: Artifact) -> dict[str, Any]:
    """One artifact as `{"name", "mediaType", "data"}` (a data part) or `{"name", "mediaType", "text"}`."""
    parts = list(artifact.parts)
    data = [p for p in parts if p.WhichOneof("content") == "data"]
    media_type = next((p.media_type for p in parts if p.media_type), "")
    name = artifact.name or artifact.artifact_id
    if data:
        values = [plain(json_format.MessageToDict(p.data)) for p in data]
        return {"name": name, "mediaType": media_type or "application/json", "data": values[0] if len(values) == 1 else values}
    return {"name": name, "mediaType": media_type or "text/plain", "text": _text(parts)}


def artifact_body(artifact: Mapping[str, Any]) -> str:
    """An artifact dict (`artifact_dict`) as a person reads it: its text, or its JSON data indented."""
    if "text" in artifact:
        return str(artifact["text"])
    return json.dumps(artifact.get("data"), indent=2, ensure_ascii=False) if "data" in artifact else ""


def task_result(task: Task) -> TaskResult:
    return TaskResult(
        state=TaskState.Name(task.status.state),
        task_id=task.id,
        context_id=task.context_id,
        message=_text(task.status.message.parts) if task.status.HasField("message") else "",
        artifacts=[artifact_dict(a) for a in task.artifacts],
        usage=usage_of(plain(json_format.MessageToDict(task.metadata))) if task.HasField("metadata") else None,
    )


def message_result(message: Message) -> TaskResult:
    """An agent that answers with a Message (no task): one artifact named "message"."""
    artifact = Artifact(artifact_id=message.message_id, name="message", parts=message.parts)
    return TaskResult("TASK_STATE_COMPLETED", message.task_id, message.context_id, _text(message.parts), [artifact_dict(artifact)])


def input_part(item: Mapping[str, Any] | str) -> Part:
    """A message part from text or an artifact dict (`{"name", "mediaType", "data" | "text"}`)."""
    if isinstance(item, str):
        return Part(text=item, media_type="text/plain")
    metadata = struct_pb2.Struct()
    if item.get("name"):
        metadata.update({"name": item["name"]})
    if "data" in item:
        return Part(data=json_format.ParseDict(item["data"], struct_pb2.Value()), media_type=item.get("mediaType", "application/json"), metadata=metadata)
    if "text" in item:
        return Part(text=item["text"], media_type=item.get("mediaType", "text/plain"), metadata=metadata)
    raise ValueError(f"an input needs data or text: {sorted(item)}")


def build_message(
    text: str | None = None,
    *,
    inputs: Sequence[Mapping[str, Any] | str] = (),
    metadata: Mapping[str, Any] | None = None,
    artifact: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    message_id: str | None = None,
    context_id: str | None = None,
    task_id: str | None = None,
) -> Message:
    parts = ([Part(text=text, media_type="text/plain")] if text else []) + [input_part(item) for item in inputs]
    if not parts:
        raise ValueError("a message needs text or inputs")
    meta = dict(metadata or {})
    if artifact is not None:
        section = dict(meta.get("aistack", {}))
        if isinstance(artifact, Mapping):
            section["artifact"] = dict(artifact)
        else:
            section["artifacts"] = [dict(a) for a in artifact]
        meta["aistack"] = section
    message = Message(role=Role.ROLE_USER, message_id=message_id or uuid.uuid4().hex, parts=parts, context_id=context_id or "", task_id=task_id or "")
    if meta:
        message.metadata.update(meta)
    return message


@dataclass(frozen=True)
class PushTarget:
    """A webhook for the task's push notifications."""

    url: str
    token: str | None = None
    credentials: str | None = None
    scheme: str = "Bearer"

    def config(self) -> TaskPushNotificationConfig:
        config = TaskPushNotificationConfig(url=self.url, token=self.token or "")
        if self.credentials:
            config.authentication.CopyFrom(AuthenticationInfo(scheme=self.scheme, credentials=self.credentials))
        return config


def _http_status(exc: BaseException) -> int | None:
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, httpx.HTTPStatusError):
            return current.response.status_code
        current = current.__cause__ or current.__context__
    return None


def _network_error(exc: BaseException) -> bool:
    current: BaseException | None = exc
    for _ in range(5):
        if current is None:
            return False
        if isinstance(current, (httpx.TransportError, ConnectionError)):
            return True
        current = current.__cause__ or current.__context__
    return False


def translate_error(exc: BaseException, where: str) -> AgentError:
    """An SDK or HTTP exception as one of the errors above."""
    if isinstance(exc, AgentError):
        return exc
    status = _http_status(exc)
    if status in (401, 403):
        return AgentAuthError(
            f"agent at {where} refused the credentials (HTTP {status}): send a token it accepts "
            "(the namespace's file in AISTACK_AGENT_TOKENS_DIR, or AISTACK_AGENT_TOKEN_FILE or AISTACK_AGENT_TOKEN)"
        )
    if isinstance(exc, (A2AClientTimeoutError, httpx.TimeoutException, asyncio.TimeoutError)):
        return AgentUnavailable(f"agent at {where} did not answer in time")
    if isinstance(exc, AgentCardResolutionError):
        return AgentUnavailable(f"cannot read the agent card of {where}: {exc.message}")
    if (status is not None and status >= 500) or _network_error(exc):
        return AgentUnavailable(f"agent at {where} is unavailable: {getattr(exc, 'message', exc)}")
    if isinstance(exc, A2AError) and not isinstance(exc, A2AClientError):
        return AgentRequestError(f"agent at {where} refused the request: {exc.message}", type(exc).__name__)
    if status == 413:
        return AgentRequestError(f"agent at {where} refused the request: it is too large", "PayloadTooLarge")
    return AgentError(f"call to agent at {where} failed: {exc}")


async def resolve_card(base_url: str, *, timeout: float = 10.0, http: httpx.AsyncClient | None = None) -> AgentCard:
    """The agent card published at `<base_url>/.well-known/agent-card.json`."""
    owned = http is None
    http = http or httpx.AsyncClient(timeout=timeout)
    try:
        return await A2ACardResolver(http, base_url).get_agent_card()
    except Exception as exc:
        raise translate_error(exc, base_url) from exc
    finally:
        if owned:
            await http.aclose()


def _requires_bearer(card: AgentCard) -> bool:
    return any(
        scheme.HasField("http_auth_security_scheme") and scheme.http_auth_security_scheme.scheme.lower() == "bearer" for scheme in card.security_schemes.values()
    )


class AgentClient:
    """An A2A agent, for aistack's calls; create with `await AgentClient.connect(url)`."""

    def __init__(self, base_url: str, card: AgentCard, http: httpx.AsyncClient, transport: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.card = card
        self._http = http
        if transport is not None and transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}: use jsonrpc or rest")
        bindings: list[str] = [TRANSPORTS[transport]] if transport else [TransportProtocol.JSONRPC, TransportProtocol.HTTP_JSON]

        def sdk_client(streaming: bool) -> Any:
            config = ClientConfig(streaming=streaming, httpx_client=http, supported_protocol_bindings=bindings, use_client_preference=True)
            return ClientFactory(config).create(card)

        try:
            self._unary = sdk_client(False)
            self._streaming = sdk_client(True)
        except ValueError as exc:
            raise AgentRequestError(f"agent at {base_url} offers no interface this client speaks: {exc}", "NoTransport") from None
        self.transport = type(getattr(self._unary, "_transport", None)).__name__  # e.g. JsonRpcTransport

    @classmethod
    async def connect(
        cls,
        base_url: str,
        *,
        token: str | None = None,
        transport: str | None = None,
        timeout: float = 300.0,
        namespace: str | None = None,
    ) -> AgentClient:
        """Resolve the card and prepare a client; `token=None` sends the configured agent token when
        the card requires bearer authentication (`namespace`'s own when it has one: the agent then
        knows the caller as that namespace), `token=""` sends none."""
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=10.0), headers={VERSION_HEADER: PROTOCOL_VERSION_1_0}, event_hooks={"request": [_with_trace_context]}
        )
        try:
            card = await resolve_card(base_url, http=http)
            if token is None and _requires_bearer(card):
                token = client_token(namespace)
            if token:
                http.headers["Authorization"] = f"Bearer {token}"
            return cls(base_url, card, http, transport)
        except BaseException:
            await http.aclose()
            raise

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except AgentError:
            raise
        except Exception as exc:
            raise translate_error(exc, self.base_url) from exc

    def _request(self, message: Message, return_immediately: bool, push: PushTarget | None, history_length: int | None) -> SendMessageRequest:
        configuration = SendMessageConfiguration(return_immediately=return_immediately)
        if history_length is not None:
            configuration.history_length = history_length
        if push is not None:
            configuration.task_push_notification_config.CopyFrom(push.config())
        return SendMessageRequest(message=message, configuration=configuration)

    async def send(
        self,
        text: str | None = None,
        *,
        inputs: Sequence[Mapping[str, Any] | str] = (),
        metadata: Mapping[str, Any] | None = None,
        artifact: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        message_id: str | None = None,
        context_id: str | None = None,
        task_id: str | None = None,
        return_immediately: bool = False,
        push: PushTarget | None = None,
        history_length: int | None = None,
        raise_on_failure: bool = True,
        timeout: float | None = None,
    ) -> TaskResult:
        """SendMessage; waits for the task to finish unless `return_immediately` (deferrable use)."""
        message = build_message(text, inputs=inputs, metadata=metadata, artifact=artifact, message_id=message_id, context_id=context_id, task_id=task_id)
        request = self._request(message, return_immediately, push, history_length)
        context = ClientCallContext(timeout=timeout) if timeout else None

        async def call() -> TaskResult:
            result = None
            async for response in self._unary.send_message(request, context=context):
                result = _result_of(response)
            if result is None:
                raise AgentError(f"agent at {self.base_url} answered without a task or message")
            return result

        result = await self._call(call())
        return _checked(result, raise_on_failure)

    async def stream(
        self,
        text: str | None = None,
        *,
        on_token: Callable[[str], Any] | None = None,
        on_event: Callable[[StreamResponse], Any] | None = None,
        inputs: Sequence[Mapping[str, Any] | str] = (),
        metadata: Mapping[str, Any] | None = None,
        artifact: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        message_id: str | None = None,
        context_id: str | None = None,
        push: PushTarget | None = None,
        raise_on_failure: bool = True,
    ) -> TaskResult:
        """SendStreamingMessage: `on_token(text)` for each streamed text chunk, `on_event(response)`
        for every event; returns the finished task (read back once the stream ends)."""
        if not self.card.capabilities.streaming:
            return await self.send(
                text, inputs=inputs, metadata=metadata, artifact=artifact, message_id=message_id, context_id=context_id, push=push, raise_on_failure=raise_on_failure
            )
        message = build_message(text, inputs=inputs, metadata=metadata, artifact=artifact, message_id=message_id, context_id=context_id)
        request = self._request(message, False, push, None)

        async def call() -> TaskResult:
            task_id, final = "", None
            async for response in self._streaming.send_message(request):
                if on_event is not None:
                    await _maybe_await(on_event(response))
                kind = response.WhichOneof("payload")
                if kind == "message":
                    return message_result(response.message)
                if kind == "task":
                    task_id = response.task.id
                    if TaskState.Name(response.task.status.state) in TERMINAL:
                        final = task_result(response.task)
                elif kind == "status_update":
                    task_id = response.status_update.task_id
                elif kind == "artifact_update":
                    task_id = response.artifact_update.task_id
                    if on_token is not None:
                        for part in response.artifact_update.artifact.parts:
                            if part.WhichOneof("content") == "text" and part.text:
                                await _maybe_await(on_token(part.text))
            if not task_id:
                raise AgentError(f"agent at {self.base_url} streamed no task")
            return await self._get(task_id) if final is None else final

        return _checked(await self._call(call()), raise_on_failure)

    async def _get(self, task_id: str) -> TaskResult:
        return task_result(await self._unary.get_task(GetTaskRequest(id=task_id)))

    async def get_task(self, task_id: str) -> TaskResult:
        return await self._call(self._get(task_id))

    async def cancel(self, task_id: str) -> TaskResult:
        return task_result(await self._call(self._unary.cancel_task(CancelTaskRequest(id=task_id))))

    async def wait(self, task_id: str, *, poll: float = 1.0, timeout: float | None = None, raise_on_failure: bool = True) -> TaskResult:
        """Poll GetTask until the task is terminal or needs input (for deferrable triggers)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            result = await self.get_task(task_id)
            if result.terminal or result.state in INTERRUPTED:
                return _checked(result, raise_on_failure)
            if deadline is not None and time.monotonic() >= deadline:
                raise AgentUnavailable(f"task {task_id} on {self.base_url} is still {result.state} after {timeout}s")
            await asyncio.sleep(poll)


def _result_of(response: StreamResponse) -> TaskResult | None:
    kind = response.WhichOneof("payload")
    if kind == "task":
        return task_result(response.task)
    if kind == "message":
        return message_result(response.message)
    return None


def _checked(result: TaskResult, raise_on_failure: bool) -> TaskResult:
    if raise_on_failure and result.terminal and not result.succeeded:
        raise AgentTaskFailed(result)
    return result


async def _maybe_await(value: Any) -> None:
    if asyncio.iscoroutine(value):
        await value


async def _with_trace_context(request: httpx.Request) -> None:
    """Every A2A request carries the caller's W3C trace context (aistack.telemetry)."""
    telemetry.inject(request.headers)


class SyncAgentClient:
    """AgentClient for synchronous code: the same calls, run on a private event loop thread."""

    def __init__(self, base_url: str, *, token: str | None = None, transport: str | None = None, timeout: float = 300.0, namespace: str | None = None):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="aistack-a2a-client", daemon=True)
        self._thread.start()
        try:
            self._client = self._run(AgentClient.connect(base_url, token=token, transport=transport, timeout=timeout, namespace=namespace))
        except BaseException:
            self._stop()
            raise
        self.card = self._client.card

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run on the client's loop, in the caller's trace context (its requests carry it)."""
        caller = telemetry.current()

        async def within() -> T:
            token = telemetry.attach(caller)
            try:
                return await coroutine
            finally:
                telemetry.detach(token)

        return asyncio.run_coroutine_threadsafe(within(), self._loop).result()

    def send(self, text: str | None = None, **kwargs: Any) -> TaskResult:
        return self._run(self._client.send(text, **kwargs))

    def stream(self, text: str | None = None, **kwargs: Any) -> TaskResult:
        return self._run(self._client.stream(text, **kwargs))

    def get_task(self, task_id: str) -> TaskResult:
        return self._run(self._client.get_task(task_id))

    def cancel(self, task_id: str) -> TaskResult:
        return self._run(self._client.cancel(task_id))

    def wait(self, task_id: str, **kwargs: Any) -> TaskResult:
        return self._run(self._client.wait(task_id, **kwargs))

    def close(self) -> None:
        try:
            self._run(self._client.close())
        finally:
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> SyncAgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send_message(base_url: str, text: str | None = None, *, token: str | None = None, transport: str | None = None, **kwargs: Any) -> TaskResult:
    """One SendMessage from synchronous code (connects, sends, closes)."""

    async def run() -> TaskResult:
        async with await AgentClient.connect(base_url, token=token, transport=transport) as client:
            return await client.send(text, **kwargs)

    return asyncio.run(run())
