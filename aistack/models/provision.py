"""Make sure the models agents call exist on the Ollama server, building the missing ones.

Locally there is no model build DAG: `aistack agents serve` builds each referenced model that
the server lacks, from its OllamaModelDefinition, with the official client's `create()` and
`build_request(definition, substitutions_from_env())` (so AISTACK_BASE_MODELS maps cluster base
models such as llama2 to local ones, as it does for every other local build). An existing model
is left alone; rebuilding changed definitions is the model builds pipeline's job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from aistack.models.modelfile import BASE_MODELS_ENV, build_request, substitutions_from_env
from aistack.resources.model_definition import OllamaModelDefinition

log = logging.getLogger("aistack.models.provision")


class ProvisionError(RuntimeError):
    """A model could not be made available; the message says what to do."""


def ensure_models(
    client: object,
    definitions: Iterable[OllamaModelDefinition],
    substitutions: Mapping[str, str] | None = None,
    report: Callable[[str], None] | None = None,
) -> list[str]:
    """Create every definition's model missing on the server behind `client` (an ollama.Client).

    Returns the names of the models it built.
    """
    import ollama

    assert isinstance(client, ollama.Client)
    report = report or log.info
    substitutions = substitutions_from_env() if substitutions is None else substitutions
    host = str(getattr(getattr(client, "_client", None), "base_url", "the Ollama server")).rstrip("/")
    built: list[str] = []
    seen: set[str] = set()
    for definition in definitions:
        model = definition.model_name
        if model in seen:
            continue
        seen.add(model)
        try:
            client.show(model)
            continue
        except ollama.ResponseError as exc:
            if exc.status_code != 404:
                raise ProvisionError(f"Ollama at {host} failed to describe {model}: {exc.error}") from None
        except ConnectionError:
            raise ProvisionError(f"cannot reach Ollama at {host}: start it (`ollama serve` or `aistack ollama serve`) or pass --ollama-host") from None
        request = build_request(definition, substitutions)
        base = f"{request.from_} (for {request.requested_from})" if request.substituted else request.from_
        report(f"building model {model} from {base}")
        try:
            client.create(**request.create_kwargs())
        except ollama.ResponseError as exc:
            raise ProvisionError(
                f"cannot build {model} from base model {request.from_!r}: {exc.error}. Pull the base model "
                f"(`ollama pull {request.from_}`) or map it to a local one with {BASE_MODELS_ENV}="
                f"{request.requested_from}=<local model>"
            ) from None
        built.append(model)
    return built
