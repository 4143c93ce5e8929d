"""How one embedded runtime is set up: where its store is, which substitutions, how many threads.

Every field has an environment default, so `aistack ollama serve`, the background server of
`aistack.runtime.endpoint` and the tests build the same runtime from the same settings:

- store: AISTACK_HOME (see `aistack.runtime.home`);
- substitutions: AISTACK_BASE_MODELS, default `*=smollm2:135m` (see `aistack.runtime.basemodels`);
- threads: AISTACK_OLLAMA_THREADS, default 2 (llama.cpp threads per loaded model);
- keep_alive: OLLAMA_KEEP_ALIVE, default 5m, as in Ollama.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RuntimeConfig:
    store: Path | None = None
    substitutions: Mapping[str, str] | None = None
    n_threads: int | None = None
    n_ctx: int | None = None
    keep_alive: float | None = None

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
