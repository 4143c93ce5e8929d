"""What a run selects, where its outputs go, when a summary can be reused, and the run manifest.

Selection (`select_documents`): a run takes the documents modified in its window, half-open
`[since, until)` like Airflow's data intervals, so consecutive scheduled runs partition time and
every document modified once lands in exactly one run. Files of unsupported types are listed
as `ignored` with the reason; documents outside the window are not mentioned.

Idempotency key: (content SHA-256 of the document's bytes, model digest, recipe fingerprint).
The recipe is how a summary is made besides the model: chunk budget, overlap, tokenizer, and
the cleaning/prompt versions. The summary of a document is stored under

    summaries/<document key>/<sha256[:16]>-<digest[:12]>-<recipe fingerprint>.json   (+ .md)

so reruns and backfills find it whatever the run date, a changed document or model gets new
keys (old summaries stay, as history), and `is_current()` confirms a found record by its full
hashes before it is reused. The JSON is written after the markdown, so its presence means both
are complete; each object is written atomically by the store.

The run manifest (`manifests/<run id>.json`) lists every selected document with its content
hash and outcome (summarized, skipped as already summarized, or failed with the error), the
ignored files, the window, the model and its digest, and the recipe.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aistack.documents.cleaning import is_supported
from aistack.documents.model import short_digest
from aistack.documents.storage import DocumentRef

CLEANING_VERSION = 1  # bump when cleaning changes what the model reads
SUMMARY_PREFIX = "summaries"
MANIFEST_PREFIX = "manifests"

SUMMARIZED, SKIPPED, FAILED = "summarized", "skipped", "failed"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Recipe:
    max_chunk_tokens: int
    overlap_tokens: int
    tokenizer: str
    prompt_version: int
    cleaning_version: int = CLEANING_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "maxChunkTokens": self.max_chunk_tokens,
            "overlapTokens": self.overlap_tokens,
            "tokenizer": self.tokenizer,
            "promptVersion": self.prompt_version,
            "cleaningVersion": self.cleaning_version,
        }

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class OutputKeys:
    json: str
    markdown: str


def output_keys(document_key: str, sha256: str, digest: str, recipe: Recipe) -> OutputKeys:
    base = f"{SUMMARY_PREFIX}/{document_key}/{sha256[:16]}-{short_digest(digest)}-{recipe.fingerprint}"
    return OutputKeys(json=base + ".json", markdown=base + ".md")


def is_current(record: dict[str, Any] | None, sha256: str, digest: str, recipe: Recipe) -> bool:
    """Whether a stored summary record was made from these bytes, by this model, this way."""
    return (
        isinstance(record, dict)
        and record.get("contentSha256") == sha256
        and record.get("modelDigest") == digest
        and (record.get("recipe") or {}).get("fingerprint") == recipe.fingerprint
        and bool(record.get("summary"))
    )


def parse_record(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None  # damaged: summarize again, which replaces it
    return record if isinstance(record, dict) else None


# -- the run's window ----------------------------------------------------------------------


def parse_time(value: str | datetime | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} must be an ISO 8601 date or time, e.g. 2026-03-01T00:00:00+00:00; got {value!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """Modification times `since <= t < until`; None on either side leaves it open."""

    since: datetime | None
    until: datetime | None

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise ValueError(f"empty window: since {self.since.isoformat()} is not before until {self.until.isoformat()}")

    def contains(self, moment: datetime) -> bool:
        return (self.since is None or self.since <= moment) and (self.until is None or moment < self.until)

    def to_json(self) -> dict[str, str | None]:
        return {"since": self.since.isoformat() if self.since else None, "until": self.until.isoformat() if self.until else None}

    @classmethod
    def for_run(
        cls,
        interval_start: datetime | None,
        interval_end: datetime | None,
        *,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        all_documents: bool = False,
    ) -> Window:
        """The run's data interval, unless a manual run asks for another window or for everything."""
        if all_documents:
            return cls(None, None)
        if since is not None or until is not None:
            return cls(parse_time(since, "since"), parse_time(until, "until"))
        return cls(parse_time(interval_start, "data_interval_start"), parse_time(interval_end, "data_interval_end"))


def select_documents(refs: Iterable[DocumentRef], window: Window, exclude_prefix: str | None = None) -> tuple[list[DocumentRef], list[dict[str, str]]]:
    """The documents of the window, sorted by key, and the ignored files of the window with why."""
    selected: list[DocumentRef] = []
    ignored: list[dict[str, str]] = []
    for ref in refs:
        if exclude_prefix is not None and ref.key.startswith(exclude_prefix):
            continue  # our own outputs, when the output location is inside the source
        if not window.contains(ref.modified):
            continue
        if not is_supported(ref.key):
            ignored.append({"key": ref.key, "reason": "unsupported file type (only text, markdown and HTML documents)"})
            continue
        selected.append(ref)
    selected.sort(key=lambda r: r.key)
    ignored.sort(key=lambda item: item["key"])
    return selected, ignored


# -- records -------------------------------------------------------------------------------


def manifest_key(run_id: str) -> str:
    return f"{MANIFEST_PREFIX}/{re.sub(r'[^A-Za-z0-9._-]+', '_', run_id)}.json"


def build_manifest(
    *,
    dag_id: str,
    run_id: str,
    window: dict[str, Any],
    source: str,
    output: str,
    identity: dict[str, Any],
    recipe: dict[str, Any],
    documents: Sequence[dict[str, Any]],
    outcomes: dict[str, dict[str, Any]],
    failures: dict[str, dict[str, Any]],
    ignored: Sequence[dict[str, str]],
    created: datetime | None = None,
) -> dict[str, Any]:
    """The run manifest: one entry per selected document, in order, whatever happened to it.

    `outcomes` and `failures` are keyed by document key; a document with neither (its task never
    finished: killed, timed out, upstream failure) is recorded as failed with that reason.
    """
    entries = []
    for document in documents:
        key = document["key"]
        entry: dict[str, Any] = {"key": key, "uri": document["uri"], "modified": document["modified"], "size": document["size"]}
        if key in outcomes:
            outcome = outcomes[key]
            entry.update(
                {
                    "status": outcome["status"],
                    "contentSha256": outcome["contentSha256"],
                    "outputs": outcome["outputs"],
                }
            )
            for name in ("chunks", "modelCalls"):
                if name in outcome:
                    entry[name] = outcome[name]
        else:
            failure = failures.get(key, {})
            entry.update(
                {
                    "status": FAILED,
                    "contentSha256": failure.get("contentSha256"),
                    "error": failure.get("error") or "the document's task did not finish (see its log)",
                }
            )
        entries.append(entry)
    by_status = {status: [e["key"] for e in entries if e["status"] == status] for status in (SUMMARIZED, SKIPPED, FAILED)}
    return {
        "kind": "aistack.batch-summarization.manifest/v1",
        "dagId": dag_id,
        "runId": run_id,
        "createdAt": (created or datetime.now(UTC)).isoformat(),
        "window": window,
        "source": source,
        "output": output,
        "agent": {"name": identity["agent"], "namespace": identity["namespace"], "url": identity["agentUrl"]},
        "model": identity["model"],
        "modelDigest": identity["digest"],
        "modelDigestSource": identity["source"],
        "recipe": recipe,
        "counts": {"documents": len(entries), **{status: len(keys) for status, keys in by_status.items()}, "ignored": len(ignored)},
        "documents": entries,
        "summarized": by_status[SUMMARIZED],
        "skipped": by_status[SKIPPED],
        "failures": [{"key": e["key"], "error": e["error"]} for e in entries if e["status"] == FAILED],
        "ignored": list(ignored),
    }
