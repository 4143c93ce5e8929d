"""The three aistack custom resources as typed models: the single source of truth for the
CRD manifests, their documentation, validation and every component that reads them."""

from aistack.resources.agent import OllamaAgent
from aistack.resources.base import API_VERSION, GROUP, VERSION, Condition, CustomResource, ObjectMeta
from aistack.resources.errors import FieldError, InvalidResource
from aistack.resources.model_definition import OllamaModelDefinition
from aistack.resources.orchestration import TaskOrchestration
from aistack.resources.parse import KINDS, RESOURCE_TYPES, AnyResource, parse_resource

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "RESOURCE_TYPES",
    "VERSION",
    "AnyResource",
    "Condition",
    "CustomResource",
    "FieldError",
    "InvalidResource",
    "ObjectMeta",
    "OllamaAgent",
    "OllamaModelDefinition",
    "TaskOrchestration",
    "parse_resource",
]
