"""`aistack submit FILE --watch`: start a pipeline run and follow it until it ends, in both places
a pipeline runs.

- In a cluster: the TaskOrchestration is applied (created, or its spec merged), the submission
  watcher starts its run, and the run is followed through the resource's status: each step's
  node as it changes, then the run's phase, progress, tokens and outputs. A resource applied
  unchanged starts no run: its current run is followed instead (and says so).
- Against an Airflow (`aistack airflow`, or any): the pipeline's DAG is triggered through the REST
  API and its task instances are followed; the end is `aistack get`'s tree.

The exit status comes from the outcome: 0 succeeded, 1 failed or rolled back, 124 still going at
the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from aistack.pipelines.remote_run import RunsAPI, fetch_run
from aistack.pipelines.run_view import render_text

ENDED = frozenset({"Succeeded", "Failed", "RolledBack"})
TIMED_OUT = 124


def exit_status(phase: str | None) -> int:
    return 0 if phase in ("Succeeded", "success") else 1 if phase in ("Failed", "RolledBack", "failed") else TIMED_OUT


def _node_line(name: str, node: Mapping[str, Any]) -> str:
    parts = [f"{name:<28} {node.get('phase', '')}"]
    usage = node.get("usage") or {}
    if usage.get("totalTokens") is not None:
        parts.append(f"{usage['totalTokens']:,} tokens")
    if node.get("cached"):
        parts.append(f"reused from {node['cached']}")
    if node.get("review"):
        parts.append(f"review: {node['review']}")
    if node.get("message") and node.get("phase") == "Failed":
        parts.append(str(node["message"])[:300])
    return "  ".join(parts)


def follow_status(
    read: Callable[[], Mapping[str, Any]],
    echo: Callable[[str], None],
    *,
    previous_run: str | None,
    poll: float = 2.0,
    timeout: float = 3600.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Follow the resource's status (`read()` returns it) until a run other than `previous_run`
    has ended; echo each node's change. Returns the run's phase, or None at the timeout."""
    deadline = clock() + timeout
    shown: dict[str, tuple[Any, ...]] = {}
    announced = False
    while clock() < deadline:
        status = read() or {}
        run = status.get("runId")
        if run and run != previous_run:
            if not announced:
                echo(f"run {run}")
                announced = True
            for name, node in sorted((status.get("nodes") or {}).items(), key=lambda item: str(item[1].get("startedAt") or "~")):
                seen = (node.get("phase"), node.get("attempts"), node.get("review"), node.get("questions"))
                if shown.get(name) != seen:
                    shown[name] = seen
                    echo(_node_line(name, node))
            if status.get("phase") in ENDED:
                usage = status.get("usage") or {}
                echo(
                    f"{status['phase']}  progress {status.get('progress', '?')}"
                    + (f"  {usage['totalTokens']:,} tokens" if usage.get("totalTokens") is not None else "")
                    + (f"  {status['message']}" if status.get("message") else "")
                )
                for location in status.get("outputs") or ():
                    echo(f"  {location}")
                return str(status["phase"])
        sleep(poll)
    return None


def follow_airflow(
    api: RunsAPI,
    dag_id: str,
    run_id: str,
    echo: Callable[[str], None],
    *,
    poll: float = 2.0,
    timeout: float = 3600.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Follow a DAG run's task instances until the run ends; echo each task's change, then the
    run as `aistack get` shows it. Returns the run's state, or None at the timeout."""
    deadline = clock() + timeout
    shown: dict[tuple[str, int], tuple[Any, ...]] = {}
    echo(f"run {run_id}")
    while clock() < deadline:
        for ti in api.task_instances(dag_id, run_id):
            key = (str(ti["task_id"]), int(ti.get("map_index", -1)))
            seen = (ti.get("state"), ti.get("try_number"))
            if ti.get("state") and shown.get(key) != seen:
                shown[key] = seen
                label = key[0] + (f"[{key[1]}]" if key[1] >= 0 else "")
                echo(f"{label:<28} {ti['state']}" + (f"  (try {ti['try_number']})" if (ti.get("try_number") or 1) > 1 else ""))
        state = (api.get_run(dag_id, run_id) or {}).get("state")
        if state in ("success", "failed"):
            run = fetch_run(api, dag_id, run_id)
            echo("")
            echo(render_text(run.view, run.depth))
            return str(state)
        sleep(poll)
    return None
