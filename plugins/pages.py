"""The pages of aistack's Airflow plugin (plugins/plugin.py): a FastAPI app served by Airflow's
api-server at `/aistack`: `/aistack/` (the list), `/aistack/orchestrations` (the same rows as JSON)
and `/aistack/runs/<dag_id>/<run_id>` (a run's results page), behind Airflow's own authentication
(the UI's session cookie or a Bearer JWT) and its read permission on the DAG (each run page: on
that DAG).

Only the api-server imports this module: it pulls in Airflow's API server and the page renderers,
which every task process would otherwise import with the plugin for nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse

from aistack.pipelines import overview as orchestration_overview
from aistack.pipelines import source as orchestration_source
from aistack.pipelines.items import step_result
from aistack.pipelines.plan import dag_id_for, plan
from aistack.pipelines.run_view import RunInfo, TaskRow, render_run, run_view

app = FastAPI(title="aistack TaskOrchestrations", dependencies=[Depends(requires_access_dag("GET"))])


def latest_runs(dag_ids: Iterable[str]) -> dict[str, orchestration_overview.LatestRun]:
    """The most recently created run of each DAG, with its task instances and its published
    usage totals, from Airflow's metadata database (three queries, whatever the number of DAGs)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    wanted = list(dag_ids)
    if not wanted:
        return {}
    newest = select(func.max(DagRun.id)).where(DagRun.dag_id.in_(wanted)).group_by(DagRun.dag_id)
    with create_session() as session:
        runs = session.execute(select(DagRun.id, DagRun.dag_id, DagRun.run_id, DagRun.state).where(DagRun.id.in_(newest))).all()
        tasks: dict[str, list[TaskRow]] = {}
        rows = session.execute(
            select(TI.dag_id, *_task_columns()).join(DagRun, (TI.dag_id == DagRun.dag_id) & (TI.run_id == DagRun.run_id)).where(DagRun.id.in_(newest))
        )
        for dag_id, *columns in rows:
            tasks.setdefault(dag_id, []).append(_task_row(*columns))
        usage = {
            run_key: XComModel.deserialize_value(xcom)
            for run_key, xcom in session.execute(
                select(XComModel.dag_run_id, XComModel).where(XComModel.dag_run_id.in_(newest), XComModel.task_id == "publish", XComModel.key == "usage")
            ).all()
        }
    return {dag_id: orchestration_overview.LatestRun(run_id, str(state), tuple(tasks.get(dag_id, ())), usage.get(key)) for key, dag_id, run_id, state in runs}


def _task_columns() -> tuple[Any, ...]:
    from airflow.models.taskinstance import TaskInstance as TI

    return (TI.task_id, TI.state, TI.try_number, TI.map_index, TI.start_date, TI.end_date)


def _task_row(task_id: str, state: Any, try_number: int, map_index: int, started: Any, ended: Any) -> TaskRow:
    return TaskRow(task_id, str(state) if state else None, int(try_number or 0), int(map_index), started, ended)


def run_details(dag_id: str, run_id: str) -> tuple[RunInfo, list[TaskRow], dict[str, Any]] | None:
    """A run, its task instances and its tasks' results (XCom return values), or None."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        found = session.execute(select(DagRun.state, DagRun.start_date, DagRun.end_date).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).first()
        if found is None:
            return None
        tasks = [_task_row(*row) for row in session.execute(select(*_task_columns()).where(TI.dag_id == dag_id, TI.run_id == run_id))]
        values: dict[str, list[tuple[int, Any]]] = {}
        for xcom in session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id, key="return_value")):
            values.setdefault(xcom.task_id, []).append((xcom.map_index, XComModel.deserialize_value(xcom)))
    state, started, ended = found
    results = {task: ([v for _, v in sorted(pairs)] if any(i >= 0 for i, _ in pairs) else pairs[0][1]) for task, pairs in values.items()}
    return RunInfo(dag_id, run_id, str(state), started, ended), tasks, results


def _overview() -> tuple[list[orchestration_overview.Row], orchestration_source.Snapshot]:
    snapshot = orchestration_source.load()
    ids = [dag_id_for(o.namespace, o.name) for o in snapshot.valid]
    return orchestration_overview.rows(snapshot, latest_runs(ids)), snapshot


def _run_page(dag_id: str, run_id: str) -> str | None:
    snapshot = orchestration_source.load()
    orchestration = next((o for o in snapshot.valid if dag_id_for(o.namespace, o.name) == dag_id), None)
    details = run_details(dag_id, run_id) if orchestration is not None else None
    if orchestration is None or details is None:
        return None
    info, tasks, values = details
    pipeline = plan(orchestration)
    # a step under review shows the agent's own result until the review has decided
    results = {step.task_id: step_result(values.get(step.results_task_id, values.get(step.task_id))) for step in pipeline.steps}
    view = run_view(pipeline, info, tasks, results)
    view.outputs = [str(location) for location in values.get("publish") or ()]
    return render_run(view)


@app.get("/", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    found, snapshot = await asyncio.to_thread(_overview)  # a cluster listing and a query: off the event loop
    return HTMLResponse(orchestration_overview.render_html(found, snapshot.source, snapshot.stale))


@app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
async def run_page(dag_id: str, run_id: str) -> HTMLResponse:
    html = await asyncio.to_thread(_run_page, dag_id, run_id)
    if html is None:
        raise HTTPException(404, f"no run {run_id!r} of a TaskOrchestration's DAG {dag_id!r}")
    return HTMLResponse(html)


@app.get("/orchestrations")
async def orchestrations() -> JSONResponse:
    found, snapshot = await asyncio.to_thread(_overview)
    return JSONResponse({"source": snapshot.source, "stale": snapshot.stale, "orchestrations": [r.to_json() for r in found]})
