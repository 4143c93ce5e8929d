"""The TaskOrchestrations page of the Airflow UI: one row per resource, its latest run's phase,
progress and tokens, its DAG, and a link to the run's results page (run_view.py).

Invalid resources are listed with their errors, so a broken submission is found by name here as
with `kubectl get`. Kept free of Airflow so the rows and the page are tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import quote

from aistack.pipelines.plan import dag_id_for, plan
from aistack.pipelines.run_view import RunInfo, RunView, TaskRow, page, run_view
from aistack.pipelines.source import Snapshot

RUN_STATE_PHASES = {"queued": "Pending", "running": "Running", "success": "Succeeded", "failed": "Failed"}


@dataclass(frozen=True)
class LatestRun:
    run_id: str
    state: str  # Airflow's DagRun state
    tasks: tuple[TaskRow, ...] = ()  # its task instances
    usage: Mapping[str, Any] | None = None  # the run's totals, once published


@dataclass(frozen=True)
class Row:
    namespace: str
    name: str
    dag_id: str
    steps: int
    phase: str
    progress: str | None = None
    run_id: str | None = None
    message: str | None = None
    errors: list[str] = field(default_factory=list)
    tokens: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "dagId": self.dag_id,
            "steps": self.steps,
            "phase": self.phase,
            "progress": self.progress,
            "runId": self.run_id,
            "message": self.message,
            "errors": self.errors,
            "tokens": self.tokens,
        }


def rows(snapshot: Snapshot, latest: Mapping[str, LatestRun]) -> list[Row]:
    """Sorted by namespace and name; `latest` maps dag_id to its most recent run.

    Airflow's latest run is what the row shows: its progress from its task instances, its phase
    only once the run has ended (the resource's status may say Succeeded as soon as publish
    wrote it, while Airflow still finishes the run), the status's message and phase (RolledBack)
    when they are about that run. A resource Airflow has no run of shows its status, if any.
    """
    out = []
    for o in snapshot.valid:
        dag_id = dag_id_for(o.namespace, o.name)
        status, run = o.status, latest.get(dag_id)
        same = status is not None and run is not None and status.run_id == run.run_id
        if run is not None:
            view = run_view(plan(o), RunInfo(dag_id, run.run_id, run.state), run.tasks, {})
            phase = RUN_STATE_PHASES.get(run.state, run.state)
            if view.ended and same and status is not None and status.phase is not None:
                phase = status.phase.value
            message = status.message if same and status is not None and status.message else _message(view)
            tokens = int(run.usage["totalTokens"]) if run.usage and "totalTokens" in run.usage else None
            out.append(Row(o.namespace, o.name, dag_id, len(o.spec.pipeline), phase, view.progress, run.run_id, message, tokens=tokens))
        elif status is not None and status.phase is not None:
            out.append(Row(o.namespace, o.name, dag_id, len(o.spec.pipeline), status.phase.value, status.progress, status.run_id, status.message))
        else:
            out.append(Row(o.namespace, o.name, dag_id, len(o.spec.pipeline), "NotRun"))
    for bad in snapshot.invalid:
        out.append(Row(bad.namespace, bad.name, dag_id_for(bad.namespace, bad.name), 0, "Invalid", errors=[str(e) for e in bad.errors]))
    return sorted(out, key=lambda r: (r.namespace, r.name))


def _message(view: RunView) -> str | None:
    """What a run's row says without a status: which steps failed, or that all completed."""
    failed = [step.name for step in view.steps if step.state in ("failed", "upstream_failed")]
    if failed:
        return f"did not complete: {', '.join(failed)}"
    if view.ended and view.run.state == "success":
        return "every step completed"
    running = [step.name for step in view.steps if step.state in ("running", "awaiting_input", "deferred", "queued")]
    return f"running: {', '.join(running)}" if running else None


COLUMNS = ("Namespace", "Name", "Phase", "Progress", "Steps", "Tokens", "DAG", "Latest run", "Message")


def render_html(found: list[Row], source: str, stale: bool, airflow_base: str = "../") -> str:
    """The list; links open the run's results page, and Airflow's own DAG and run pages (outside
    the plugin's frame). While a run is going, the page reloads itself every 5 seconds."""

    def dag_link(row: Row) -> str:
        return f'<a target="_top" href="{escape(airflow_base)}dags/{quote(row.dag_id, safe="")}">{escape(row.dag_id)}</a>'

    def run_link(row: Row) -> str:
        if not row.run_id:
            return ""
        dag, run = quote(row.dag_id, safe=""), quote(row.run_id, safe="")
        results = f'<a href="runs/{escape(dag)}/{escape(run)}">{escape(row.run_id)}</a>'
        return f'{results} (<a target="_top" href="{escape(airflow_base)}dags/{escape(dag)}/runs/{escape(run)}">in Airflow</a>)'

    lines = []
    for row in found:
        detail = "<br>".join(escape(e) for e in row.errors) or escape(row.message or "")
        tokens = f"{row.tokens:,}" if row.tokens is not None else ""
        lines.append(
            f"<tr><td>{escape(row.namespace)}</td><td>{escape(row.name)}</td>"
            f'<td class="state {escape(row.phase.lower())}">{escape(row.phase)}</td><td>{escape(row.progress or "")}</td><td>{row.steps or ""}</td>'
            f"<td>{tokens}</td><td>{dag_link(row)}</td><td>{run_link(row)}</td><td>{detail}</td></tr>"
        )
    warning = "<p class=stale>The cluster could not be reached: this is the last good listing.</p>" if stale else ""
    body = "\n".join(lines) or f'<tr><td colspan="{len(COLUMNS)}">No TaskOrchestrations.</td></tr>'
    going = any(row.phase in ("Running", "Pending") for row in found)
    content = f"""<h1>TaskOrchestrations</h1><p class="source">Source: {escape(source)}</p>{warning}
<table><thead><tr>{"".join(f"<th>{column}</th>" for column in COLUMNS)}</tr></thead>
<tbody>
{body}
</tbody></table>"""
    return page("TaskOrchestrations", '<meta http-equiv="refresh" content="5">' if going else "", content)
