"""A pipeline run as Airflow's REST API shows it, for `aistack get` and `aistack logs`: the same
in a cluster's Airflow as under `aistack airflow`, and with no copy of the resource at hand (the
steps and their order come from the DAG's tasks).

A step is its task `<step>` with its `<step>__items` (forEach) and `<step>__review` (review);
`publish` and `rollback` are the run's own, not steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from aistack.pipelines.items import step_result
from aistack.pipelines.plan import ITEMS_SUFFIX, REVIEW_SUFFIX, parse_dag_id
from aistack.pipelines.run_view import RunInfo, RunView, StepTasks, TaskRow, step_views

RUN_TASKS = frozenset({"publish", "rollback"})


class RunsAPI(Protocol):
    """What is read of Airflow (aistack.pipelines.airflow_rest.AirflowAPI)."""

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any] | None: ...
    def newest_run(self, dag_id: str) -> dict[str, Any] | None: ...
    def tasks(self, dag_id: str) -> list[dict[str, Any]]: ...
    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]: ...
    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any: ...
    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1, token: str | None = None) -> tuple[list[Any], str | None]: ...


class RunNotFound(LookupError):
    pass


def step_of(task_id: str) -> str:
    """The step a task belongs to."""
    for suffix in (ITEMS_SUFFIX, REVIEW_SUFFIX):
        if task_id.endswith(suffix):
            return task_id.removesuffix(suffix)
    return task_id


def dag_steps(tasks: Sequence[Mapping[str, Any]]) -> tuple[list[StepTasks], dict[str, int]]:
    """The steps in a DAG's tasks, upstream ones first, and each step's depth (0: nothing before it)."""
    upstream: dict[str, set[str]] = {}
    members: dict[str, list[str]] = {}
    for task in tasks:
        task_id = str(task["task_id"])
        if task_id in RUN_TASKS:
            continue
        step = step_of(task_id)
        members.setdefault(step, []).append(task_id)
        upstream.setdefault(step, set())
    for task in tasks:
        source = step_of(str(task["task_id"]))
        for downstream in task.get("downstream_task_ids") or ():
            target = step_of(str(downstream))
            if source in members and target in members and target != source:
                upstream[target].add(source)
    depth: dict[str, int] = {}
    remaining = dict(upstream)
    level = 0
    while remaining:  # by levels: a DAG has no cycle, so each pass places at least one step
        ready = sorted(step for step, before in remaining.items() if before <= depth.keys())
        if not ready:
            raise ValueError(f"the DAG's steps depend on each other in a cycle: {', '.join(sorted(remaining))}")
        for step in ready:
            depth[step] = level
            del remaining[step]
        level += 1
    order = sorted(members, key=lambda step: (depth[step], step))
    rank = {ITEMS_SUFFIX: 0, "": 1, REVIEW_SUFFIX: 2}
    steps = [StepTasks(step, "", tuple(sorted(members[step], key=lambda t: rank.get(t.removeprefix(step), 1)))) for step in order]
    return steps, depth


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def _task_row(ti: Mapping[str, Any]) -> TaskRow:
    return TaskRow(
        str(ti["task_id"]), ti.get("state"), int(ti.get("try_number") or 0), int(ti.get("map_index", -1)), _moment(ti.get("start_date")), _moment(ti.get("end_date"))
    )


@dataclass
class RemoteRun:
    view: RunView
    depth: dict[str, int]
    tasks: list[TaskRow]


def fetch_run(api: RunsAPI, dag_id: str, run_id: str | None = None) -> RemoteRun:
    """The run (the newest when `run_id` is None), its steps, their task instances and results."""
    run = api.get_run(dag_id, run_id) if run_id else api.newest_run(dag_id)
    if run is None:
        raise RunNotFound(f"no run {run_id} of DAG {dag_id}" if run_id else f"DAG {dag_id} has no run (or Airflow does not know it)")
    run_id = str(run["dag_run_id"])
    steps, depth = dag_steps(api.tasks(dag_id))
    tasks = [_task_row(ti) for ti in api.task_instances(dag_id, run_id)]
    results = {}
    succeeded = {row.task_id for row in tasks if row.state == "success"}
    for step in steps:
        reviewed = step.tasks[-1] if step.tasks[-1].endswith(REVIEW_SUFFIX) else None
        source = reviewed if reviewed in succeeded else step.name  # under review: the agent's own result
        mapped = sorted(row.map_index for row in tasks if row.task_id == source and row.map_index >= 0)
        if mapped:
            results[step.name] = step_result([api.xcom(dag_id, run_id, source, map_index=index) for index in mapped])
        elif source in succeeded:
            results[step.name] = step_result(api.xcom(dag_id, run_id, source))
    namespace, name = parse_dag_id(dag_id) or ("", dag_id)
    info = RunInfo(dag_id, run_id, str(run.get("state")), _moment(run.get("start_date")), _moment(run.get("end_date")))
    return RemoteRun(RunView(namespace, name, info, step_views(steps, tasks, results)), depth, tasks)


def log_lines(entries: Sequence[Any]) -> Iterator[str]:
    """A task log's entries as text lines: structured ones as `time level event`, text as it is."""
    for entry in entries:
        if isinstance(entry, Mapping):
            when = str(entry.get("timestamp") or "")[11:19]
            level = str(entry.get("level") or "")
            event = str(entry.get("event") if entry.get("event") is not None else "")
            yield " ".join(part for part in (when, level, event) if part)
        else:
            yield from str(entry).splitlines()


WAITING = frozenset({None, "none", "scheduled", "queued"})
ENDED_TASK = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def follow_logs(
    api: RunsAPI,
    dag_id: str,
    run_id: str | None = None,
    *,
    step: str | None = None,
    follow: bool = False,
    poll: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[str]:
    """The run's task logs (of `step` only, if given) in the order the tasks started, each try
    under a header; with `follow`, what they add while the run goes on, until it has ended."""
    run = api.get_run(dag_id, run_id) if run_id else api.newest_run(dag_id)
    if run is None:
        raise RunNotFound(f"no run {run_id} of DAG {dag_id}" if run_id else f"DAG {dag_id} has no run (or Airflow does not know it)")
    run_id = str(run["dag_run_id"])
    read_on: dict[tuple[str, int, int], str | None] = {}  # a try's continuation token; None once it is read whole
    while True:
        instances = [ti for ti in api.task_instances(dag_id, run_id) if step is None or step_of(str(ti["task_id"])) == step]
        instances.sort(key=lambda ti: (str(ti.get("start_date") or "~"), str(ti["task_id"]), int(ti.get("map_index", -1))))
        for ti in instances:
            if ti.get("state") in WAITING:
                continue
            task, index, current = str(ti["task_id"]), int(ti.get("map_index", -1)), int(ti.get("try_number") or 1)
            for attempt in range(1, current + 1):
                key = (task, index, attempt)
                if key in read_on and read_on[key] is None:
                    continue
                entries, token = api.task_log(dag_id, run_id, task, attempt, index, token=read_on.get(key))
                if key not in read_on:
                    yield f"==> {task}{f'[{index}]' if index >= 0 else ''} (try {attempt}) <=="
                yield from log_lines(entries)
                finished = attempt < current or ti.get("state") in ENDED_TASK
                read_on[key] = None if token is None or finished else token
        if not follow:
            return
        now = api.get_run(dag_id, run_id)
        if now is None:  # deleted while followed: nothing more will come
            raise RunNotFound(f"run {run_id} of DAG {dag_id} is gone")
        if now.get("state") in ("success", "failed") and all(token is None for token in read_on.values()):
            return
        sleep(poll)
