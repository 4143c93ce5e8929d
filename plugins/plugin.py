"""aistack's AirflowPlugin: the TaskOrchestrations page in the Airflow UI.

Registered through the `airflow.plugins` entry point (pyproject.toml), so every install of
aistack has it without copying files into a plugins folder. It adds:

- a FastAPI app at `/aistack`: `/aistack/` (the page) and `/aistack/orchestrations` (the same
  rows as JSON), behind Airflow's own authentication (the UI's session cookie or a Bearer JWT)
  and its DAG read permission;
- a nav entry "TaskOrchestrations" that shows the page inside the UI.

The operators' extra link (the agent card) comes with the provider entry point
(plugins/provider_info.py), and run status is written by the tasks themselves, so the plugin
registers no listeners.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from aistack.pipelines import overview as orchestration_overview
from aistack.pipelines import source as orchestration_source
from aistack.pipelines.plan import dag_id_for

URL_PREFIX = "/aistack"

app = FastAPI(title="aistack TaskOrchestrations", dependencies=[Depends(requires_access_dag("GET"))])


def latest_runs(dag_ids: Iterable[str]) -> dict[str, orchestration_overview.LatestRun]:
    """The most recently created run of each DAG, from Airflow's metadata database."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    wanted = list(dag_ids)
    if not wanted:
        return {}
    newest = select(func.max(DagRun.id)).where(DagRun.dag_id.in_(wanted)).group_by(DagRun.dag_id)
    with create_session() as session:
        runs = session.execute(select(DagRun.dag_id, DagRun.run_id, DagRun.state).where(DagRun.id.in_(newest))).all()
    return {dag_id: orchestration_overview.LatestRun(run_id, str(state)) for dag_id, run_id, state in runs}


def _overview() -> tuple[list[orchestration_overview.Row], orchestration_source.Snapshot]:
    snapshot = orchestration_source.load()
    ids = [dag_id_for(o.namespace, o.name) for o in snapshot.valid]
    return orchestration_overview.rows(snapshot, latest_runs(ids)), snapshot


@app.get("/", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    found, snapshot = await asyncio.to_thread(_overview)  # a cluster listing and a query: off the event loop
    return HTMLResponse(orchestration_overview.render_html(found, snapshot.source, snapshot.stale))


@app.get("/orchestrations")
async def orchestrations() -> JSONResponse:
    found, snapshot = await asyncio.to_thread(_overview)
    return JSONResponse({"source": snapshot.source, "stale": snapshot.stale, "orchestrations": [r.to_json() for r in found]})


class AistackPlugin(AirflowPlugin):
    name = "aistack"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "aistack TaskOrchestrations"}]
    external_views = [
        {"name": "TaskOrchestrations", "href": "aistack/", "destination": "nav", "url_route": "taskorchestrations", "category": "browse"},
    ]
