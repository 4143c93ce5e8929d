"""The generator: one Airflow DAG per TaskOrchestration, built from its pipeline plan.

Each step is an A2AAgentOperator; then `publish` writes the results, and with failureAction
rollback, `rollback` removes them when a step failed. Invalid resources become a one-task
DAG under the same dag_id that fails with the validation errors (tagged `invalid`, errors in
its docs), so the resource is visible by name in the UI while every other DAG loads.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param
from airflow.sdk.exceptions import AirflowException

from aistack.pipelines import source as orchestration_source
from aistack.pipelines.plan import PipelinePlan, StepPlan, dag_id_for, plan, published_asset
from aistack.pipelines.source import InvalidOrchestration, Snapshot
from aistack.pipelines.status import RunReporter
from aistack.resources import FieldError, TaskOrchestration
from aistack.resources.orchestration import MAX_RUN_INPUT, FailureAction
from aistack_airflow.dag_cache import DagCache
from aistack_airflow.operators.pipeline_items import ItemStepOperator, StepItemsOperator
from aistack_airflow.operators.pipeline_output import PublishResultsOperator, RollbackResultsOperator
from aistack_airflow.operators.pipeline_review import ReviewOperator, editable_artifacts
from aistack_airflow.operators.pipeline_step import PipelineStepOperator, attach_plan

log = logging.getLogger(__name__)

START = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_INSTRUCTION = "Work on the inputs below."


INDEX_DAG_ID = "aistack_task_orchestrations"


def parse(only: str | None = None) -> dict[str, DAG]:
    """What the DAG file defines: the TaskOrchestrations loaded and built, with `only` as in `generate`.

    A full parse keeps what it made out of the collector's sight (see collector_paused)."""
    with collector_paused(keep=only is None):
        return generate(orchestration_source.load(only=only), only=only)


_kept = False  # whether an earlier parse in this process froze what it made


