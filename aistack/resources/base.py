"""The building blocks every aistack resource shares: the wire naming rule, object metadata, conditions.

Field names on the wire are the seed's camelCase; Python code uses snake_case. Unknown fields
are errors (with a suggestion) because a typo that is silently dropped is a setting the user
thinks they made and did not.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

from aistack.resources.types import NamespaceName, ResourceName

GROUP = "ai.stack"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class WireModel(BaseModel):
    """Base of every spec and status model: camelCase on the wire, nothing unknown accepted."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready form written to YAML files and to the Kubernetes API."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OwnerReference(WireModel):
    api_version: StrictStr
    kind: StrictStr
    name: StrictStr
    uid: StrictStr
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(WireModel):
    """Kubernetes object metadata: what users write plus what the API server fills in on reads."""

    name: ResourceName = Field(description="The object's name, unique per kind in its namespace.")
    namespace: NamespaceName | None = Field(default=None, description="The namespace; `default` when omitted.")
    labels: dict[str, StrictStr] | None = None
    annotations: dict[str, StrictStr] | None = None
    generate_name: StrictStr | None = None
    uid: StrictStr | None = None
    resource_version: StrictStr | None = None
    generation: StrictInt | None = None
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    deletion_grace_period_seconds: StrictInt | None = None
    finalizers: list[StrictStr] | None = None
    owner_references: list[OwnerReference] | None = None
    managed_fields: list[dict[str, Any]] | None = None


class ConditionStatus(str, Enum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(WireModel):
    """A standard Kubernetes condition, so `kubectl wait --for=condition=...` works on every kind."""

    type: StrictStr = Field(description="The aspect this condition reports, e.g. Built, Ready, Accepted.")
    status: ConditionStatus = Field(description='"True", "False" or "Unknown".')
    reason: StrictStr | None = Field(default=None, description="A CamelCase machine-readable reason.")
    message: StrictStr | None = Field(default=None, description="A human-readable explanation.")
    last_transition_time: datetime | None = Field(default=None, description="When the status last changed.")
    observed_generation: StrictInt | None = Field(default=None, description="The generation this was computed for.")


class ResourceStatus(WireModel):
    """Fields every aistack status has, so tooling can treat the three kinds alike."""

    observed_generation: StrictInt | None = Field(default=None, description="The metadata.generation the status reflects.")
    conditions: list[Condition] | None = Field(default=None, description="Standard conditions.")


class PrinterColumn(BaseModel):
    """An additionalPrinterColumn of the CRD: what `kubectl get` shows for a kind."""

    name: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    json_path: str
    description: str
    priority: int = 0


class CustomResource(WireModel):
    """A whole aistack object: apiVersion, kind, metadata, spec and status.

    The class variables describe the kind to Kubernetes; the CRD generator reads them, so the
    manifests in crds/ cannot disagree with the code.
    """

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]
    SHORT_NAMES: ClassVar[tuple[str, ...]]
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]]
    CATEGORY: ClassVar[str] = "aistack"

    api_version: Literal["ai.stack/v1alpha1"] = Field(default="ai.stack/v1alpha1", description=f"Always {API_VERSION}.")
    metadata: ObjectMeta

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"
