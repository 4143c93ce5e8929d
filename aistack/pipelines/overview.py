"""The TaskOrchestrations page of the Airflow UI: one row per resource, its phase, its DAG.

The phase is the resource's own status when Airflow has written one (a cluster source); for a
folder source, which has no status, it is the latest DAG run's state. Invalid resources are
listed with their errors, so a broken submission is found by name here as with `kubectl get`.
Kept free of Airflow so the rows and the page are tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from urllib.parse import quote

from aistack.pipelines.plan import dag_id_for
from aistack.pipelines.source import Snapshot

RUN_STATE_PHASES = {"queued": "Pending", "running": "Running", "success": "Succeeded", "failed": "Failed"}


@dataclass(frozen=True)
class LatestRun:
    run_id: str
    state: str  # Airflow's DagRun state


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
        }


def rows(snapshot: Snapshot, latest: Mapping[str, LatestRun]) -> list[Row]:
    """Sorted by namespace and name; `latest` maps dag_id to its most recent run."""
    out = []
    for o in snapshot.valid:
        dag_id = dag_id_for(o.namespace, o.name)
        status, run = o.status, latest.get(dag_id)
        if status is not None and status.phase is not None:
            phase, progress, run_id, message = status.phase.value, status.progress, status.run_id, status.message
        elif run is not None:
            phase, progress, run_id, message = RUN_STATE_PHASES.get(run.state, run.state), None, run.run_id, None
        else:
            phase, progress, run_id, message = "NotRun", None, None, None
        out.append(Row(o.namespace, o.name, dag_id, len(o.spec.pipeline), phase, progress, run_id, message))
    for bad in snapshot.invalid:
        out.append(Row(bad.namespace, bad.name, dag_id_for(bad.namespace, bad.name), 0, "Invalid", errors=[str(e) for e in bad.errors]))
    return sorted(out, key=lambda r: (r.namespace, r.name))


def render_html(found: list[Row], source: str, stale: bool, airflow_base: str = "../") -> str:
    """A self-contained page; links open Airflow's own DAG and run pages (outside the plugin's frame)."""

    def dag_link(row: Row) -> str:
        return f'<a target="_top" href="{escape(airflow_base)}dags/{quote(row.dag_id, safe="")}">{escape(row.dag_id)}</a>'

    def run_link(row: Row) -> str:
        if not row.run_id:
            return ""
        href = f"{airflow_base}dags/{quote(row.dag_id, safe='')}/runs/{quote(row.run_id, safe='')}"
        return f'<a target="_top" href="{escape(href)}">{escape(row.run_id)}</a>'

    lines = []
    for row in found:
        detail = "<br>".join(escape(e) for e in row.errors) or escape(row.message or "")
        lines.append(
            f'<tr class="{escape(row.phase.lower())}"><td>{escape(row.namespace)}</td><td>{escape(row.name)}</td>'
            f"<td>{escape(row.phase)}</td><td>{escape(row.progress or '')}</td><td>{row.steps or ''}</td>"
            f"<td>{dag_link(row)}</td><td>{run_link(row)}</td><td>{detail}</td></tr>"
        )
    warning = "<p class=stale>The cluster could not be reached: this is the last good listing.</p>" if stale else ""
    body = "\n".join(lines) or '<tr><td colspan="8">No TaskOrchestrations.</td></tr>'
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>TaskOrchestrations</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1a202c; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .45rem .7rem; border-bottom: 1px solid #e2e8f0; vertical-align: top; }}
th {{ background: #f7fafc; }}
tr.succeeded td:nth-child(3) {{ color: #2f855a; }} tr.failed td:nth-child(3), tr.invalid td:nth-child(3) {{ color: #c53030; }}
tr.running td:nth-child(3) {{ color: #2b6cb0; }} .stale {{ color: #c05621; }} .source {{ color: #718096; }}
</style></head>
<body><h1>TaskOrchestrations</h1><p class="source">Source: {escape(source)}</p>{warning}
<table><thead><tr><th>Namespace</th><th>Name</th><th>Phase</th><th>Progress</th><th>Steps</th><th>DAG</th><th>Latest run</th><th>Message</th></tr></thead>
<tbody>
{body}
</tbody></table></body></html>
"""
