"""A2A push notifications, delivered with aistack's webhook rules (webhooks.py).

The SDK calls `send_notification` for every task event while it processes the task's events,
so a slow webhook must not hold the task up: each (task, push config) pair gets its own queue
and worker, which delivers that webhook's notifications in order, in the background, each with
the retries of the agent's `webhookConfig` and the SSRF guard. Delivery is at least once.

What a webhook receives: one POST per notification, `Content-Type: application/a2a+json`, the
body a StreamResponse (`{"task": ...}`, `{"statusUpdate": ...}` or `{"artifactUpdate": ...}`),
`Authorization: <scheme> <credentials>` from the config's authentication, the config's token in
`X-A2A-Notification-Token`, and `X-Aistack-Delivery-Id` (the same on every retry). Webhooks get
whole artifacts, never token chunks: chunks of a streamed artifact are skipped and, when its
last chunk arrives, the complete artifact (read back from the task store) is sent instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
from a2a.server.tasks import PushNotificationConfigStore, PushNotificationEvent, PushNotificationSender
from a2a.types import Task, TaskArtifactUpdateEvent, TaskPushNotificationConfig, TaskStatusUpdateEvent
from a2a.utils.constants import A2A_JSON_MEDIA_TYPE
from a2a.utils.proto_utils import to_stream_response
from google.protobuf.json_format import MessageToDict

from aistack.agents.metrics import AgentMetrics
from aistack.agents.store import TERMINAL_STATES, AgentTaskStore
from aistack.agents.webhooks import Delivery, RetrySchedule, WebhookGuard, deliver

log = logging.getLogger("aistack.agents.push")

TOKEN_HEADER = "X-A2A-Notification-Token"
_DONE = object()


class PushDispatcher(PushNotificationSender):
    def __init__(
        self,
        config_store: PushNotificationConfigStore,
        task_store: AgentTaskStore,
        *,
        schedule: RetrySchedule,
        guard: WebhookGuard,
        timeout: float = 10.0,
        metrics: AgentMetrics | None = None,
        client: httpx.AsyncClient | None = None,
        idle_timeout: float = 600.0,
    ):
        self._configs = config_store
        self._tasks = task_store
        self.schedule = schedule
        self.guard = guard
        self.timeout = timeout
        self.metrics = metrics
        self.idle_timeout = idle_timeout
        self._client = client
        self._queues: dict[tuple[str, str], asyncio.Queue[Any]] = {}
        self._workers: set[asyncio.Task[None]] = set()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    async def send_notification(self, task_id: str, event: PushNotificationEvent) -> None:
        configs = await self._configs.get_info_for_dispatch(task_id)
        if not configs:
            return
        payload = await self._payload(task_id, event)
        if payload is None:
            return
        final = _is_final(event)
        for config in configs:
            self._queue(task_id, config).put_nowait((config, payload, final))

    async def _payload(self, task_id: str, event: PushNotificationEvent) -> dict[str, Any] | None:
        if isinstance(event, TaskArtifactUpdateEvent) and (event.append or not event.last_chunk):
            if not event.last_chunk:
                return None  # a token chunk: webhooks get the whole artifact once it is complete
            task = await self._tasks.get_for_dispatch(task_id)
            whole = next((a for a in task.artifacts if a.artifact_id == event.artifact.artifact_id), None) if task else None
            if whole is None:
                return None
            event = TaskArtifactUpdateEvent(task_id=event.task_id, context_id=event.context_id, artifact=whole, append=False, last_chunk=True)
        return MessageToDict(to_stream_response(event))

    def _queue(self, task_id: str, config: TaskPushNotificationConfig) -> asyncio.Queue[Any]:
        key = (task_id, config.id or config.url)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            worker = asyncio.create_task(self._work(key, queue), name=f"push:{task_id}")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        return queue

    async def _work(self, key: tuple[str, str], queue: asyncio.Queue[Any]) -> None:
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), self.idle_timeout)
                except TimeoutError:
                    return
                if item is _DONE:
                    return
                config, payload, final = item
                await self._deliver(key[0], config, payload)
                if final and queue.empty():
                    return
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]

    async def _deliver(self, task_id: str, config: TaskPushNotificationConfig, payload: dict[str, Any]) -> Delivery:
        headers = {}
        if config.token:
            headers[TOKEN_HEADER] = config.token
        if config.HasField("authentication") and config.authentication.scheme and config.authentication.credentials:
            headers["Authorization"] = f"{config.authentication.scheme} {config.authentication.credentials}"

        def attempted(result: Delivery) -> None:
            if self.metrics is not None:
                outcome = "ok" if result.delivered else (str(result.status) if result.status else "error")
                self.metrics.push_attempts.labels(outcome).inc()

        result = await deliver(
            self.client,
            config.url,
            json.dumps(payload, separators=(",", ":")).encode(),
            schedule=self.schedule,
            guard=self.guard,
            headers=headers,
            content_type=A2A_JSON_MEDIA_TYPE,
            timeout=self.timeout,
            on_attempt=attempted,
        )
        outcome = "delivered" if result.delivered else ("refused" if result.refused else "failed")
        if self.metrics is not None:
            self.metrics.push_deliveries.labels(outcome).inc()
        level = logging.INFO if result.delivered else logging.WARNING
        log.log(level, "push notification %s after %d attempt(s): %s", outcome, result.attempts, result.error or "ok", extra={"task_id": task_id})
        return result

    async def aclose(self, timeout: float = 5.0) -> None:
        """Let queued notifications go out (up to `timeout`), then stop the workers."""
        for queue in list(self._queues.values()):
            queue.put_nowait(_DONE)
        if self._workers:
            _, pending = await asyncio.wait(set(self._workers), timeout=timeout)
            for worker in pending:
                worker.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _is_final(event: PushNotificationEvent) -> bool:
    if isinstance(event, (Task, TaskStatusUpdateEvent)):
        return event.status.state in TERMINAL_STATES
    return False
