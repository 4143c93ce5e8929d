"""The generator: one Airflow DAG per TaskOrchestration, built from its pipeline plan.

Each step is an A2AAgentOperator; then `publish` writes the results, and with failureAction
rollback, `rollback` removes them when a step failed. Invalid resources become a one-task
DAG under the same dag_id that fails with the validation errors (tagged `invalid`, errors in
its docs), so the resource is visible by name in the UI while every other DAG loads.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param
from airflow.sdk.exceptions import AirflowException

from aistack import orchestration_source
from aistack.orchestration_source import InvalidOrchestration, Snapshot
from aistack.pipeline_plan import PipelinePlan, StepPlan, dag_id_for, plan
from aistack.resources import TaskOrchestration
from aistack.resources.orchestration import FailureAction
from operators.pipeline_output import PublishResultsOperator, RollbackResultsOperator
from operators.pipeline_step import PipelineStepOperator, reporter

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEFAULT_INSTRUCTION = "Work on the inputs below."


INDEX_DAG_ID = "aistack_task_orchestrations"


def parse(only: str | None = None) -> dict[str, DAG]:
    """What the DAG file defines: the TaskOrchestrations loaded and built, with `only` as in `generate`."""
    with collector_paused():
        return generate(orchestration_source.load(only=only), only=only)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: loading and building pipelines allocates millions of
    objects that all stay alive, so its collections (ever longer as they grow) find nothing and
    cost a third of a parse of 1,000 pipelines. Nothing is lost: it runs again afterwards (and
    then looks at the new objects once, about a sixth of the time saved)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def generate(snapshot: Snapshot, only: str | None = None) -> dict[str, DAG]:
    """Every pipeline's DAG, plus an index DAG so the file always defines one (Airflow only
    accepts parse requests for files that do, and the watcher asks for one after each apply).
    With `only` (a dag_id), just that DAG, when it is one of the pipelines."""
    wanted = {dag_id_for(o.namespace, o.name) for o in snapshot.valid} | {dag_id_for(i.namespace, i.name) for i in snapshot.invalid}
    if only is not None and only in wanted:
        snapshot = Snapshot(
            valid=[o for o in snapshot.valid if dag_id_for(o.namespace, o.name) == only],
            invalid=[i for i in snapshot.invalid if dag_id_for(i.namespace, i.name) == only],
            source=snapshot.source,
            stale=snapshot.stale,
        )
        dags = {}
    else:
        dags = {INDEX_DAG_ID: index_dag(snapshot)}
    for orchestration in snapshot.valid:
        dag = build_dag(orchestration)
        dags[dag.dag_id] = dag
    for invalid in snapshot.invalid:
        dag = invalid_dag(invalid)
        dags.setdefault(dag.dag_id, dag)
    return dags


def index_dag(snapshot: Snapshot) -> DAG:
    lines = [f"# TaskOrchestrations ({snapshot.source})", ""]
    if snapshot.stale:
        lines += ["**The cluster could not be reached: these are from the last good listing.**", ""]
    lines += [f"- `{o.namespace}/{o.name}`: DAG `{dag_id_for(o.namespace, o.name)}`" for o in snapshot.valid]
    lines += [f"- `{i.namespace}/{i.name}`: **invalid** ({len(i.errors)} errors)" for i in snapshot.invalid]
    return DAG(INDEX_DAG_ID, schedule=None, start_date=START, tags=["aistack"], doc_md="\n".join(lines))


def build_dag(orchestration: TaskOrchestration) -> DAG:
    p = plan(orchestration)
    dag = DAG(
        p.dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        tags=list(p.tags),
        doc_md=p.doc_md,
        is_paused_upon_creation=False,  # a submitted resource runs at once
        params={
            "input": Param(p.input_text, type="string", title="Input", description="The text the entry steps receive."),
            "generation": Param(orchestration.metadata.generation or 0, type="integer",
                                description="The resource generation this DAG was built from."),
        },
        on_failure_callback=_aborted(p) if p.failure_action is FailureAction.ABORT else None,
    )
    with dag:
        tasks = {step.task_id: _step_task(p, step) for step in p.steps}
        for step in p.steps:
            for upstream in step.upstream:
                tasks[upstream] >> tasks[step.task_id]
        publish = PublishResultsOperator(
            task_id="publish", plan=p, owner=_owner(p), trigger_rule="all_success" if p.failure_action is FailureAction.ABORT else "all_done"
        )
        list(tasks.values()) >> publish
        if p.failure_action is FailureAction.ROLLBACK:
            rollback = RollbackResultsOperator(task_id="rollback", plan=p, owner=_owner(p), trigger_rule="all_done")
            [*tasks.values(), publish] >> rollback
    return dag


def _owner(p: PipelinePlan) -> str:
    """The resource a task belongs to, shown as its owner in the UI (set per task: default_args are
    deep-copied into every task, which dominated parse time for large numbers of pipelines)."""
    return f"{p.namespace}/{p.name}"


def _aborted(p: PipelinePlan) -> Any:
    """With abort, publish never runs after a failure: the DAG's failure callback reports the end."""

    def callback(context: Any) -> None:
        reporter(p, context).finished("Failed", 0, f"run aborted: {context.get('reason') or 'a step failed'}")

    return callback


def _step_task(p: PipelinePlan, step: StepPlan) -> PipelineStepOperator:
    return PipelineStepOperator.for_step(
        p,
        task_id=step.task_id,
        owner=_owner(p),
        agent=step.agent_ref,
        agent_namespace=p.namespace,
        text=step.prompt or (None if step.include_input else DEFAULT_INSTRUCTION),  # the input needs no preamble
        input_from=[(ref.task_ref, ref.artifact_name) for ref in step.inputs],
        upstream_results=list(step.upstream) if step.takes_upstream_results else [],
        artifacts=[
            {"name": a.name, "mediaType": a.type.value, **({"schema": a.schema_} if a.schema_ else {})} for a in step.artifacts
        ],
        streaming=p.streaming,
        enforce_verdict=step.enforce_verdict,
        retries=step.retries,
        retry_delay=step.retry_delay,
        retry_exponential_backoff=2.0,
        max_retry_delay=step.max_retry_delay,
        execution_timeout=step.execution_timeout,
        trigger_rule=step.trigger_rule,
    )


def invalid_dag(invalid: InvalidOrchestration) -> DAG:
    errors = "\n".join(f"- `{error}`" for error in invalid.errors)
    message = f"TaskOrchestration {invalid.namespace}/{invalid.name} ({invalid.where}) is invalid:\n{errors}"
    dag = DAG(dag_id_for(invalid.namespace, invalid.name), schedule=None, start_date=START, tags=["aistack", "invalid"], doc_md=message)

    def fail(**_: Any) -> None:
        raise AirflowException(message)

    with dag:
        PythonOperator(task_id="invalid", python_callable=fail)
    return dag
