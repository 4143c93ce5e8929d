"""Waits for an A2A task in the triggerer, so a long agent task holds no worker slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from aistack.agents.client import INTERRUPTED, AgentClient, AgentError


class A2ATaskTrigger(BaseTrigger):
    """Polls GetTask until the task is terminal, needs input, or `deadline` passes.

    At the deadline the trigger cancels the agent's task itself before reporting the timeout,
    so an expired step never leaves the model working. The token is not serialized: the
    trigger reads the connection named by `a2a_conn_id`, or the configured agent token of
    `namespace` (the one the task was started with: the agent shows a task to its owner only).
    """

    def __init__(
        self, agent_url: str, task_id: str, poll_interval: float = 2.0, deadline: float | None = None, a2a_conn_id: str | None = None, namespace: str | None = None
    ) -> None:
        super().__init__()
        self.agent_url = agent_url
        self.task_id = task_id
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.a2a_conn_id = a2a_conn_id
        self.namespace = namespace

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "agent_url": self.agent_url,
                "task_id": self.task_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "a2a_conn_id": self.a2a_conn_id,
                "namespace": self.namespace,
            },
        )

    async def _token(self) -> str | None:
        if not self.a2a_conn_id:
            return None
        from aistack_airflow.hooks.a2a import A2AHook

        hook = A2AHook(a2a_conn_id=self.a2a_conn_id)
        return (await asyncio.to_thread(hook.endpoint))[1]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            async with await AgentClient.connect(self.agent_url, token=await self._token(), namespace=self.namespace) as agent:
                while True:
                    result = await agent.get_task(self.task_id)
                    if result.terminal or result.state in INTERRUPTED:
                        yield TriggerEvent({"status": "done", "result": result.to_json()})
                        return
                    if self.deadline is not None and time.time() >= self.deadline:
                        await agent.cancel(self.task_id)
                        yield TriggerEvent({"status": "timeout", "result": result.to_json()})
                        return
                    await asyncio.sleep(self.poll_interval)
        except AgentError as exc:
            yield TriggerEvent({"status": "error", "message": str(exc)})
