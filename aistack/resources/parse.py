"""Turn one decoded manifest (a dict) into a typed resource, or every reason it is not one."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, ValidationError, create_model

from aistack.resources.agent import OllamaAgent
from aistack.resources.base import API_VERSION, GROUP
from aistack.resources.errors import FieldError, InvalidResource, describe, did_you_mean, from_pydantic, shorten
from aistack.resources.model_definition import OllamaModelDefinition
from aistack.resources.orchestration import PIPELINE_GRAPH_ERROR, PipelineStep, TaskOrchestration
from aistack.resources.pipeline_graph import check_pipeline

AnyResource = OllamaModelDefinition | OllamaAgent | TaskOrchestration
RESOURCE_TYPES: tuple[type[AnyResource], ...] = (OllamaModelDefinition, OllamaAgent, TaskOrchestration)
KINDS: dict[str, type[AnyResource]] = {cls.KIND: cls for cls in RESOURCE_TYPES}

_GRAPH_FIELDS = ("name", "depends_on", "input_from", "artifacts", "condition", "for_each", "review")
# The part of a step the graph rules read, with the same field definitions: a step whose
# other fields are wrong still takes part in the graph checks.
_GraphStep = create_model(  # type: ignore[call-overload]  # the fields are PipelineStep's own, as pydantic built them
    "GraphStep",
    __config__=ConfigDict(**{**PipelineStep.model_config, "extra": "ignore"}),
    **{name: (PipelineStep.model_fields[name].annotation, PipelineStep.model_fields[name]) for name in _GRAPH_FIELDS},
)


def resource_type(data: Any) -> type[AnyResource]:
    """The class for a manifest's apiVersion and kind, or an error that says which to use."""
    if not isinstance(data, dict):
        raise InvalidResource([FieldError("", "a resource must be a mapping with apiVersion, kind, metadata and spec")])
    errors = []
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if api_version is None:
        errors.append(FieldError("apiVersion", f'required field is missing: use "{API_VERSION}"'))
    elif not isinstance(api_version, str):
        errors.append(FieldError("apiVersion", f'expected a string, got {describe(api_version)}: use "{API_VERSION}"'))
    elif api_version != API_VERSION:
        what = "version" if api_version.startswith(f"{GROUP}/") else "group"
        errors.append(FieldError("apiVersion", f'unsupported {what} in "{shorten(api_version)}": use "{API_VERSION}"'))
    if kind is None:
        errors.append(FieldError("kind", f"required field is missing: use one of {', '.join(KINDS)}"))
    elif not isinstance(kind, str):
        errors.append(FieldError("kind", f"expected a string, got {describe(kind)}: use one of {', '.join(KINDS)}"))
    elif kind not in KINDS:
        errors.append(FieldError("kind", f'unknown kind "{shorten(kind)}"{did_you_mean(kind, KINDS)}; aistack kinds are {", ".join(KINDS)}'))
    if errors or not isinstance(kind, str):
        raise InvalidResource(errors)
    return KINDS[kind]


def parse_resource(data: Any) -> AnyResource:
    """Validate a manifest completely: field types and values, then the pipeline graph.

    Raises InvalidResource with every error found. Graph rules are checked on the steps that
    are valid on their own, so a typo in one step does not hide a cycle among the others.
    """
    cls = resource_type(data)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        errors = from_pydantic((e for e in exc.errors() if e["type"] != PIPELINE_GRAPH_ERROR), cls)
        if cls is TaskOrchestration:
            errors.extend(_graph_errors(data))
        raise InvalidResource(errors) from None


def _graph_errors(data: dict[str, Any]) -> list[FieldError]:
    spec = data.get("spec")
    pipeline = spec.get("pipeline") if isinstance(spec, dict) else None
    policy = spec.get("errorPolicy") if isinstance(spec, dict) else None
    action = policy.get("failureAction", "continue") if isinstance(policy, dict) else "continue"
    if not isinstance(pipeline, list):
        return []
    valid, invalid = [], []
    for index, raw in enumerate(pipeline):
        try:
            valid.append((index, _GraphStep.model_validate(raw)))
        except ValidationError:
            if isinstance(raw, dict) and isinstance(raw.get("name"), str):
                invalid.append(raw["name"])
    return check_pipeline(valid, invalid_steps=invalid, failure_action=action if isinstance(action, str) else "continue")
