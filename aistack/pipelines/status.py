"""A pipeline run's progress on its TaskOrchestration's status, and as webhook events.

Each writer sends a merge patch of only what it knows (one step's node, or the run's phase),
so steps finishing at the same time never overwrite each other's entries. The status holds
references (names, locations, A2A task ids), never artifact contents, so it stays small.
Nothing is written when pipelines come from a folder (no cluster is involved).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from aistack import settings
from aistack.pipelines.plan import PipelinePlan
from aistack.resources import TaskOrchestration

log = logging.getLogger(__name__)
_REFUSED: set[str] = set()  # event endpoints the webhook guard refused, in this process


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_url(dag_id: str, run_id: str) -> str:
    return f"{settings.airflow_ui_url()}/dags/{dag_id}/runs/{run_id}"


class RunReporter:
    """Writes one run's status patches and POSTs its events (when the orchestration asks for them)."""

    def __init__(self, namespace: str, name: str, dag_id: str, run_id: str, steps: int, events_endpoint: str | None) -> None:
        self.namespace, self.name, self.dag_id, self.run_id = namespace, name, dag_id, run_id
        self.steps, self.events_endpoint = steps, events_endpoint

    @classmethod
    def for_run(cls, plan: PipelinePlan, run_id: str) -> RunReporter:
        """The reporter of one run of a pipeline (every task of the run builds the same one)."""
        return cls(plan.namespace, plan.name, plan.dag_id, run_id, len(plan.steps), plan.events_endpoint)

    def step(self, step: str, phase: str, **fields: Any) -> None:
        node = {"phase": phase, **{k: v for k, v in fields.items() if v is not None}}
        patch: dict[str, Any] = {"nodes": {step: node}, "dagId": self.dag_id, "runId": self.run_id, "runUrl": run_url(self.dag_id, self.run_id)}
        if phase == "Running":
            patch["phase"] = "Running"
        self._write(patch, {"type": "step", "step": step, **node})

    def for_item(self, index: int, label: str) -> RunReporter:
        """The reporter of one forEach item: its node is `<step>[<index>]`, labelled."""
        return ItemReporter(self.namespace, self.name, self.dag_id, self.run_id, self.steps, self.events_endpoint, index, label)

    def finished(self, phase: str, done: int, message: str, outputs: list[str] | None = None, usage: dict[str, Any] | None = None) -> None:
        patch: dict[str, Any] = {
            "phase": phase,
            "finishedAt": now(),
            "progress": f"{done}/{self.steps}",
            "message": message,
            "dagId": self.dag_id,
            "runId": self.run_id,
            "runUrl": run_url(self.dag_id, self.run_id),
        }
        if outputs is not None:
            patch["outputs"] = outputs
        if usage is not None:
            patch["usage"] = usage
        self._write(patch, {"type": "run", "phase": phase, "message": message, "outputs": outputs or []})

    def _write(self, patch: dict[str, Any], event: dict[str, Any]) -> None:
        if settings.orchestrations_path() is None:
            try:
                from aistack.kube.client import ResourceClient, api_client

                ResourceClient(api_client()).patch_status(TaskOrchestration, self.name, self.namespace, patch)
            except Exception as exc:  # status is best effort: a run never fails because it could not report
                log.warning("could not write the status of %s/%s: %s", self.namespace, self.name, exc)
        if self.events_endpoint:
            self._post(self.events_endpoint, event | {"orchestration": f"{self.namespace}/{self.name}", "dagId": self.dag_id, "runId": self.run_id, "time": now()})

    def _post(self, endpoint: str, event: dict[str, Any]) -> None:
        import httpx

        from aistack.agents.webhooks import Delivery, RetrySchedule, WebhookGuard, deliver

        async def send() -> Delivery:
            async with httpx.AsyncClient() as client:
                return await deliver(
                    client,
                    endpoint,
                    event,
                    schedule=RetrySchedule("exponential", 3, 0.5, 5.0, 0.2),
                    guard=WebhookGuard(),
                    headers={},
                    content_type="application/json",
                    timeout=5.0,
                )

        if endpoint in _REFUSED:
            return  # said once in this process: an endpoint the guard refuses stays refused for the run
        try:
            delivery = asyncio.run(send())
        except Exception as exc:
            log.warning("could not deliver the %s event to %s: %s", event["type"], endpoint, exc)
            return
        if delivery.refused:
            _REFUSED.add(endpoint)
            log.warning("events of this run will not be sent to %s (refused: %s)", endpoint, delivery.error)


class ItemReporter(RunReporter):
    """Writes a forEach item's node, `<step>[<index>]` with its label, instead of the step's."""

    def __init__(self, namespace: str, name: str, dag_id: str, run_id: str, steps: int, events_endpoint: str | None, index: int, label: str) -> None:
        super().__init__(namespace, name, dag_id, run_id, steps, events_endpoint)
        self.index, self.label = index, label

    def step(self, step: str, phase: str, **fields: Any) -> None:
        super().step(f"{step}[{self.index}]", phase, item=self.label, **fields)
