"""task_orchestration_watcher: `kubectl apply` of a TaskOrchestration starts a run of its DAG.

One continuous run at a time (``schedule="@continuous"``, ``max_active_runs=1``): a deferrable
TaskOrchestrationSensor waits in the triggerer on a watch of the cluster's TaskOrchestrations
and returns the submissions (and deletions) it saw; ``start_runs`` then, for each submission,
requests a parse of the generator (`dags/task_orchestrations.py`) through the REST API
(``parseDagFile``), waits for its DAG, triggers a run with conf ``{namespace, name, uid,
generation}`` and run id ``k8s__<uid>__g<generation>``, and records it on the resource's status
(``observedGeneration``, ``phase: Pending``, ``dagId``, ``runId``, condition ``Accepted``). An
invalid resource gets ``Accepted=False`` with the validation errors and no run. A deleted
resource's queued and running runs are marked failed. The annotation ``ai.stack/resume``
(``latest`` or a run id) resumes a failed run from its failed steps (REST ``clearTaskInstances``),
once per value: ``status.resume`` records it (aistack.pipelines.submissions). When the run ends,
the scheduler starts the next one: that is how the watch re-arms.

Why a sensor DAG rather than an AssetWatcher (event-driven scheduling): the handled/unhandled
record lives in the cluster (status.observedGeneration), so each sensor's trigger starts by
listing what is still pending and needs no state of its own, and the watcher's run boundary
batches bursts of applies. An AssetWatcher's trigger is created from parse-time arguments and
runs forever, its asset events carry no run id of ours and are batched into asset-triggered runs
anyway, and it cannot be run by ``dag.test()``; the sensor DAG can, end to end.

The resourceVersion the watch reached is kept in the Variable ``aistack_task_orchestration_watch_rv``
after each handled batch, so the next sensor replays deletions that happened between two runs.

Settings (environment of the workers and triggerer): AISTACK_WATCH_NAMESPACE (default: all
namespaces); the connection ``aistack_airflow_api`` for the REST API (see hooks/airflow_api.py);
AISTACK_GENERATOR_BUNDLE/AISTACK_GENERATOR_FILE when the generator is not beside this file.
The service account needs list/watch/get on taskorchestrations and patch on taskorchestrations/status.
Set ``[core] min_serialized_dag_update_interval`` to 0 (or a second or two): by default Airflow
keeps a DAG's serialized form for 30 s after writing it, so a spec change applied within that
time would have to wait for it (the watcher re-requests the parse every 5 s, up to a minute).

Latency (bench/apply_to_running.py, `airflow standalone`): about 6 s from `kubectl apply` to the
run starting, of which about 2.3 s until the sensor resumes and 3 s until start_runs starts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Variable, task

from aistack import settings
from aistack_airflow.sensors.task_orchestration import TaskOrchestrationSensor

RESUME_VARIABLE = "aistack_task_orchestration_watch_rv"
WAIT_TASK = "wait_for_submissions"

with DAG(
    "task_orchestration_watcher",
    schedule="@continuous",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    # Watching starts by itself where pipelines come from the cluster; with a folder source
    # (AISTACK_ORCHESTRATIONS_PATH, e.g. `aistack airflow`) there is no cluster to watch.
    is_paused_upon_creation=settings.orchestrations_path() is not None,
    tags=["aistack", "orchestrations"],
    doc_md=__doc__,
) as dag:
    submissions = TaskOrchestrationSensor(
        task_id=WAIT_TASK,
        namespace=settings.watch_namespace(),
        report_deletions=True,
        resource_version="{{ var.value.get('" + RESUME_VARIABLE + "', '') }}",
        # An idle hour ends the run with nothing to do; the next one re-lists.
        idle_timeout=3600,
        timeout=2 * 3600,
    )

    @task(retries=3, retry_delay=timedelta(seconds=5))
    def start_runs(events: list[dict[str, Any]], ti: Any = None) -> list[dict[str, Any]]:
        from aistack_airflow.sensors.task_orchestration_dispatch import dispatcher_for_task

        outcomes = dispatcher_for_task(ti).handle(events or [])
        resource_version = ti.xcom_pull(task_ids=WAIT_TASK, key="resource_version")
        if resource_version:
            Variable.set(RESUME_VARIABLE, resource_version)
        return [outcome.as_dict() for outcome in outcomes]

    start_runs(submissions.output)
