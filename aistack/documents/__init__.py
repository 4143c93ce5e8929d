"""Documents for batch summarization: reading, cleaning, chunking, summarizing, manifests.

Free of Airflow (the `batch_summarization` DAG in dags/ is a thin adapter over it):

- `storage`: local folders and S3 prefixes as stores (list with modification times, read,
  atomic write); `Location.parse("s3://bucket/prefix" | "/a/folder")`, `open_store()`.
- `cleaning`: `decode()`, `clean_text()`, `clean_document()`; `DocumentError` for bad content.
- `tokens`: `ApproxTokenizer`, the calibrated upper-bound token count used for chunking.
- `chunking`: `chunk_text()` (token budget, overlap, boundaries) and `pack()`.
- `summarize`: map-reduce over chunks (`summarize_chunks()`), `AgentSummarizer` (an A2A agent),
  `answer_text()` (JSON answers as markdown).
- `model`: `resolve_identity()`: the agent's model and its digest (the idempotency key's half).
- `manifest`: windows and selection, the idempotency key and output keys, the run manifest.
- `pipeline`: `process_document()`, one document start to finish.
- `settings`: the DAG's environment settings.
"""

from aistack.documents.chunking import Chunk, chunk_text, pack
from aistack.documents.cleaning import DocumentError, clean_document, clean_text, decode, document_format
from aistack.documents.manifest import Recipe, Window, build_manifest, is_current, output_keys, select_documents
from aistack.documents.model import ModelIdentity, resolve_identity
from aistack.documents.pipeline import ChunkBudget, DocumentFailed, process_document
from aistack.documents.storage import DocumentRef, LocalStore, Location, S3Store, open_store
from aistack.documents.summarize import AgentSummarizer, answer_text, summarize_chunks
from aistack.documents.tokens import ApproxTokenizer, count_tokens

__all__ = [
    "AgentSummarizer",
    "ApproxTokenizer",
    "Chunk",
    "ChunkBudget",
    "DocumentError",
    "DocumentFailed",
    "DocumentRef",
    "LocalStore",
    "Location",
    "ModelIdentity",
    "Recipe",
    "S3Store",
    "Window",
    "answer_text",
    "build_manifest",
    "chunk_text",
    "clean_document",
    "clean_text",
    "count_tokens",
    "decode",
    "document_format",
    "is_current",
    "open_store",
    "output_keys",
    "pack",
    "process_document",
    "resolve_identity",
    "select_documents",
    "summarize_chunks",
]
