"""Resuming a failed pipeline run: run again what failed and what comes after it, nothing else.

It is Airflow's own clear, through its REST API: ``POST /api/v2/dags/{dag_id}/clearTaskInstances``
with, for one run (``dag_run_id``):

- ``task_ids``: the failed and upstream_failed task instances (``[task_id, map_index]`` for a
  forEach item, so the items that succeeded are not repeated);
- ``include_downstream: true`` and ``only_failed: false``: what runs after them too, whatever its
  state: the later steps, and ``publish`` and ``rollback``, which ran after the failure with a
  partial result;
- ``reset_dag_runs: true``: the run goes back to queued, so the scheduler runs the cleared tasks;
- ``dry_run: false`` (Airflow's default is a dry run), and a ``note`` on the cleared tasks.

Every other task instance keeps its state and its XComs, so a succeeded step is not run again:
its artifacts and A2A task id are what the resumed steps and publish read. The run keeps its id;
the cleared tasks' try_number goes up, which their status nodes show as ``attempts``. Clearing the
failed tasks in the Airflow UI (with their downstream tasks) is the same operation; `aistack
resume` and the ``ai.stack/resume`` annotation (aistack.pipelines.submissions) call `resume_run`.

Refused (ResumeRefused, saying what to do instead): an unknown DAG or run, a run that is queued or
running (wait for it), one that succeeded (nothing to resume), one that failed without a failed
task (it was marked failed: trigger a new run). A run found active whose tasks carry this call's
``note`` was resumed by the same request already (a retried watcher task that cleared, then died
before recording it): that is reported as the resume it was, not refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

FAILED_STATES = ("failed", "upstream_failed")
NOTE = "resumed with `aistack resume`: the failed tasks and those after them were cleared"


class RunsAPI(Protocol):
    """The Airflow REST calls a resume makes (aistack.pipelines.airflow_rest.AirflowAPI)."""

    def get_dag(self, dag_id: str) -> dict[str, Any] | None: ...
    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any] | None: ...
    def latest_run(self, dag_id: str, state: str) -> dict[str, Any] | None: ...
    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]: ...
    def clear_task_instances(self, dag_id: str, body: dict[str, Any]) -> list[dict[str, Any]] | None: ...


class ResumeRefused(RuntimeError):
    """The run cannot be resumed; the message says why and what to do."""


@dataclass(frozen=True)
class Resumed:
    dag_id: str
    run_id: str
    cleared: tuple[str, ...]  # `task` or `task[map_index]`
    earlier: bool = False  # cleared by an earlier call with the same note (found active since)

    def describe(self) -> str:
        done = "was resumed already" if self.earlier else "resumed"
        return f"run {self.run_id} of {self.dag_id} {done}: cleared {', '.join(self.cleared)}"


def label(ti: dict[str, Any]) -> str:
    index = ti.get("map_index", -1)
    return ti["task_id"] if index is None or index < 0 else f"{ti['task_id']}[{index}]"


def _marker(ti: dict[str, Any]) -> str | list[Any]:
    """A task instance as clearTaskInstances' ``task_ids`` names it: a mapped one with its index."""
    index = ti.get("map_index", -1)
    return ti["task_id"] if index is None or index < 0 else [ti["task_id"], index]


def clear_body(run_id: str, failed: list[dict[str, Any]], note: str) -> dict[str, Any]:
    """The ClearTaskInstancesBody of a resume (see the module docstring)."""
    return {
        "dag_run_id": run_id,
        "task_ids": [_marker(ti) for ti in failed],
        "include_downstream": True,
        "include_upstream": False,
        "only_failed": False,
        "reset_dag_runs": True,
        "dry_run": False,
        "note": note,
    }


def resume_run(airflow: RunsAPI, dag_id: str, run_id: str | None = None, note: str = NOTE) -> Resumed:
    """Resume run ``run_id`` of ``dag_id`` (None: the run of that DAG that failed last)."""
    run = airflow.get_run(dag_id, run_id) if run_id else airflow.latest_run(dag_id, "failed")
    if run is None:
        if airflow.get_dag(dag_id) is None:
            raise ResumeRefused(f"Airflow has no DAG {dag_id}: check the name")
        raise ResumeRefused(f"DAG {dag_id} has no run {run_id}" if run_id else f"DAG {dag_id} has no failed run: nothing to resume")
    run_id, state = run["dag_run_id"], run["state"]
    where = f"run {run_id} of {dag_id}"
    if state == "success":
        raise ResumeRefused(f"{where} succeeded: nothing to resume (trigger a new run to run it again)")
    tasks = airflow.task_instances(dag_id, run_id)
    if state != "failed":  # queued or running
        noted = [ti for ti in tasks if ti.get("note") == note]
        if noted:
            return Resumed(dag_id, run_id, tuple(sorted(label(ti) for ti in noted)), earlier=True)
        raise ResumeRefused(f"{where} is {state}: wait until it ends, and resume it if it fails")
    failed = [ti for ti in tasks if ti.get("state") in FAILED_STATES]
    if not failed:
        raise ResumeRefused(f"{where} failed without a failed task (it was marked failed): nothing to resume, trigger a new run")
    cleared = airflow.clear_task_instances(dag_id, clear_body(run_id, failed, note))
    if cleared is None:
        raise ResumeRefused(f"{where} no longer exists")
    return Resumed(dag_id, run_id, tuple(sorted(label(ti) for ti in cleared)))
