"""What a model build writes to an OllamaModelDefinition's status, and the build through the
official `ollama` client used wherever Ollama (or the embedded runtime) is reachable directly.

The Kubernetes pod operator and the local builder share these functions, so both skip an
unchanged definition by the same rule and report progress in the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aistack.models.modelfile import BuildRequest
from aistack.resources import OllamaModelDefinition
from aistack.resources.conditions import set_condition
from aistack.resources.model_definition import BuildPhase

BUILT = "Built"


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def is_up_to_date(definition: OllamaModelDefinition, request: BuildRequest) -> bool:
    """The last Complete build was of exactly this request (same content digest, same model name)."""
    status = definition.status
    return bool(status and status.phase is BuildPhase.COMPLETE and status.build_digest == request.digest and status.model == request.model)


def _base_note(request: BuildRequest) -> str:
    if request.substituted:
        return f" from {request.from_} (substituted for {request.requested_from} by AISTACK_BASE_MODELS)"
    return f" from {request.from_}"


def building_status(definition: OllamaModelDefinition, request: BuildRequest, at: datetime | None = None) -> dict[str, Any]:
    at = at or now()
    message = f"building {request.model}{_base_note(request)}"
    return _status(definition, BuildPhase.BUILDING, None, "Building", message, at) | {
        "buildStartTime": _time(at),
        "baseModel": request.from_,
    }


def complete_status(
    definition: OllamaModelDefinition,
    request: BuildRequest,
    model_hash: str,
    at: datetime | None = None,
    base_model: str | None = None,
) -> dict[str, Any]:
    """`base_model`: what the server actually built from, when it substituted the base itself."""
    at = at or now()
    used = base_model or request.from_
    note = _base_note(request) if used == request.from_ else f" from {used} (substituted for {request.from_} by the model server)"
    message = f"built {request.model}{note}"
    return _status(definition, BuildPhase.COMPLETE, True, "BuildSucceeded", message, at) | {
        "lastBuildTime": _time(at),
        "modelHash": model_hash,
        "buildDigest": request.digest,
        "model": request.model,
        "baseModel": used,
    }


def failed_status(definition: OllamaModelDefinition, request: BuildRequest, step: str, detail: str, at: datetime | None = None) -> dict[str, Any]:
    """A failed build names the step that failed and the end of its log."""
    at = at or now()
    message = f"build of {request.model} failed at step {step!r}: {detail[-3000:]}"
    return _status(definition, BuildPhase.FAILED, False, "BuildFailed", message, at) | {"lastBuildTime": _time(at)}


def _status(definition: OllamaModelDefinition, phase: BuildPhase, built: bool | None, reason: str, message: str, at: datetime) -> dict[str, Any]:
    generation = definition.metadata.generation
    previous = definition.status.conditions if definition.status else None
    conditions = set_condition(previous, BUILT, built, reason, message, at, generation)
    status: dict[str, Any] = {
        "phase": phase.value,
        "message": message,
        "conditions": [c.to_wire() for c in conditions],
    }
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def _time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_with_client(client: Any, request: BuildRequest, log: Callable[[str], None]) -> tuple[str, str]:
    """Build through an `ollama.Client` (real Ollama or the embedded runtime).

    Returns (model digest, base model the server built from: the embedded runtime substitutes
    cluster base models itself and says so in `show`). Progress lines of `create` go to `log` as
    they arrive, so they land in the Airflow task log.
    """
    if request.adapter:
        raise ValueError("adapters need a blob upload the local builder does not do: build this model in the cluster")
    log(f"building {request.model}{_base_note(request)}")
    for progress in client.create(**request.create_kwargs(), stream=True):
        log(f"create {request.model}: {progress.status}")
    base = (client.show(request.model).modelinfo or {}).get("aistack.base_model") or request.from_
    for model in client.list().models:
        if model.model == request.model:
            digest = f"sha256:{model.digest}" if model.digest and ":" not in model.digest else str(model.digest)
            return digest, base
    raise RuntimeError(f"{request.model} was created but the server does not list it")