@contextmanager
def collector_paused(keep: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector: loading and building pipelines allocates millions of
    objects that all stay alive, so its collections (ever longer as they grow) find nothing and
    cost a third of a parse of 1,000 pipelines. Nothing is lost: it runs again afterwards.

    With `keep`, what was made is moved to the collector's permanent generation (gc.freeze) before
    it runs again. Those objects are the DAGs, alive until the process ends (the DAG processor
    parses each file in a process of its own), and otherwise each later collection walks them
    all again: the first one, those during Airflow's serialization of the DAGs and those at its
    exit took 1.5 s of the 5.8 s of a DAG processor's process for a warm parse of 1,000 pipelines
    (bench/generator_parse.py). A process that
    parses again (a test, a benchmark) unfreezes and collects first, so the DAGs it no longer
    holds can go."""
    global _kept
    was_enabled = gc.isenabled()
    if keep and was_enabled and _kept:
        gc.unfreeze()
        gc.collect()
        _kept = False
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if keep:
                gc.freeze()
                _kept = True
            gc.enable()


def generate(snapshot: Snapshot, only: str | None = None) -> dict[str, DAG]:
    """Every pipeline's DAG, plus an index DAG so the file always defines one (Airflow only
    accepts parse requests for files that do, and the watcher asks for one after each apply).
    With `only` (a dag_id), just that DAG, when it is one of the pipelines.

    Each resource is built on its own: one that cannot be built, or whose dag_id another
    resource also claims, becomes an invalid DAG saying why, and every other DAG still loads.
    A full parse restores the DAGs of unchanged resources from the last one (see dag_cache); a
    parse for one DAG (a task's) just builds it."""
    claims = _claims(snapshot)
    cache = None
    if only is not None and only in claims:
        claims = {only: claims[only]}
        dags = {}
    else:
        dags = {INDEX_DAG_ID: index_dag(snapshot)}
        cache = DagCache(snapshot.source)
    for dag_id, claimants in claims.items():
        dag = _dag_for(claimants, cache)
        if dag is not None:
            dags[dag_id] = dag
    if cache is not None:
        cache.save()
    return dags


Claimant = TaskOrchestration | InvalidOrchestration


def _claims(snapshot: Snapshot) -> dict[str, list[Claimant]]:
    """The resources behind each dag_id. The same resource listed twice with the same spec (a
    folder may hold a copy, as after applying it twice) is one claim."""
    claims: dict[str, list[Claimant]] = {}
    for orchestration in snapshot.valid:
        same = claims.setdefault(dag_id_for(orchestration.namespace, orchestration.name), [])
        if not any(isinstance(c, TaskOrchestration) and c.spec == orchestration.spec for c in same):
            same.append(orchestration)
    for invalid in snapshot.invalid:
        claims.setdefault(dag_id_for(invalid.namespace, invalid.name), []).append(invalid)
    return claims


def _dag_for(claimants: list[Claimant], cache: DagCache | None = None) -> DAG | None:
    """The DAG of one dag_id's claimants: the pipeline, or an invalid DAG with every reason."""
    first = claimants[0]
    if len(claimants) > 1:
        problem = _collision(claimants)
    elif isinstance(first, TaskOrchestration):
        try:
            return cache.dag(first, build_dag) if cache is not None else build_dag(first)
        except Exception as exc:  # a bug or a limit of Airflow's: this resource's DAG says so, the rest load
            log.exception("TaskOrchestration %s/%s: cannot build its DAG", first.namespace, first.name)
            problem = InvalidOrchestration(first.namespace, first.name, "generator", [FieldError("", f"its DAG could not be built: {type(exc).__name__}: {exc}")])
    else:
        problem = first
    try:
        return invalid_dag(problem)
    except Exception:  # never expected: the resource is left out and the log says why
        log.exception("TaskOrchestration %r/%r: cannot build its invalid DAG", problem.namespace, problem.name)
        return None


def _collision(claimants: list[Claimant]) -> InvalidOrchestration:
    """Several resources for one dag_id (conflicting copies in a folder): none of them wins silently."""
    where = [c.where if isinstance(c, InvalidOrchestration) else "a valid definition" for c in claimants]
    errors = [FieldError("metadata.name", f"{len(claimants)} resources map to this DAG ({'; '.join(where)}): keep one definition")]
    for claimant in claimants:
        if isinstance(claimant, InvalidOrchestration):
            errors += [FieldError(e.path, f"({claimant.where}) {e.message}") for e in claimant.errors]
    first = claimants[0]
    return InvalidOrchestration(first.namespace, first.name, "; ".join(where), errors)


def index_dag(snapshot: Snapshot) -> DAG:
    lines = [f"# TaskOrchestrations ({snapshot.source})", ""]
    if snapshot.stale:
        lines += ["**The cluster could not be reached: these are from the last good listing.**", ""]
    lines += [f"- {_code(f'{o.namespace}/{o.name}')}: DAG `{dag_id_for(o.namespace, o.name)}`" for o in snapshot.valid]
    lines += [f"- {_code(f'{i.namespace}/{i.name}')}: **invalid** ({len(i.errors)} errors)" for i in snapshot.invalid]
    return DAG(INDEX_DAG_ID, schedule=None, start_date=START, tags=["aistack"], doc_md="\n".join(lines))


def build_dag(orchestration: TaskOrchestration) -> DAG:
    p = plan(orchestration)
    dag = DAG(
        p.dag_id,
        schedule=schedule_of(p),
        start_date=_start_date(orchestration),
        catchup=bool(p.schedule and p.schedule.catchup),
        tags=list(p.tags),
        doc_md=p.doc_md,
        is_paused_upon_creation=False,  # a submitted resource runs at once
        on_failure_callback=_Aborted(p) if p.failure_action is FailureAction.ABORT else None,
    )
    attach_plan(dag, p)
    with dag:
        first: dict[str, Any] = {}
        last: dict[str, Any] = {}
        for step in p.steps:
            first[step.task_id], last[step.task_id] = _step_tasks(p, step)
        for step in p.steps:
            for upstream in step.upstream:
                last[upstream] >> first[step.task_id]
        publish = PublishResultsOperator(
            task_id="publish",
            plan=p,
            owner=_owner(p),
            trigger_rule="all_success" if p.failure_action is FailureAction.ABORT else "all_done",
            outlets=[Asset(published_asset(p.namespace, p.name))],
        )
        list(last.values()) >> publish
        if p.failure_action is FailureAction.ROLLBACK:
            rollback = RollbackResultsOperator(task_id="rollback", plan=p, owner=_owner(p), trigger_rule="all_done")
            [*last.values(), publish] >> rollback
    dag.params = _params(p, orchestration)  # after the tasks: see _params
    return dag


def _params(p: PipelinePlan, orchestration: TaskOrchestration) -> dict[str, Param]:
    """The DAG's params: the run's input (the trigger form) and the resource's generation.

    Given to the DAG once its tasks exist. Airflow deep-copies a DAG's params into every task it
    builds, once per decorated __init__ of the operator's classes (22,000 copies for 1,000
    pipelines of 10 steps, about a fifth of a parse); a task reads them at run time from its DAG
    anyway (`process_params` merges the DAG's params, then the task's own, then the run's conf),
    so tasks built before the params carry only their own.
    """
    return {
        "input": Param(
            p.input_text,
            type="string",
            format="multiline",  # a text area in the trigger form: a document keeps its lines
            maxLength=MAX_RUN_INPUT,
            title="Input",
            description=_input_help(p),
        ),
        "generation": Param(
            orchestration.metadata.generation or 0,
            type="integer",
            title="Resource generation",
            section="Set by aistack",
            description="The version of the TaskOrchestration this DAG was built from, which the submission watcher checks; leave it as it is.",
        ),
    }


def _step_tasks(p: PipelinePlan, step: StepPlan) -> tuple[Any, Any]:
    """The step's tasks, first and last: [items ->] step [-> review]."""
    if step.for_each:
        items = StepItemsOperator(task_id=step.items_task_id, step=step.task_id, owner=_owner(p), trigger_rule=step.trigger_rule)
        task = _step_task(p, step, items)
        items >> task
        head = items
    else:
        task = head = _step_task(p, step)
    if step.review:
        review = _review_task(p, step)
        task >> review
        return head, review
    return head, task


def schedule_of(p: PipelinePlan) -> Any:
    """spec.schedule as Airflow's: a cron data-interval timetable (so each run knows the interval
    it covers, which forEach.fromStorage's window dataInterval reads), or assets, all of which
    must be updated for a run; no schedule: runs are triggered (by a submission, the UI or the API)."""
    if p.schedule is None:
        return None
    if p.schedule.cron is not None:
        return CronDataIntervalTimetable(p.schedule.cron, timezone="UTC")
    return [Asset(uri) for uri in p.schedule.assets or ()]


def _start_date(orchestration: TaskOrchestration) -> datetime:
    """Catchup starts at the resource's creation, not at aistack's epoch (a cluster knows it)."""
    created = orchestration.metadata.creation_timestamp
    return max(created, START) if created is not None else START


def _input_help(p: PipelinePlan) -> str:
    """The trigger form's hint for `input`: which steps read it, and where a document goes."""
    readers = [step.task_id for step in p.steps if step.include_input]
    who = f"Steps {', '.join(readers)} receive this text" if readers else "No step reads this text (every step sets includeInput: false)"
    return f"{who} as the run's input. The resource's own is shown: replace it, or add the document to work on below it (several lines are kept)."


def _owner(p: PipelinePlan) -> str:
    """The resource a task belongs to, shown as its owner in the UI (set per task: default_args are
    deep-copied into every task, which dominated parse time for large numbers of pipelines)."""
    return f"{p.namespace}/{p.name}"


class _Aborted:
    """With abort, publish never runs after a failure: the DAG's failure callback reports the end.
    An object rather than a closure, so that the DAG can be kept in the DAG cache (a pickle)."""

    def __init__(self, p: PipelinePlan) -> None:
        self.plan = p

    def __call__(self, context: Any) -> None:
        RunReporter.for_run(self.plan, context["run_id"]).finished("Failed", 0, f"run aborted: {context.get('reason') or 'a step failed'}")


def _step_task(p: PipelinePlan, step: StepPlan, items: StepItemsOperator | None = None) -> Any:
    """The step's A2A task; for a forEach step, one mapped task over the items task's list."""
    kwargs: dict[str, Any] = dict(
        task_id=step.task_id,
        owner=_owner(p),
        agent=step.agent_ref,
        agent_namespace=p.namespace,
        text=step.prompt or (None if step.include_input else DEFAULT_INSTRUCTION),  # the input needs no preamble
        input_from=[(p.step(ref.task_ref).results_task_id, ref.artifact_name) for ref in step.inputs],
        upstream_results=[p.step(u).results_task_id for u in step.upstream] if step.takes_upstream_results else [],
        artifacts=[{"name": a.name, "mediaType": a.type.value, **({"schema": a.schema_} if a.schema_ else {})} for a in step.artifacts],
        streaming=p.streaming,
        enforce_verdict=step.enforce_verdict,
        retries=step.retries,
        retry_delay=step.retry_delay,
        retry_exponential_backoff=2.0,
        max_retry_delay=step.max_retry_delay,
        execution_timeout=step.execution_timeout,
    )
    if items is None:
        return PipelineStepOperator(trigger_rule=step.trigger_rule, **kwargs)
    assert step.for_each is not None
    # Every item runs once its list exists: the step's condition was judged by the items task.
    return ItemStepOperator.partial(max_active_tis_per_dagrun=step.for_each.max_parallel, **kwargs).expand(item=items.output)


def invalid_dag(invalid: InvalidOrchestration) -> DAG:
    errors = "\n".join(f"- {_code(str(error), MAX_SHOWN_ERROR)}" for error in invalid.errors)
    message = f"TaskOrchestration {_code(f'{invalid.namespace}/{invalid.name}')} ({_code(invalid.where)}) is invalid:\n{errors}"
    dag = DAG(dag_id_for(invalid.namespace, invalid.name), schedule=None, start_date=START, tags=["aistack", "invalid"], doc_md=message)

    def fail(**_: Any) -> None:
        raise AirflowException(message)

    with dag:
        PythonOperator(task_id="invalid", python_callable=fail)
    return dag


MAX_SHOWN = 120
MAX_SHOWN_ERROR = 600


def _code(text: str, limit: int = MAX_SHOWN) -> str:
    """Text from a resource as one Markdown code span: an invalid resource's name or error may hold
    backticks, newlines or markup, and a huge one would bloat every parse's DAG docs."""
    flat = text.replace("`", "'").replace("\r", "\\r").replace("\n", "\\n")
    return f"`{flat if len(flat) <= limit else flat[:limit] + '...'}`"


def _review_task(p: PipelinePlan, step: StepPlan) -> ReviewOperator:
    """The task where a person reviews the step's output (see operators/pipeline_review.py)."""
    assert step.review is not None and step.review_task_id is not None
    declared = [{"name": a.name, "mediaType": a.type.value} for a in step.artifacts] or [{"name": "output", "mediaType": "text/plain"}]
    return ReviewOperator(
        task_id=step.review_task_id,
        owner=_owner(p),
        step=step.task_id,
        review=step.review,
        editable=editable_artifacts(declared) if step.review.allow_edit else (),
    )
