"""The submission watcher's Airflow side: where the generator is, triggering runs through the
Task SDK, and the dispatcher (aistack.pipelines.submissions) wired to this task's connections."""

from __future__ import annotations

import posixpath
from typing import Any

from aistack import settings
from aistack.pipelines.submissions import GENERATOR_FILE, TaskOrchestrationDispatcher


def generator_location(ti: Any) -> tuple[str, str]:
    """The generator's (bundle, path): AISTACK_GENERATOR_BUNDLE/FILE, else beside the watcher's own file."""
    bundle, path = settings.generator_location()
    if bundle and path:
        return bundle, path
    own = ti.get_dag(ti.dag_id)
    folder = posixpath.dirname(own.relative_fileloc or "")
    return bundle or own.bundle_name, path or posixpath.join(folder, GENERATOR_FILE)


def trigger_through_task_sdk(dag_id: str, run_id: str, conf: dict[str, Any]) -> bool:
    """Trigger a run through the execution API, as TriggerDagRunOperator does; False if it exists."""
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    try:
        response = SUPERVISOR_COMMS.send(TriggerDagRun(dag_id=dag_id, run_id=run_id, conf=conf, logical_date=None))
    except AirflowRuntimeError as exc:
        if exc.error.error == ErrorType.DAGRUN_ALREADY_EXISTS:
            return False
        raise
    if isinstance(response, ErrorResponse):
        if response.error == ErrorType.DAGRUN_ALREADY_EXISTS:
            return False
        raise RuntimeError(f"triggering {dag_id} {run_id} failed: {response.error} {response.detail}")
    return True


def dispatcher_for_task(ti: Any, **kwargs: Any) -> TaskOrchestrationDispatcher:
    from kubernetes import client

    from aistack.kube.client import api_client
    from aistack_airflow.hooks.airflow_api import api_from_connection, conf_get

    airflow = api_from_connection()
    return TaskOrchestrationDispatcher(
        objects=client.CustomObjectsApi(api_client()),
        airflow=airflow,
        trigger_run=trigger_through_task_sdk,
        generator=generator_location(ti),
        # The UI is served where the REST API is, unless [api] base_url says otherwise.
        ui_base_url=conf_get("api", "base_url") or airflow.base_url,
        **kwargs,
    )
