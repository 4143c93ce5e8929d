"""Documents as pipeline items: reading, selecting, cleaning and chunking them. Free of Airflow;
`forEach.fromStorage` (aistack.pipelines.items) is built on it.

- `storage`: local folders and S3 prefixes as stores (list with modification times, read,
  atomic write); `Location.parse("s3://bucket/prefix" | "/a/folder")`, `open_store()`.
- `selection`: `Window` (half-open, like a data interval) and `select_documents()`.
- `cleaning`: `decode()`, `clean_text()`, `clean_document()`; `DocumentError` for bad content.
- `tokens`: `ApproxTokenizer`, the calibrated upper-bound token count used for chunking.
- `chunking`: `chunk_text()` (token budget, overlap, boundaries).
"""

from aistack.documents.chunking import Chunk, chunk_text
from aistack.documents.cleaning import DocumentError, clean_document, clean_text, decode, document_format
from aistack.documents.selection import Window, select_documents
from aistack.documents.storage import DocumentRef, LocalStore, Location, S3Store, open_store
from aistack.documents.tokens import ApproxTokenizer, count_tokens

__all__ = [
    "ApproxTokenizer",
    "Chunk",
    "DocumentError",
    "DocumentRef",
    "LocalStore",
    "Location",
    "S3Store",
    "Window",
    "chunk_text",
    "clean_document",
    "clean_text",
    "count_tokens",
    "decode",
    "document_format",
    "open_store",
    "select_documents",
]
