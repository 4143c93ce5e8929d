"""batch_summarization: summarize the documents that arrived in each interval, one mapped task per document.

Every run (daily by default: AISTACK_SUMMARIZATION_SCHEDULE) takes the documents modified in
its data interval, `[start, end)`, from a folder or an S3 prefix (AISTACK_SUMMARIZATION_SOURCE;
S3 through the amazon provider's S3Hook and AISTACK_SUMMARIZATION_AWS_CONN_ID), and for each:
reads and hashes it, skips it when a summary of the same bytes by the same model (digest) and
recipe exists, else cleans and chunks it and has the summarizer agent summarize the chunks,
then the chunk summaries (map-reduce); writes `<output>/summaries/<document>/<hash>-<digest>-<recipe>.md`
and `.json`, then the run manifest `<output>/manifests/<run id>.json` (documents, hashes, model
digest, outputs, skipped, failures). A bad document (undecodable, empty after cleaning) fails
its own mapped task only; the manifest records it and the final `report` task fails the run so
that it shows.

Tasks: `model_identity` (the agent's URL, model and digest, pinned for the run) and
`list_documents` -> `summarize` (mapped over the documents) -> `write_manifest` (runs whatever
happened to the documents) -> `report`.

Manual runs take params: `since`/`until` (ISO times) for another window, `all_documents` for
every document of the source (already summarized ones are skipped, so this is a cheap sweep
for late files whose modification time predates their arrival), `force` to summarize again,
`max_chunk_tokens` and `overlap_tokens`. Settings: aistack/documents/settings.py.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, TriggerRule, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from aistack.agents.directory import resolve_agent_url
from aistack.documents import settings as summarization_settings
from aistack.documents.manifest import Window, build_manifest, manifest_key, select_documents
from aistack.documents.model import ModelIdentity, resolve_identity
from aistack.documents.pipeline import ChunkBudget, DocumentFailed, process_document
from aistack.documents.storage import DocumentRef, Location, Store, open_store
from aistack.documents.summarize import AgentSummarizer

log = logging.getLogger(__name__)

CONFIG = summarization_settings.load()
SOURCE = Location.parse(CONFIG.source)
OUTPUT = Location.parse(CONFIG.output)


def _s3_client() -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=CONFIG.aws_conn_id).get_conn()


def _store(location: Location) -> Store:
    return open_store(location, _s3_client)


def _budget(params: dict[str, Any]) -> ChunkBudget:
    """The chunk budget of the run: its params (defaults from the settings)."""
    return ChunkBudget(
        max_chunk_tokens=int(params.get("max_chunk_tokens") or CONFIG.max_chunk_tokens),
        overlap_tokens=int(params["overlap_tokens"] if params.get("overlap_tokens") is not None else CONFIG.overlap_tokens),
    )


def _as_list(pulled: Any) -> list[Any]:
    """XComs pulled for a list of map indexes (None for a missing one), whatever their count."""
    if pulled is None:
        return []
    return list(pulled) if isinstance(pulled, (list, tuple)) else [pulled]


with DAG(
    "batch_summarization",
    schedule=CronDataIntervalTimetable(CONFIG.schedule, timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=CONFIG.catchup,
    max_active_runs=1,
    tags=["aistack", "documents"],
    doc_md=__doc__,
    params={
        "since": Param(
            None, type=["null", "string"], title="Since", description="Manual runs: documents modified at or after this ISO time (instead of the data interval)."
        ),
        "until": Param(None, type=["null", "string"], title="Until", description="Manual runs: documents modified before this ISO time."),
        "all_documents": Param(
            False, type="boolean", title="All documents", description="Every document of the source, whatever its time; summarized ones are skipped."
        ),
        "force": Param(False, type="boolean", title="Force", description="Summarize again even when a current summary exists."),
        "max_chunk_tokens": Param(
            CONFIG.max_chunk_tokens, type="integer", minimum=64, maximum=32768, title="Max chunk tokens", description="Token budget of a chunk (approximate count)."
        ),
        "overlap_tokens": Param(
            CONFIG.overlap_tokens,
            type="integer",
            minimum=0,
            maximum=16380,
            title="Overlap tokens",
            description="Tokens shared by consecutive chunks (under half the budget).",
        ),
    },
) as dag:

    @task
    def model_identity() -> dict[str, str]:
        """The summarizer agent's URL, its model and the model's digest, pinned for the whole run."""
        url = resolve_agent_url(CONFIG.agent, CONFIG.namespace)
        identity = resolve_identity(CONFIG.agent, CONFIG.namespace, url, CONFIG.ollama_host)
        log.info("summarizer %s/%s at %s: model %s, digest %s (%s)", identity.namespace, identity.agent, url, identity.model, identity.digest, identity.source)
        return identity.to_json()

    @task
    def list_documents(params=None, data_interval_start=None, data_interval_end=None, ti=None) -> list[dict[str, Any]]:
        """The documents modified in the run's window (the data interval unless params say otherwise);
        the ignored files and the window go to the XComs "ignored" and "window"."""
        params = params or {}
        _budget(params)  # a chunk budget that cannot work fails the run here, not every document
        window = Window.for_run(
            data_interval_start, data_interval_end, since=params.get("since"), until=params.get("until"), all_documents=bool(params.get("all_documents"))
        )
        selected, ignored = select_documents(_store(SOURCE).list(), window, exclude_prefix=SOURCE.relative_prefix(OUTPUT))
        log.info("%d documents in %s for %s (%d ignored)", len(selected), SOURCE, window.to_json(), len(ignored))
        ti.xcom_push(key="ignored", value=ignored)
        ti.xcom_push(key="window", value=window.to_json())
        return [ref.to_json() for ref in selected]

    @task(
        map_index_template="{{ document_key }}",
        retries=CONFIG.retries,
        retry_delay=timedelta(seconds=30),
        retry_exponential_backoff=2.0,
        max_active_tis_per_dagrun=CONFIG.parallelism,
    )
    def summarize(document: dict[str, Any], identity: dict[str, str]) -> dict[str, Any]:
        """Summarize one document (map-reduce over its chunks), unless a current summary exists."""
        context = get_current_context()
        context["document_key"] = document["key"]  # type: ignore[typeddict-unknown-key]  # names the map index
        ti, params = context["ti"], context["params"]
        model = ModelIdentity.from_json(identity)
        try:
            return process_document(
                DocumentRef.from_json(document),
                _store(SOURCE),
                _store(OUTPUT),
                model,
                _budget(params),
                lambda: AgentSummarizer(model.agent_url),
                run_id=context["run_id"],
                attempt=ti.try_number,
                force=bool(params.get("force")),
            )
        except DocumentFailed as exc:
            ti.xcom_push(key="failure", value=exc.to_json())
            if exc.permanent:
                raise AirflowFailException(str(exc)) from exc
            raise

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def write_manifest(documents: list[dict[str, Any]], ignored: list[dict[str, str]], window: dict[str, Any], identity: dict[str, str]) -> dict[str, Any]:
        """The run manifest, written whatever happened to the documents (failed ones included)."""
        context = get_current_context()
        ti = context["ti"]
        indexes = list(range(len(documents)))
        results = _as_list(ti.xcom_pull(task_ids="summarize", map_indexes=indexes)) if indexes else []
        outcomes = {r["key"]: r for r in results if r}
        missing = [i for i in indexes if documents[i]["key"] not in outcomes]
        pulled = _as_list(ti.xcom_pull(task_ids="summarize", key="failure", map_indexes=missing)) if missing else []
        failures = {f["key"]: f for f in pulled if f}
        recipe = _budget(context["params"]).recipe()
        manifest = build_manifest(
            dag_id=ti.dag_id,
            run_id=context["run_id"],
            window=window,
            source=str(SOURCE),
            output=str(OUTPUT),
            identity=identity,
            recipe={**recipe.to_json(), "fingerprint": recipe.fingerprint},
            documents=documents,
            outcomes=outcomes,
            failures=failures,
            ignored=ignored,
        )
        key = manifest_key(context["run_id"])
        uri = _store(OUTPUT).write(key, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode(), "application/json")
        log.info("manifest %s: %s", uri, manifest["counts"])
        return {"uri": uri, "counts": manifest["counts"], "failures": manifest["failures"]}

    @task
    def report(manifest: dict[str, Any]) -> None:
        """Fail the run when a document failed (the manifest says which and why)."""
        if manifest["failures"]:
            lines = "; ".join(f"{f['key']}: {f['error']}" for f in manifest["failures"])
            raise AirflowFailException(f"{len(manifest['failures'])} document(s) failed (see {manifest['uri']}): {lines}")
        log.info("all documents done: %s", manifest["counts"])

    identity = model_identity()
    listing = list_documents()
    summaries = summarize.partial(identity=identity).expand(document=listing)
    manifest = write_manifest(listing, listing["ignored"], listing["window"], identity)
    summaries >> manifest
    report(manifest)
