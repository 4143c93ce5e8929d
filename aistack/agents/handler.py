"""The SDK's request handler with what aistack adds at the protocol boundary.

- Metrics: every operation is counted by name (SendMessage, GetTask...), transport (jsonrpc,
  rest) and outcome (ok, or the A2A error's name), and timed.
- Input checks before a task exists: a message the agent cannot take (a URL part, a binary
  file, an invalid artifact request) is refused as InvalidParams / ContentTypeNotSupported
  instead of leaving a failed task behind.
- Idempotent re-sends: a SendMessage whose `messageId` was already received (and which names no
  task) returns the task that message started instead of starting the work again, so a caller
  that retries after a lost response (an Airflow retry, a network blip) does not run the model
  twice. A streaming re-send gets the task and, while it runs, its remaining events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import DefaultServerCallContextBuilder
from a2a.types import Message, SendMessageRequest, SubscribeToTaskRequest, Task, TaskState
from a2a.utils.errors import A2AError, ContentTypeNotSupportedError, InvalidParamsError, UnsupportedOperationError
from google.protobuf import json_format

from aistack.agents.artifacts import requested_outputs
from aistack.agents.executor import MessageIndex, metadata_dict
from aistack.agents.inputs import InputError, check_message
from aistack.agents.metrics import AgentMetrics
from aistack.agents.store import TERMINAL_STATES

TRANSPORT_KEY = "aistack_transport"
SETTLED_STATES = TERMINAL_STATES | {TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED}


class TransportContextBuilder(DefaultServerCallContextBuilder):
    """Records which transport a call came in on, for the metrics."""

    def __init__(self, transport: str):
        self.transport = transport

    def build(self, request: Any) -> ServerCallContext:
        context = super().build(request)
        context.state[TRANSPORT_KEY] = self.transport
        return context


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
            requested_outputs(metadata_dict(params.message), request_metadata, self.json_agent)
        except InputError as exc:
            error = ContentTypeNotSupportedError if exc.unsupported_type else InvalidParamsError
            raise error(message=str(exc)) from None

    async def _resent(self, params: SendMessageRequest, context: ServerCallContext) -> Task | None:
        message: Message = params.message
        if message.task_id or not message.message_id:
            return None
        known = self.messages.lookup(message.message_id)
        if known is None or (message.context_id and message.context_id != known[1]):
            return None
        return await self.task_store.get(known[0], context)

    # -- operations ------------------------------------------------------------------------

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        async def call() -> Message | Task:
            self._check(params)
            task = await self._resent(params, context)
            if task is None:
                return await DefaultRequestHandler.on_message_send(self, params, context)
            while task.status.state not in SETTLED_STATES and not params.configuration.return_immediately:
                await asyncio.sleep(0.05)
                task = await self.task_store.get(task.id, context) or task
            return task

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
                yield task
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
        return await self._timed(
            "CreateTaskPushNotificationConfig", context,
            lambda: DefaultRequestHandler.on_create_task_push_notification_config(self, params, context),
        )

    async def on_get_task_push_notification_config(self, params: Any, context: ServerCallContext) -> Any:
        return await self._timed(
            "GetTaskPushNotificationConfig", context,
            lambda: DefaultRequestHandler.on_get_task_push_notification_config(self, params, context),
        )

    async def on_list_task_push_notification_configs(self, params: Any, context: ServerCallContext) -> Any:
        return await self._timed(
            "ListTaskPushNotificationConfigs", context,
            lambda: DefaultRequestHandler.on_list_task_push_notification_configs(self, params, context),
        )

    async def on_delete_task_push_notification_config(self, params: Any, context: ServerCallContext) -> Any:
        return await self._timed(
            "DeleteTaskPushNotificationConfig", context,
            lambda: DefaultRequestHandler.on_delete_task_push_notification_config(self, params, context),
        )

    async def on_get_extended_agent_card(self, params: Any, context: ServerCallContext) -> Any:
        return await self._timed(
            "GetExtendedAgentCard", context, lambda: DefaultRequestHandler.on_get_extended_agent_card(self, params, context)
        )
