"""One document, start to finish: read, hash, skip if already summarized, clean, chunk,
map-reduce through the summarizer, write the markdown and JSON summaries.

`process_document()` is what each mapped task of the batch_summarization DAG runs; it has no
Airflow in it. It connects to the summarizer only when there is something to summarize (a
skipped document costs one read and one lookup). Any failure is raised as `DocumentFailed`,
which carries the document key, its content hash when known, and whether retrying can help
(`permanent` for bad content; not for an unreachable agent).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aistack.documents.chunking import chunk_text, validate_budget
from aistack.documents.cleaning import DocumentError, clean_document
from aistack.documents.manifest import SKIPPED, SUMMARIZED, Recipe, content_hash, is_current, output_keys, parse_record
from aistack.documents.model import ModelIdentity
from aistack.documents.storage import DocumentRef, Store
from aistack.documents.summarize import PROMPT_VERSION, MapReduceResult, Summarizer, message_id, summarize_chunks
from aistack.documents.tokens import DEFAULT_TOKENIZER, Tokenizer

log = logging.getLogger(__name__)

SummarizerFactory = Callable[[], Summarizer]


class DocumentFailed(Exception):
    def __init__(self, key: str, error: str, *, content_sha256: str | None = None, permanent: bool = False):
        super().__init__(f"{key}: {error}")
        self.key, self.error, self.content_sha256, self.permanent = key, error, content_sha256, permanent

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "error": self.error, "contentSha256": self.content_sha256, "permanent": self.permanent}


@dataclass(frozen=True)
class ChunkBudget:
    """The chunk budget and overlap: the knobs of the recipe (see manifest.Recipe)."""

    max_chunk_tokens: int = 1024
    overlap_tokens: int = 96

    def __post_init__(self) -> None:
        validate_budget(self.max_chunk_tokens, self.overlap_tokens)

    def recipe(self, tokenizer: Tokenizer = DEFAULT_TOKENIZER) -> Recipe:
        return Recipe(self.max_chunk_tokens, self.overlap_tokens, tokenizer.name, PROMPT_VERSION)


def render_markdown(record: dict[str, Any]) -> str:
    lines = [f"# Summary: {record['document']}", "", record["summary"].strip(), ""]
    if len(record["parts"]) > 1:
        lines += ["## Parts", ""]
        for number, part in enumerate(record["parts"], 1):
            lines += [f"### Part {number}", "", part.strip(), ""]
    lines += [
        "---",
        "",
        f"- Source: `{record['source']}`",
        f"- Content SHA-256: `{record['contentSha256']}`",
        f"- Model: `{record['model']}` (digest `{record['modelDigest']}`, via agent `{record['agent']}`)",
        f"- Chunks: {record['chunks']} ({record['recipe']['maxChunkTokens']} tokens at most, "
        f"{record['recipe']['overlapTokens']} overlapping); model calls: {record['modelCalls']}",
        f"- Written: {record['createdAt']} by run `{record['runId']}`",
        "",
    ]
    return "\n".join(lines)


def summary_record(
    ref: DocumentRef,
    sha256: str,
    identity: ModelIdentity,
    recipe: Recipe,
    cleaned_tokens: int,
    chunks: int,
    result: MapReduceResult,
    run_id: str,
) -> dict[str, Any]:
    return {
        "kind": "aistack.batch-summarization.summary/v1",
        "document": ref.key,
        "source": ref.uri,
        "modified": ref.modified.isoformat(),
        "contentSha256": sha256,
        "model": identity.model,
        "modelDigest": identity.digest,
        "modelDigestSource": identity.source,
        "agent": identity.agent,
        "recipe": {**recipe.to_json(), "fingerprint": recipe.fingerprint},
        "tokens": cleaned_tokens,
        "chunks": chunks,
        "modelCalls": result.calls,
        "reduceLevels": result.levels,
        "summary": result.summary,
        "parts": result.parts,
        "createdAt": datetime.now(UTC).isoformat(),
        "runId": run_id,
    }


def process_document(
    ref: DocumentRef,
    source: Store,
    output: Store,
    identity: ModelIdentity,
    budget: ChunkBudget,
    summarizer: SummarizerFactory,
    *,
    run_id: str = "",
    attempt: int = 1,
    force: bool = False,
    tokenizer: Tokenizer = DEFAULT_TOKENIZER,
) -> dict[str, Any]:
    """Summarize one document unless it already is; returns its outcome for the manifest."""
    sha256: str | None = None
    try:
        data = source.read(ref.key)
        sha256 = content_hash(data)
        recipe = budget.recipe(tokenizer)
        keys = output_keys(ref.key, sha256, identity.digest, recipe)
        outputs = {"json": output.uri_of(keys.json), "markdown": output.uri_of(keys.markdown)}
        if not force and is_current(parse_record(output.read_optional(keys.json)), sha256, identity.digest, recipe):
            log.info("%s is already summarized by %s (%s): skipped", ref.key, identity.model, outputs["json"])
            return {"key": ref.key, "status": SKIPPED, "contentSha256": sha256, "outputs": outputs}
        cleaned = clean_document(ref.key, data)
        chunks = chunk_text(cleaned, budget.max_chunk_tokens, budget.overlap_tokens, tokenizer)
        tokens = tokenizer.count(cleaned)
        log.info("%s: %d tokens (approx.) in %d chunks", ref.key, tokens, len(chunks))
        prefix = f"{sha256}/{identity.digest}/{recipe.fingerprint}/{run_id}/{attempt}"
        summarize = summarizer()
        try:
            result = summarize_chunks(ref.key, chunks, summarize, budget=budget.max_chunk_tokens, message_prefix=message_id(prefix), tokenizer=tokenizer)
        finally:
            close = getattr(summarize, "close", None)
            if close is not None:
                close()
        record = summary_record(ref, sha256, identity, recipe, tokens, len(chunks), result, run_id)
        output.write(keys.markdown, render_markdown(record).encode(), "text/markdown; charset=utf-8")
        output.write(keys.json, (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode(), "application/json")
        log.info("%s summarized in %d model calls: %s", ref.key, result.calls, outputs["json"])
        return {"key": ref.key, "status": SUMMARIZED, "contentSha256": sha256, "outputs": outputs, "chunks": len(chunks), "modelCalls": result.calls}
    except DocumentFailed:
        raise
    except DocumentError as exc:
        raise DocumentFailed(ref.key, str(exc), content_sha256=sha256, permanent=True) from exc
    except (FileNotFoundError, ValueError) as exc:
        # gone since the listing, or a key or setting that cannot work: retrying will not help
        raise DocumentFailed(ref.key, f"{type(exc).__name__}: {exc}", content_sha256=sha256, permanent=True) from exc
    except Exception as exc:
        raise DocumentFailed(ref.key, f"{type(exc).__name__}: {exc}", content_sha256=sha256) from exc
