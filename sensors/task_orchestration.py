"""Notice `kubectl apply` of a TaskOrchestration: a watch in the triggerer and a deferrable sensor.

A *submission* is a TaskOrchestration whose current ``metadata.generation`` has no run yet:
``status.observedGeneration`` is missing or lower. The watcher DAG writes observedGeneration
when it starts a run for that generation, so the cluster itself is the durable record of what
was handled: a trigger that (re)starts lists the resources and reports every pending one
first, then watches for new ones. Nothing is kept in the triggerer that a restart could lose.

A *resume request* is an ``ai.stack/resume`` annotation value that ``status.resume.request`` has
not recorded (aistack.pipelines.submissions): the watcher DAG records each value it handles, so a
restarted trigger reports only the values still waiting, and each at most once per trigger.

Within one trigger a (uid, generation) is reported at most once (aistack/kube/watch.py:
a status-only or label-only change keeps the generation; dropped watches resume, 410 Gone
re-lists). Generations that come and go while nothing watches (v2 then v3 before a re-list)
are coalesced into the latest one: the generated DAG is built from the current spec anyway. A
duplicate report can still arise around a restart (a run started but its status not yet
written), which is why the watcher DAG uses a deterministic run id per (uid, generation): a
second trigger of the same run is refused by Airflow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from aistack.kube.watch import SUBMITTED, event_for, resume_event
from aistack.pipelines.submissions import PLURAL, is_pending, resume_request
from aistack.resources import GROUP, VERSION
from aistack_airflow.triggers.task_orchestration import TaskOrchestrationTrigger

log = logging.getLogger(__name__)


class TaskOrchestrationSensor(BaseSensorOperator):
    """Waits for TaskOrchestration submissions and resume requests; returns them (a list of event dicts).

    Deferrable by default: the watch runs in the triggerer (TaskOrchestrationTrigger). The
    resourceVersion the watch reached is pushed as the XCom ``resource_version``; pass it back
    as ``resource_version`` to the next sensor so that deletions in between are replayed.
    ``idle_timeout`` (seconds) ends the wait with an empty list. Non-deferrable, it polls: each
    poke lists the pending submissions and resume requests (no deletions).
    """

    template_fields: Sequence[str] = ("namespace", "resource_version")

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
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.idle_timeout = idle_timeout
        self.namespace = namespace
        self.report_deletions = report_deletions
        self.resource_version = resource_version
        self.batch_seconds = batch_seconds
        self.kubeconfig = kubeconfig
        self.context = context
        self.deferrable = deferrable

    def trigger(self) -> TaskOrchestrationTrigger:
        return TaskOrchestrationTrigger(
            namespace=self.namespace or None,
            report_deletions=self.report_deletions,
            resource_version=self.resource_version or None,
            batch_seconds=self.batch_seconds,
            idle_timeout=self.idle_timeout,
            kubeconfig=self.kubeconfig,
            context=self.context,
        )

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        timeout = timedelta(seconds=self.timeout) if self.timeout else None
        self.defer(trigger=self.trigger(), method_name="execute_complete", timeout=timeout)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> list[dict[str, Any]]:
        if event.get("status") != "ok":
            raise RuntimeError(f"watching TaskOrchestrations failed: {event.get('message')}")
        events = event["events"]
        context["ti"].xcom_push(key="resource_version", value=event.get("resource_version"))
        self.log.info("%d TaskOrchestration event(s): %s", len(events), ", ".join(f"{e['type']} {e['namespace']}/{e['name']} g{e['generation']}" for e in events))
        return events

    def poke(self, context: Any) -> PokeReturnValue:
        from kubernetes import client

        from aistack.kube.client import api_client

        with api_client(self.kubeconfig, self.context) as api:
            objects = client.CustomObjectsApi(api)
            if self.namespace:
                result = objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
            else:
                result = objects.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        items = result.get("items", [])
        events = [event_for(SUBMITTED, item) for item in items if is_pending(item)]
        events += [resume_event(item, request) for item in items if (request := resume_request(item)) is not None]
        return PokeReturnValue(is_done=bool(events), xcom_value=events or None)
