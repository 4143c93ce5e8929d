"""The model side of a local run: which Ollama, and the models the agents need, built once.

Runtime: a real Ollama at OLLAMA_HOST when it answers (`choose_endpoint`), else the embedded
runtime started for the run as a supervised child process (`aistack ollama serve`, see
aistack.runtime.process), with llama.cpp's context at CONTEXT tokens (the agents'
contextWindow; larger contexts only slow prompt evaluation here).

Builds: each OllamaModelDefinition becomes a `create` through the official client
(`build_request` + `build_with_client`, the local builder's path). The embedded runtime receives
the definition as written (`from: llama2`) and substitutes the base itself, visibly; a real Ollama
gets AISTACK_BASE_MODELS applied first. A record per server in `$AISTACK_HOME/run/models.json`
keeps the digest of what was built (and, for the embedded runtime, its substitutions), so a
model whose definition did not change is not built again; a changed one, or one missing on the
server, is rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aistack import settings
from aistack.files import write_atomic
from aistack.resources.model_definition import OllamaModelDefinition

CONTEXT = 4096


class ModelSetupError(Exception):
    """The runtime or a model is not usable; the message says what to do."""


@dataclass(frozen=True)
class Runtime:
    kind: str  # "ollama", or "embedded" (ours, or an `aistack ollama serve` at OLLAMA_HOST)
    url: str
    reason: str
    started: bool  # this run started it (and stops it)
    substitutions: dict[str, str] = field(default_factory=dict)  # the embedded runtime's, when started here
    store: Path | None = None
    process: Any = None  # the supervised RuntimeProcess, when this run started it

    @property
    def identity(self) -> str:
        """The key of this server's build record."""
        if self.started and self.store is not None:
            return f"embedded:{self.store.resolve()}"
        return self.url

    def describe(self) -> str:
        if self.started:
            subs = ", ".join(f"{k}={v}" for k, v in self.substitutions.items()) or "none"
            return f"embedded llama.cpp runtime at {self.url} ({self.reason}; base model substitutions: {subs})"
        return f"{'Ollama' if self.kind == 'ollama' else 'aistack ollama serve'} at {self.url} ({self.reason})"


@contextlib.contextmanager
def model_runtime(context: int = CONTEXT, log_path: Path | None = None, restart: bool = False) -> Iterator[Runtime]:
    """The Ollama to use for the block: OLLAMA_HOST when it answers, else the embedded runtime as a
    supervised child process (its output in `log_path`; `restart`: start it again if it dies)."""
    from aistack.runtime.endpoint import choose_endpoint

    chosen = choose_endpoint()
    if chosen.url is not None:
        yield Runtime(chosen.kind, chosen.url, chosen.reason, started=False)
        return
    from aistack.runtime.config import RuntimeConfig
    from aistack.runtime.process import RuntimeProcess, RuntimeStartError

    config = RuntimeConfig(n_ctx=context)
    process = RuntimeProcess(config, log_path, restart=restart)
    try:
        process.start()
    except RuntimeStartError as exc:
        raise ModelSetupError(str(exc)) from None
    try:
        assert process.url is not None
        yield Runtime("embedded", process.url, chosen.reason, started=True, substitutions=config.substitution_map(), store=config.store_path(), process=process)
    finally:
        process.stop()


@dataclass(frozen=True)
class ModelOutcome:
    model: str
    built: bool  # False: up to date
    seconds: float = 0.0
    base: str | None = None  # what it was built from (after substitution)
    requested_base: str | None = None


def _record_path() -> Path:
    return settings.data_dir() / "run" / "models.json"


def _load_records() -> dict[str, dict[str, str]]:
    try:
        data = json.loads(_record_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_records(records: dict[str, dict[str, str]]) -> None:
    write_atomic(_record_path(), json.dumps(records, indent=2, sort_keys=True) + "\n")


def ensure_models(
    runtime: Runtime,
    definitions: Sequence[OllamaModelDefinition],
    report: Callable[[ModelOutcome], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ModelOutcome]:
    """Build what is missing or changed on `runtime`; report each model's outcome."""
    import ollama

    from aistack.models.builds import build_with_client
    from aistack.models.modelfile import BASE_MODELS_ENV, build_request, substitutions_from_env

    client = ollama.Client(host=runtime.url)
    substitutions = {} if runtime.kind == "embedded" else substitutions_from_env()
    records = _load_records()
    mine = records.setdefault(runtime.identity, {})
    outcomes = []
    for definition in definitions:
        request = build_request(definition, substitutions)
        fingerprint = request.digest + "|" + json.dumps(runtime.substitutions, sort_keys=True)
        if mine.get(request.model) == fingerprint and _exists(client, request.model, runtime):
            outcome = ModelOutcome(request.model, built=False)
        else:
            started = time.monotonic()
            try:
                _, base = build_with_client(client, request, progress or (lambda line: None))
            except ollama.ResponseError as exc:
                raise ModelSetupError(
                    f"cannot build {request.model} from base model {request.from_!r} on {runtime.url}: {exc.error}. "
                    f"Pull the base model (`ollama pull {request.from_}`) or map it to a local one with "
                    f"{BASE_MODELS_ENV}={request.requested_from}=<local model>"
                ) from None
            except (ConnectionError, OSError) as exc:
                raise ModelSetupError(f"cannot reach the model runtime at {runtime.url}: {exc}") from None
            mine[request.model] = fingerprint
            _save_records(records)
            outcome = ModelOutcome(request.model, True, time.monotonic() - started, base, request.requested_from)
        outcomes.append(outcome)
        if report is not None:
            report(outcome)
    return outcomes


def _exists(client: Any, model: str, runtime: Runtime) -> bool:
    import ollama

    try:
        client.show(model)
        return True
    except ollama.ResponseError as exc:
        if exc.status_code == 404:
            return False
        raise ModelSetupError(f"the model runtime at {runtime.url} failed to describe {model}: {exc.error}") from None
    except (ConnectionError, OSError) as exc:
        raise ModelSetupError(f"cannot reach the model runtime at {runtime.url}: {exc}") from None
