"""The SDK's request handler with what aistack adds at the protocol boundary.

- Metrics: every operation is counted by name (SendMessage, GetTask...), transport (jsonrpc,
  rest) and outcome (ok, or the A2A error's name), and timed.
- Input checks before a task exists: a message the agent cannot take (a URL part, a binary
  file, an invalid artifact request) is refused as InvalidParams / ContentTypeNotSupported
  instead of leaving a failed task behind.
- Idempotent re-sends: a SendMessage whose `messageId` the caller already sent (and which names
  no task) returns the task that message started instead of starting the work again, so a caller
  that retries after a lost response (an Airflow retry, a network blip) does not run the model
  twice. A streaming re-send gets the task and, while it runs, its remaining events. Only the
  same request is a re-send: a messageId reused with other parts, metadata or settings (another
  push config, other accepted output modes, another contextId) is refused as InvalidParams rather
  than answered with a task that ignores them.
- Push configs read back (create, get, list) carry no secrets: their `token` and
  `authentication.credentials` are left out. The owner sent them; nobody needs them echoed.

Tasks, their push configs and message ids are the caller's own: the SDK's stores scope them by
`ServerCallContext.user`, which the context builder takes from the identity BearerAuth set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any, cast

from a2a.server.context import ServerCallContext
from a2a.server.owner_resolver import resolve_user_scope
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import DefaultServerCallContextBuilder
from a2a.types import (
    ListTaskPushNotificationConfigsResponse,
    Message,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import A2AError, ContentTypeNotSupportedError, InvalidParamsError, UnsupportedOperationError
from a2a.utils.task import apply_history_length
from google.protobuf import json_format

from aistack import telemetry
from aistack.agents.artifacts import requested_outputs
from aistack.agents.executor import TRACE_KEY, MessageIndex, metadata_dict, request_fingerprint
from aistack.agents.inputs import InputError, check_message
from aistack.agents.metrics import AgentMetrics
from aistack.agents.store import TERMINAL_STATES

TRANSPORT_KEY = "aistack_transport"
SETTLED_STATES = TERMINAL_STATES | {TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED}


class TransportContextBuilder(DefaultServerCallContextBuilder):
    """Records which transport a call came in on, for the metrics. The caller's identity is the
    SDK builder's: `request.user`, set by BearerAuth."""

    def __init__(self, transport: str):
        self.transport = transport

    def build(self, request: Any) -> ServerCallContext:
        context = super().build(request)
        context.state[TRANSPORT_KEY] = self.transport
        context.state[TRACE_KEY] = telemetry.extract(request.headers)  # the caller's trace: the agent's spans join it
        return context


def redacted(config: TaskPushNotificationConfig) -> TaskPushNotificationConfig:
    """A push config as a caller reads it back: without the notification token and the
    authentication credentials, which only the webhook deliveries use. They are left out, not
    masked: a client that re-creates a config it read must not take a mask for the secret."""
    shown = TaskPushNotificationConfig()
    shown.CopyFrom(config)
    shown.ClearField("token")
    if shown.HasField("authentication"):
        shown.authentication.ClearField("credentials")
    return shown


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, A2AError):
        return type(exc).__name__
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return "internal_error"


