"""Settings of the batch summarization DAG, read from the environment (as aistack.settings does).

| Variable | Default | Meaning |
| --- | --- | --- |
| AISTACK_SUMMARIZATION_SCHEDULE | `@daily` | Cron expression or preset; each run covers the interval since the previous one. |
| AISTACK_SUMMARIZATION_CATCHUP | `false` | Run the intervals missed while the scheduler was down (else: a manual run with `all_documents` picks them up). |
| AISTACK_SUMMARIZATION_SOURCE | `<data dir>/documents/inbox` | Where documents arrive: a folder or `s3://bucket/prefix`. |
| AISTACK_SUMMARIZATION_OUTPUT | `<data dir>/documents/summaries` | Where summaries and manifests go: a folder or `s3://bucket/prefix`. |
| AISTACK_SUMMARIZATION_AWS_CONN_ID | `aws_default` | The Airflow connection of S3 locations (endpoint_url in its extra for S3-compatible stores). |
| AISTACK_SUMMARIZER_AGENT | `summarizer-agent` | The summarizer agent's name (resolved locally, else in the cluster). |
| AISTACK_SUMMARIZER_NAMESPACE | `default` | Its namespace. |
| AISTACK_SUMMARIZATION_OLLAMA_HOST | OLLAMA_HOST, else AISTACK_OLLAMA_URL's default | The Ollama asked for the model's digest. |
| AISTACK_SUMMARIZATION_MAX_CHUNK_TOKENS | `1024` | Token budget of a chunk (and of a reduce call's inputs). |
| AISTACK_SUMMARIZATION_OVERLAP_TOKENS | `96` | Tokens shared by consecutive chunks. |
| AISTACK_SUMMARIZATION_PARALLELISM | `4` | Documents summarized at once in a run (mapped task instances). |
| AISTACK_SUMMARIZATION_RETRIES | `2` | Retries of a document's task after a transient failure (agent unreachable, empty answer); bad documents are not retried. |

`<data dir>` is aistack's data directory (AISTACK_HOME, see aistack.settings.data_dir).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from aistack import settings as core

SCHEDULE = "AISTACK_SUMMARIZATION_SCHEDULE"
CATCHUP = "AISTACK_SUMMARIZATION_CATCHUP"
SOURCE = "AISTACK_SUMMARIZATION_SOURCE"
OUTPUT = "AISTACK_SUMMARIZATION_OUTPUT"
AWS_CONN_ID = "AISTACK_SUMMARIZATION_AWS_CONN_ID"
AGENT = "AISTACK_SUMMARIZER_AGENT"
NAMESPACE = "AISTACK_SUMMARIZER_NAMESPACE"
OLLAMA_HOST = "AISTACK_SUMMARIZATION_OLLAMA_HOST"
MAX_CHUNK_TOKENS = "AISTACK_SUMMARIZATION_MAX_CHUNK_TOKENS"
OVERLAP_TOKENS = "AISTACK_SUMMARIZATION_OVERLAP_TOKENS"
PARALLELISM = "AISTACK_SUMMARIZATION_PARALLELISM"
RETRIES = "AISTACK_SUMMARIZATION_RETRIES"


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


@dataclass(frozen=True)
class SummarizationSettings:
    schedule: str
    catchup: bool
    source: str
    output: str
    aws_conn_id: str
    agent: str
    namespace: str
    ollama_host: str
    max_chunk_tokens: int
    overlap_tokens: int
    parallelism: int
    retries: int


def load() -> SummarizationSettings:
    documents = core.data_dir() / "documents"
    return SummarizationSettings(
        schedule=os.environ.get(SCHEDULE, "").strip() or "@daily",
        catchup=os.environ.get(CATCHUP, "").strip().lower() in ("1", "true", "yes", "on"),
        source=os.environ.get(SOURCE, "").strip() or str(documents / "inbox"),
        output=os.environ.get(OUTPUT, "").strip() or str(documents / "summaries"),
        aws_conn_id=os.environ.get(AWS_CONN_ID, "").strip() or "aws_default",
        agent=os.environ.get(AGENT, "").strip() or "summarizer-agent",
        namespace=os.environ.get(NAMESPACE, "").strip() or "default",
        ollama_host=(os.environ.get(OLLAMA_HOST, "").strip() or os.environ.get("OLLAMA_HOST", "").strip() or core.cluster_ollama_url()),
        max_chunk_tokens=_int(MAX_CHUNK_TOKENS, 1024),
        overlap_tokens=_int(OVERLAP_TOKENS, 96),
        parallelism=max(1, _int(PARALLELISM, 4)),
        retries=max(0, _int(RETRIES, 2)),
    )
