"""The agent's task store: the SDK's in-memory store, observed and bounded.

Tasks are the SDK store's, kept per owner: the caller's identity (`ServerCallContext.user`, set
from the bearer token: security.py). Every read is the owner's, so a task of another identity is
not found, exactly as if it did not exist; only push delivery, which works for whoever
registered a webhook, reads a task whatever its owner (`get_for_dispatch`).

Every task state change passes through `save`, whatever wrote it (the executor, a cancel, the
SDK marking a crashed task FAILED), so this is where task state transitions are counted for
`/metrics`. An agent runs for weeks; finished tasks beyond `max_tasks` are forgotten oldest
first, so memory stays bounded (a running or interrupted task is never dropped).
"""

from __future__ import annotations

from collections import OrderedDict

from a2a.server.context import ServerCallContext
from a2a.server.tasks import InMemoryTaskStore, TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Task, TaskState

from aistack.agents.metrics import AgentMetrics

TERMINAL_STATES = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
    }
)


class AgentTaskStore(TaskStore):
    def __init__(self, metrics: AgentMetrics | None = None, max_tasks: int = 1000):
        self._store = InMemoryTaskStore()
        self._metrics = metrics
        self.max_tasks = max_tasks
        self._known: OrderedDict[str, tuple[int, ServerCallContext]] = OrderedDict()

    async def save(self, task: Task, context: ServerCallContext) -> None:
        await self._store.save(task, context)
        state = task.status.state
        previous = self._known.get(task.id)
        if self._metrics is not None and (previous is None or previous[0] != state):
            self._metrics.task_states.labels(TaskState.Name(state)).inc()
        # Only the owner scope is kept (not the request headers, which hold the token).
        self._known[task.id] = (state, ServerCallContext(user=context.user, tenant=context.tenant))
        if len(self._known) > self.max_tasks:
            await self._forget_finished()

    async def _forget_finished(self) -> None:
        for task_id, (state, context) in list(self._known.items()):
            if len(self._known) <= self.max_tasks:
                return
            if state in TERMINAL_STATES:
                await self._store.delete(task_id, context)
                del self._known[task_id]

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        return await self._store.get(task_id, context)

    async def get_for_dispatch(self, task_id: str) -> Task | None:
        """The task, read in its owner's scope (for push notifications, which have no caller)."""
        known = self._known.get(task_id)
        return await self._store.get(task_id, known[1]) if known is not None else None

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        return await self._store.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        await self._store.delete(task_id, context)
        self._known.pop(task_id, None)
