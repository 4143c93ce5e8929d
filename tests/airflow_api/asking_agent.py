"""A test double of an A2A agent that needs more input: a real a2a-sdk server (JSON-RPC on
127.0.0.1, a free port) whose executor asks its questions one at a time with
TASK_STATE_INPUT_REQUIRED and completes once every one is answered. It records the taskId and
contextId of every message it gets, so a test can check that the answers went to the same task."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import uvicorn
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Part, Task, TaskState, TaskStatus
from a2a.utils.constants import PROTOCOL_VERSION_1_0, TransportProtocol
from starlette.applications import Starlette


@dataclass
class Received:
    task_id: str
    context_id: str
    text: str


@dataclass
class AskingAgentExecutor(AgentExecutor):
    """Asks `questions` in turn, then answers with an artifact `answer` built from the replies."""

    questions: list[str]
    received: list[Received] = field(default_factory=list)
    replies: dict[str, list[str]] = field(default_factory=dict)

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        text = context.get_user_input()
        self.received.append(Received(context.task_id, context.context_id, text))
        replies = self.replies.setdefault(context.task_id, [])
        if context.current_task is None:
            assert context.message is not None
            await event_queue.enqueue_event(
                Task(id=context.task_id, context_id=context.context_id, status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED), history=[context.message])
            )
        else:
            replies.append(text)
        await updater.start_work()
        if len(replies) < len(self.questions):
            await updater.requires_input(updater.new_agent_message([Part(text=self.questions[len(replies)])]))
            return
        await updater.add_artifact([Part(text="; ".join(replies))], name="answer")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


@contextlib.contextmanager
def asking_agent(name: str, questions: list[str]) -> Iterator[tuple[str, AskingAgentExecutor]]:
    """The agent's base URL and its executor (for what it received), while the block runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    card = AgentCard(
        name=name,
        description="A test double that asks before it answers.",
        version="1.0.0",
        supported_interfaces=[AgentInterface(url=url, protocol_binding=TransportProtocol.JSONRPC, protocol_version=PROTOCOL_VERSION_1_0)],
        capabilities=AgentCapabilities(streaming=False, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="ask", name="ask", description="Asks, then answers.", tags=["test"])],
    )
    executor = AskingAgentExecutor(list(questions))
    handler = DefaultRequestHandler(executor, InMemoryTaskStore(), card)
    app = Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the asking agent did not start")
        time.sleep(0.05)
    try:
        yield url, executor
    finally:
        server.should_exit = True
        thread.join(timeout=30)