class AgentRequestHandler(DefaultRequestHandler):
    def __init__(self, *args: Any, metrics: AgentMetrics, messages: MessageIndex, json_agent: bool, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.metrics = metrics
        self.messages = messages
        self.json_agent = json_agent

    # -- helpers ---------------------------------------------------------------------------

    async def _timed(self, operation: str, context: ServerCallContext, call: Callable[[], Any]) -> Any:
        started, outcome = time.perf_counter(), "ok"
        try:
            return await call()
        except BaseException as exc:
            outcome = _outcome(exc)
            raise
        finally:
            transport = context.state.get(TRANSPORT_KEY, "other")
            self.metrics.observe_request(operation, transport, outcome, time.perf_counter() - started)

    async def _timed_stream(self, operation: str, context: ServerCallContext, stream: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
        started, outcome = time.perf_counter(), "ok"
        try:
            async for item in stream:
                yield item
        except BaseException as exc:
            outcome = "disconnected" if isinstance(exc, GeneratorExit) else _outcome(exc)
            raise
        finally:
            await stream.aclose()
            transport = context.state.get(TRANSPORT_KEY, "other")
            self.metrics.observe_request(operation, transport, outcome, time.perf_counter() - started)

    def _check(self, params: SendMessageRequest) -> None:
        try:
            check_message(params.message)
            request_metadata = json_format.MessageToDict(params.metadata) if params.HasField("metadata") else None
            requested_outputs(metadata_dict(params.message), request_metadata, self.json_agent, params.configuration.accepted_output_modes)
        except InputError as exc:
            error = ContentTypeNotSupportedError if exc.unsupported_type else InvalidParamsError
            raise error(message=str(exc)) from None

    async def _resent(self, params: SendMessageRequest, context: ServerCallContext) -> Task | None:
        """The task this caller's earlier send of the same request started; None for a new one."""
        message: Message = params.message
        if message.task_id or not message.message_id:
            return None
        known = self.messages.lookup(resolve_user_scope(context), message.message_id)
        if known is None:
            return None
        fingerprint = request_fingerprint(message, params.configuration, json_format.MessageToDict(params.metadata))
        if fingerprint != known.fingerprint or (message.context_id and message.context_id != known.context_id):
            raise InvalidParamsError(
                message=(
                    f"messageId {message.message_id!r} was already sent with other parts, metadata, contextId or "
                    f"configuration (it started task {known.task_id}): give a new request a new messageId; re-send "
                    "exactly the same message to get that task"
                )
            )
        return cast(Task | None, await self.task_store.get(known.task_id, context))

    # -- operations ------------------------------------------------------------------------

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        async def call() -> Message | Task:
            self._check(params)
            task = await self._resent(params, context)
            if task is None:
                return await DefaultRequestHandler.on_message_send(self, params, context)
            while task.status.state not in SETTLED_STATES and not params.configuration.return_immediately:
                await asyncio.sleep(0.05)
                task = cast(Task | None, await self.task_store.get(task.id, context)) or task
            return apply_history_length(task, params.configuration)

        return await self._timed("SendMessage", context, call)

    async def on_message_send_stream(self, params: SendMessageRequest, context: ServerCallContext) -> AsyncGenerator[Any, None]:
        async def stream() -> AsyncGenerator[Any, None]:
            if not self._agent_card.capabilities.streaming:
                raise UnsupportedOperationError(message="Streaming is not supported by the agent")
            self._check(params)
            task = await self._resent(params, context)
            if task is None:
                inner = DefaultRequestHandler.on_message_send_stream(self, params, context)
            elif task.status.state in TERMINAL_STATES:
                yield apply_history_length(task, params.configuration)
                return
            else:
                inner = DefaultRequestHandler.on_subscribe_to_task(self, SubscribeToTaskRequest(id=task.id), context)
            async with aclosing(inner):
                async for event in inner:
                    yield event

        async for item in self._timed_stream("SendStreamingMessage", context, stream()):
            yield item

    async def on_get_task(self, params: Any, context: ServerCallContext) -> Any:
        return await self._timed("GetTask", context, lambda: DefaultRequestHandler.on_get_task(self, params, context))

    async def on_list_tasks(self, params: Any, context: ServerCallContext) -> Any:
        return await self._timed("ListTasks", context, lambda: DefaultRequestHandler.on_list_tasks(self, params, context))

    async def on_cancel_task(self, params: Any, context: ServerCallContext) -> Any:
        return await self._timed("CancelTask", context, lambda: DefaultRequestHandler.on_cancel_task(self, params, context))

    async def on_subscribe_to_task(self, params: Any, context: ServerCallContext) -> AsyncGenerator[Any, None]:
        inner = DefaultRequestHandler.on_subscribe_to_task(self, params, context)
        async for item in self._timed_stream("SubscribeToTask", context, inner):
            yield item

    async def on_create_task_push_notification_config(self, params: Any, context: ServerCallContext) -> Any:
        return redacted(
            await self._timed(
                "CreateTaskPushNotificationConfig",
                context,
                lambda: DefaultRequestHandler.on_create_task_push_notification_config(self, params, context),
            )
        )

    async def on_get_task_push_notification_config(self, params: Any, context: ServerCallContext) -> Any:
        return redacted(
            await self._timed(
                "GetTaskPushNotificationConfig",
                context,
                lambda: DefaultRequestHandler.on_get_task_push_notification_config(self, params, context),
            )
        )

    async def on_list_task_push_notification_configs(self, params: Any, context: ServerCallContext) -> Any:
        listed = await self._timed(
            "ListTaskPushNotificationConfigs",
            context,
            lambda: DefaultRequestHandler.on_list_task_push_notification_configs(self, params, context),
        )
        return ListTaskPushNotificationConfigsResponse(configs=[redacted(config) for config in listed.configs], next_page_token=listed.next_page_token)

    async def on_delete_task_push_notification_config(self, params: Any, context: ServerCallContext) -> Any:
        return await self._timed(
            "DeleteTaskPushNotificationConfig",
            context,
            lambda: DefaultRequestHandler.on_delete_task_push_notification_config(self, params, context),
        )

    async def on_get_extended_agent_card(self, params: Any, context: ServerCallContext) -> Any:
        return await self._timed("GetExtendedAgentCard", context, lambda: DefaultRequestHandler.on_get_extended_agent_card(self, params, context))
