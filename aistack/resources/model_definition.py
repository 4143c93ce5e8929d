"""OllamaModelDefinition: a custom Ollama model (base model, system prompt, template, parameters)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import Field, StrictFloat, StrictInt, StrictStr, field_validator
from pydantic_core import PydanticCustomError

from aistack import gotemplate
from aistack.resources.base import CustomResource, PrinterColumn, ResourceStatus, WireModel
from aistack.resources.types import Quantity, StepName, Version


class ResponseFormat(str, Enum):
    """How the model answers: free text, or JSON (constrained by the functions' schema when given)."""

    TEXT = "text"
    JSON = "json"


class ModelParameters(WireModel):
    """Ollama's PARAMETER list under the seed's camelCase names (`contextWindow` is Ollama's num_ctx)."""

    temperature: StrictFloat | None = Field(default=None, ge=0, le=2, description="Sampling temperature (0 to 2).")
    context_window: StrictInt | None = Field(default=None, ge=256, le=1_048_576, description="Context window in tokens (Ollama num_ctx).")
    response_format: ResponseFormat | None = Field(
        default=None,
        description="`json` makes every chat call of an agent ask for JSON output; not a Modelfile parameter.",
    )
    num_predict: StrictInt | None = Field(default=None, ge=-2, description="Maximum tokens to generate (-1: no limit).")
    top_k: StrictInt | None = Field(default=None, ge=0, description="Sample from the k most likely tokens.")
    top_p: StrictFloat | None = Field(default=None, ge=0, le=1, description="Nucleus sampling threshold.")
    min_p: StrictFloat | None = Field(default=None, ge=0, le=1, description="Minimum token probability.")
    repeat_penalty: StrictFloat | None = Field(default=None, ge=0, description="Penalty for repeated tokens.")
    repeat_last_n: StrictInt | None = Field(default=None, ge=-1, description="How far back repetition is penalized.")
    seed: StrictInt | None = Field(default=None, description="Random seed for reproducible output.")
    stop: list[StrictStr] | None = Field(default=None, max_length=16, description="Stop sequences.")


class FunctionDefinition(WireModel):
    """A function the model can fill in: its `parameters` JSON schema shapes structured output."""

    name: StrictStr = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", description="Function name (an identifier).")
    description: StrictStr | None = Field(default=None, description="What the function extracts or does.")
    parameters: dict[str, Any] = Field(description="A JSON schema (type object) for the function's arguments.")


class ModelTags(WireModel):
    """Tags for versioning and identification; `version` becomes the model's Ollama tag."""

    version: Version = Field(description="The model version; the model is published as `<name>:<version>`.")
    type: StepName | None = Field(default=None, description="What kind of model this is, e.g. summarizer.")
    capabilities: list[StepName] | None = Field(default=None, json_schema_extra={"x-kubernetes-list-type": "set"}, description="Capability labels.")


class ComputeResources(WireModel):
    """CPU, memory and GPUs for a pod; `gpu` is the count of `nvidia.com/gpu`."""

    gpu: StrictInt | None = Field(default=None, ge=0, le=16, description="Number of NVIDIA GPUs.")
    memory: Quantity | None = Field(default=None, description='Memory, e.g. "16Gi".')
    cpu: Quantity | None = Field(default=None, description='CPU cores, e.g. "4" or "500m".')


class ChatMessage(WireModel):
    """A MESSAGE line of a Modelfile: an example turn the model starts every conversation with."""

    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: StrictStr = Field(description="What is said.")


# What Ollama passes to a TEMPLATE, and the two variables aistack adds (see aistack.models.modelfile).
OLLAMA_TEMPLATE_FIELDS = frozenset({"System", "Prompt", "Response", "Messages", "Tools", "Suffix", "Think", "ThinkLevel", "IsThinkSet"})
AISTACK_TEMPLATE_FIELDS = frozenset({"Input", "ResponseFormat"})


class ModelBuild(WireModel):
    system: StrictStr | None = Field(default=None, description="System prompt defining the agent's behaviour.")
    template: StrictStr | None = Field(default=None, description="Prompt template (Go text/template).")
    parameters: ModelParameters | None = Field(default=None, description="Model parameters.")
    functions: list[FunctionDefinition] | None = Field(
        default=None,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Functions whose parameter schemas define the model's structured output.",
    )
    messages: list[ChatMessage] | None = Field(default=None, max_length=64, description="Example conversation turns.")
    license: StrictStr | None = Field(default=None, description="License text of the built model.")
    adapter: StrictStr | None = Field(default=None, description="A (Q)LoRA adapter to apply to the base model.")
    tags: ModelTags | None = Field(default=None, description="Version and identification tags.")
    build_resources: ComputeResources | None = Field(default=None, description="Resources of the build pod.")

    @field_validator("template")
    @classmethod
    def _template_parses(cls, template: str | None) -> str | None:
        """Reject what Ollama would reject (a parse error) or render wrongly (an unknown variable)."""
        if template is None:
            return None
        try:
            fields = gotemplate.parse(template).fields()
        except gotemplate.TemplateError as exc:
            raise PydanticCustomError("template", str(exc)) from None
        unknown = sorted(fields - OLLAMA_TEMPLATE_FIELDS - AISTACK_TEMPLATE_FIELDS)
        if unknown:
            known = ", ".join(f".{f}" for f in sorted(OLLAMA_TEMPLATE_FIELDS | AISTACK_TEMPLATE_FIELDS))
            raise PydanticCustomError("template", f"unknown template variable {', '.join('.' + f for f in unknown)}: use one of {known}")
        return template


class ModelDefinitionSpec(WireModel):
    from_: StrictStr = Field(alias="from", min_length=1, max_length=512, description="Base model: an Ollama model name or a .gguf path.")
    build: ModelBuild = Field(description="How the model is built from the base.")


class BuildPhase(str, Enum):
    PENDING = "Pending"
    BUILDING = "Building"
    COMPLETE = "Complete"
    FAILED = "Failed"


class ModelDefinitionStatus(ResourceStatus):
    phase: BuildPhase | None = Field(default=None, description="Pending, Building, Complete or Failed.")
    build_start_time: datetime | None = Field(default=None, description="When the current build started.")
    last_build_time: datetime | None = Field(default=None, description="When the last build finished.")
    model_hash: StrictStr | None = Field(default=None, description="Ollama's digest of the built model.")
    build_digest: StrictStr | None = Field(default=None, description="Digest of the build request; an unchanged definition is not rebuilt.")
    model: StrictStr | None = Field(default=None, description="The built model's name, `<name>:<version>`.")
    base_model: StrictStr | None = Field(default=None, description="The base model actually used for the build.")
    message: StrictStr | None = Field(default=None, description="A human-readable summary of the last build.")


class OllamaModelDefinition(CustomResource):
    """A custom Ollama model; creating one asks the platform to build it with `ollama create`."""

    KIND = "OllamaModelDefinition"
    PLURAL = "ollamamodeldefinitions"
    SHORT_NAMES = ("omd",)
    PRINTER_COLUMNS = (
        PrinterColumn(name="Phase", type="string", json_path=".status.phase", description="Build phase."),
        PrinterColumn(name="Base", type="string", json_path=".spec.from", description="Base model."),
        PrinterColumn(name="Version", type="string", json_path=".spec.build.tags.version", description="Model version."),
        PrinterColumn(name="Digest", type="string", json_path=".status.modelHash", description="Built model digest."),
        PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp", description="Age."),
    )

    kind: Literal["OllamaModelDefinition"] = Field(description="OllamaModelDefinition.")
    spec: ModelDefinitionSpec = Field(description="The model to build.")
    status: ModelDefinitionStatus | None = Field(default=None, description="The last build, written by the build operator.")

    @property
    def version(self) -> str:
        """`tags.version`, or Ollama's default tag `latest` for an unversioned definition."""
        tags = self.spec.build.tags
        return tags.version if tags else "latest"

    @property
    def model_name(self) -> str:
        """The Ollama model name agents pin: `<metadata.name>:<tags.version>`."""
        return f"{self.name}:{self.version}"
