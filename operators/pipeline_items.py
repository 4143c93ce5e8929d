"""A forEach step's two tasks: the list of its items, then one mapped task instance per item.

The list is made when the run reaches it (aistack.pipelines.items), so the DAG holds one mapped
task whatever the number of items; Airflow's dynamic task mapping runs the items, at most
`forEach.maxParallel` at a time, and downstream steps get their results gathered in item order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowTaskTimeout

from aistack import settings
from aistack.documents.cleaning import DocumentError, clean_document
from aistack.documents.storage import LocalStore, S3Store, Store
from aistack.pipelines import items as step_items
from aistack.pipelines.plan import PipelinePlan, StepPlan
from aistack.pipelines.status import RunReporter
from aistack.resources.orchestration import MAX_RUN_INPUT, ItemFailure, ItemsFromStorage, StorageType
from aistack_airflow.operators.a2a import pulled_result
from aistack_airflow.operators.pipeline_step import PipelineStepOperator, plan_of


def items_store(plan: PipelinePlan, source: ItemsFromStorage, aws_conn_id: str) -> Store:
    """Where fromStorage lists: the S3 prefix through the Amazon provider's S3Hook, or the folder
    `<input dir>/<namespace>/<prefix>` (a pipeline never lists another namespace's folder); in a
    local run, the folder it names instead (settings.local_items_dir)."""
    local = settings.local_items_dir()
    if local is not None:
        return ConfinedStore(local, within=local)
    if source.type is StorageType.S3:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        assert source.bucket is not None
        return S3Store(S3Hook(aws_conn_id=aws_conn_id).get_conn(), source.bucket, source.prefix.rstrip("/"))
    root = settings.input_dir() / plan.namespace
    return ConfinedStore(root / source.prefix if source.prefix else root, within=root)


class ConfinedStore(LocalStore):
    """A folder whose objects are read only when they resolve inside `within`: a symbolic link
    to a file elsewhere is refused, not followed."""

    def __init__(self, root: Any, within: Any) -> None:
        super().__init__(root)
        self.within = within

    def read(self, key: str) -> bytes:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.within.resolve()):
            raise DocumentError(f"{key!r} resolves outside the pipeline's input folder {self.within}")
        return super().read(key)


MAX_DOCUMENT_BYTES = 4 * MAX_RUN_INPUT
"""The largest document read as items (cleaning shrinks HTML; a chunked one may hold many items)."""


def document_text(store: Store, item: Mapping[str, Any], chunked: bool) -> str:
    """A document item's cleaned text (HTML and Markdown become text). DocumentError when it is
    unreadable or empty, larger than MAX_DOCUMENT_BYTES (judged by its listed size before it is
    read), or, unchunked, longer than one run's input."""
    key, size = item["key"], int(item.get("size") or 0)
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{size:,} bytes; a document may have at most {MAX_DOCUMENT_BYTES:,}: split it")
    text = clean_document(key, store.read(key)[: MAX_DOCUMENT_BYTES + 1])
    if not chunked and len(text) > MAX_RUN_INPUT:
        raise DocumentError(f"{len(text):,} characters of text; one item may have at most {MAX_RUN_INPUT:,}: set forEach.fromStorage.chunkTokens")
    return text


class StepItemsOperator(BaseOperator):
    """Lists a forEach step's items (its XCom is the list the mapped step expands over)."""

    template_fields = ()
    ui_color = "#f3ecfb"

    def __init__(self, *, step: str, aws_conn_id: str = "aws_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step, self.aws_conn_id = step, aws_conn_id

    def execute(self, context: Any) -> list[dict[str, Any]]:
        plan = plan_of(self.dag)
        step = plan.step(self.step)
        try:
            listed = self._items(plan, step, context)
        except step_items.ItemsError as exc:
            RunReporter.for_run(plan, context["run_id"]).step(self.step, "Failed", message=str(exc))
            raise AirflowException(str(exc)) from None
        RunReporter.for_run(plan, context["run_id"]).step(self.step, "Running", items=len(listed))
        self.log.info("%d items for step %s%s", len(listed), self.step, ": " + ", ".join(i["label"] for i in listed[:20]) if listed else "")
        return listed

    def _items(self, plan: PipelinePlan, step: StepPlan, context: Any) -> list[dict[str, Any]]:
        for_each = step.for_each
        assert for_each is not None
        if for_each.from_input is not None:
            text = str((context.get("params") or {}).get("input", plan.input_text))
            return step_items.numbered(step_items.split_input(text, for_each.from_input), for_each)
        if for_each.from_artifact is not None:
            ref = for_each.from_artifact
            result = pulled_result(context["ti"], plan.step(ref.task_ref).results_task_id)
            return step_items.numbered(step_items.artifact_items(result, ref.task_ref, ref.artifact_name, ref.path), for_each)
        source = for_each.from_storage
        assert source is not None
        store = items_store(plan, source, self.aws_conn_id)
        documents, ignored = step_items.listing_items(store.list(), source.window, _scheduled_interval(context))
        for file in ignored:
            self.log.info("not an item: %s (%s)", file["key"], file["reason"])
        step_items.bounded(documents, for_each)  # before reading any of them
        if source.chunk_tokens:
            documents = step_items.chunked(documents, lambda document: document_text(store, document, chunked=True), source.chunk_tokens)
        return step_items.bounded(documents, for_each)


def _scheduled_interval(context: Any) -> tuple[Any, Any] | None:
    """The data interval of a scheduled run. A manual or triggered run (a submission, the UI, the
    API) is a request to process what is there, so it has none and takes every object; the
    step's cache makes that cheap for objects already done."""
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    if getattr(run_type, "value", run_type) != "scheduled":
        return None
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    return (start, end) if start is not None and end is not None and start < end else None


class ItemStepOperator(PipelineStepOperator):
    """One item of a forEach step (a mapped task instance): the step's message with the item.

    Items from the run's input replace that input; items from an artifact or a storage listing
    come with it when the step includes the input. With onItemFailure continue, an item whose
    last attempt failed returns a failed result instead of failing, so the other items' results
    go on downstream and the failure is reported on its node and in the gathered results.
    """

    def __init__(self, *, item: Mapping[str, Any] | None = None, aws_conn_id: str = "aws_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.item = dict(item or {})
        self.aws_conn_id = aws_conn_id

    @property
    def item_ref(self) -> dict[str, Any]:
        return {"index": self.item.get("index", 0), "label": self.item.get("label", "")}

    def _reporter(self, context: Any) -> RunReporter:
        return super()._reporter(context).for_item(self.item_ref["index"], self.item_ref["label"])

    def _own_inputs(self, context: Any) -> list[dict[str, Any]]:
        for_each = self.step_plan.for_each
        assert for_each is not None
        own = super()._own_inputs(context) if for_each.from_input is None else []
        return [*own, self._item_part(for_each.from_storage)]

    def _item_part(self, source: ItemsFromStorage | None) -> dict[str, Any]:
        if source is None:
            return step_items.item_part(self.item)
        key = self.item["key"]
        try:
            text = document_text(items_store(self.plan, source, self.aws_conn_id), self.item, chunked=bool(source.chunk_tokens))
        except DocumentError as exc:
            raise AirflowException(f"{key}: {exc}") from None
        if source.chunk_tokens:
            text = step_items.chunk_of(text, self.item, source.chunk_tokens)
        return step_items.item_part(self.item, text=text)

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            return {**super().execute(context), "item": self.item_ref}
        except (Exception, AirflowTaskTimeout) as exc:
            if self.step_plan.for_each is None or self.step_plan.for_each.on_item_failure is not ItemFailure.CONTINUE:
                raise
            if context["ti"].try_number <= self.retries:
                raise  # retries first; only the last attempt's failure is let through
            self.log.warning("item %s (%s) failed; the step continues (onItemFailure continue): %s", self.item_ref["index"], self.item_ref["label"], exc)
            return {"state": "TASK_STATE_FAILED", "message": str(exc)[:1000], "artifacts": [], "item": self.item_ref}
