"""How one embedded runtime is set up: where its store is, which substitutions, how many threads.

Every field has an environment default, so `aistack ollama serve`, the background server of
`aistack.runtime.endpoint` and the tests build the same runtime from the same settings:

- store: AISTACK_HOME (see `aistack.runtime.home`);
- substitutions: AISTACK_BASE_MODELS, default `*=smollm2:135m` (see `aistack.runtime.basemodels`);
- threads: AISTACK_OLLAMA_THREADS, default 2 (llama.cpp threads in all, split between the slots);
- num_parallel: OLLAMA_NUM_PARALLEL, default 1, as in Ollama (requests served at once, see
  `aistack.runtime.engine`);
- keep_alive: OLLAMA_KEEP_ALIVE, default 5m, as in Ollama;
- max_body: AISTACK_RUNTIME_MAX_BODY, the largest request body in bytes (see DEFAULT_MAX_BODY).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aistack import settings

MAX_BODY_ENV = settings.RUNTIME_MAX_BODY
NUM_PARALLEL_ENV = "OLLAMA_NUM_PARALLEL"  # Ollama's own setting, so one deployment value serves both
DEFAULT_MAX_BODY = 32 * 1024 * 1024
"""The largest request body the runtime reads, in bytes; a larger one gets 413.

The largest legitimate bodies are a chat with a long conversation or a document to summarize
(a context window of text is well under a megabyte) and, for Ollama's API, base64 images of a few
megabytes; 32 MiB leaves room for those while keeping a client from making the runtime hold
hundreds of megabytes (a 400 MB body took 1.2 GB of memory).
"""


@dataclass(frozen=True)
class RuntimeConfig:
    store: Path | None = None
    substitutions: Mapping[str, str] | None = None
    n_threads: int | None = None
    n_ctx: int | None = None
    keep_alive: float | None = None
    num_parallel: int | None = None
    max_body: int | None = None

    def store_path(self) -> Path:
        if self.store is not None:
            return Path(self.store)
        from aistack.runtime.home import store_root

        return store_root()

    def substitution_map(self) -> dict[str, str]:
        if self.substitutions is not None:
            return dict(self.substitutions)
        from aistack.runtime.basemodels import substitutions_for_runtime

        return substitutions_for_runtime()

    def max_body_bytes(self) -> int:
        """max_body, else AISTACK_RUNTIME_MAX_BODY, else DEFAULT_MAX_BODY; ValueError names a bad setting."""
        return _positive("max_body", self.max_body, MAX_BODY_ENV, DEFAULT_MAX_BODY, "bytes")

    def parallel_slots(self) -> int:
        """num_parallel, else OLLAMA_NUM_PARALLEL, else 1; ValueError names a bad setting."""
        return _positive("--parallel", self.num_parallel, NUM_PARALLEL_ENV, 1, "requests")


def _positive(field: str, given: int | None, env: str, default: int, unit: str) -> int:
    """A positive whole number: `given`, else the environment variable, else the default."""
    if given is not None:
        if given <= 0:
            raise ValueError(f"{field}={given}: write a positive number of {unit}, e.g. {default}")
        return given
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
        if value <= 0:
            raise ValueError(raw)
    except ValueError:
        raise ValueError(f"{env}={raw!r}: write a positive number of {unit}, e.g. {default}") from None
    return value
