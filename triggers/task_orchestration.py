"""The triggerer's side of the TaskOrchestration watcher: a watch that fires with the submissions,
resume requests (and deletions) it sees. See aistack_airflow.sensors.task_orchestration for what
they are."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from aistack.kube.watch import ResourceWatch, collect_batch
from aistack.pipelines.submissions import PLURAL, is_pending, resume_request

log = logging.getLogger(__name__)


class TaskOrchestrationTrigger(BaseTrigger):
    """Fires once with every submission and resume request (and, with ``report_deletions``,
    deletion) it sees.

    It lists first (the pending submissions and unhandled resume requests are reported at once),
    then watches. The first event opens a short window (``batch_seconds``) so that several
    applies in a row make one TriggerEvent: ``{"status": "ok", "events": [...],
    "resource_version": rv}``; with ``idle_timeout``, an empty one after that many quiet seconds;
    ``{"status": "error", "message": ...}`` when the cluster refuses access (401/403). Dropped connections and server
    errors are retried with exponential backoff up to ``max_backoff`` seconds.
    ``resource_version``: see ResourceWatch's ``resume_from``. Cluster access: the
    in-cluster service account, else ``kubeconfig``/``context`` or KUBECONFIG.
    """

    def __init__(
        self,
        *,
        namespace: str | None = None,
        report_deletions: bool = False,
        resource_version: str | None = None,
        batch_seconds: float = 0.25,
        idle_timeout: float | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        watch_timeout_seconds: int = 290,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__()
        self.idle_timeout = idle_timeout
        self.namespace = namespace
        self.report_deletions = report_deletions
        self.resource_version = resource_version
        self.batch_seconds = batch_seconds
        self.kubeconfig = kubeconfig
        self.context = context
        self.watch_timeout_seconds = watch_timeout_seconds
        self.max_backoff = max_backoff

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "namespace": self.namespace,
                "report_deletions": self.report_deletions,
                "resource_version": self.resource_version,
                "batch_seconds": self.batch_seconds,
                "idle_timeout": self.idle_timeout,
                "kubeconfig": self.kubeconfig,
                "context": self.context,
                "watch_timeout_seconds": self.watch_timeout_seconds,
                "max_backoff": self.max_backoff,
            },
        )

    def make_watch(self) -> ResourceWatch:
        return ResourceWatch(
            PLURAL,
            pending=is_pending,
            resume_request=resume_request,
            namespace=self.namespace,
            report_deletions=self.report_deletions,
            resume_from=self.resource_version,
            kubeconfig=self.kubeconfig,
            context=self.context,
            watch_timeout_seconds=self.watch_timeout_seconds,
            max_backoff=self.max_backoff,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watch = self.make_watch()
        try:
            batch, resource_version = await collect_batch(watch, self.batch_seconds, self.idle_timeout)
        except Exception as exc:  # a refused watch (401/403) must fail the task, not hang it
            log.exception("taskorchestrations watch failed")
            yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
            return
        yield TriggerEvent({"status": "ok", "events": batch, "resource_version": resource_version})
