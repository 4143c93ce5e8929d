"""OllamaAgent: an A2A agent that serves one OllamaModelDefinition's model."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr

from aistack.resources.base import CustomResource, PrinterColumn, ResourceStatus, WireModel
from aistack.resources.model_definition import ComputeResources, ResponseFormat
from aistack.resources.types import ResourceName, StepName, UrlPath, Version


class AgentRole(str, Enum):
    """What an agent is for; it picks the skill descriptions on the agent card."""

    ANALYZER = "analyzer"
    SUMMARIZER = "summarizer"
    QA = "qa"
    CLASSIFIER = "classifier"
    CHAT = "chat"
    EXTRACTOR = "extractor"
    TRANSLATOR = "translator"
    GENERAL = "general"


class ModelReference(WireModel):
    name: ResourceName = Field(description="Name of the OllamaModelDefinition in the agent's namespace.")
    version: Version = Field(description="The definition's `build.tags.version` the agent pins.")


class AuthenticationType(str, Enum):
    NONE = "none"
    BEARER = "bearer"


class Authentication(WireModel):
    type: AuthenticationType = Field(description="`bearer`: every call but the agent card needs a bearer token.")


class AgentCardSpec(WireModel):
    capabilities: list[StepName] = Field(
        min_length=1,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Capabilities, each published as one A2A skill.",
    )
    endpoint: UrlPath = Field(default="/", description="Path prefix the A2A interfaces are served under.")
    authentication: Authentication | None = Field(default=None, description="How clients authenticate.")


class RetryPolicy(str, Enum):
    EXPONENTIAL = "exponential"
    LINEAR = "linear"
    FIXED = "fixed"
    NONE = "none"


class WebhookConfig(WireModel):
    retry_policy: RetryPolicy = Field(default=RetryPolicy.EXPONENTIAL, description="Delay growth between retries.")
    max_retries: StrictInt = Field(default=3, ge=0, le=10, description="Delivery retries after the first attempt.")


class AgentServer(WireModel):
    streaming: StrictBool = Field(default=True, description="Offer SendStreamingMessage (SSE).")
    push_notifications: StrictBool = Field(default=False, description="Offer push notifications to webhooks.")
    webhook_config: WebhookConfig | None = Field(default=None, description="Push delivery retries.")


class ModelConfig(WireModel):
    temperature: StrictFloat | None = Field(default=None, ge=0, le=2, description="Sampling temperature.")
    context_window: StrictInt | None = Field(default=None, ge=256, le=1_048_576, description="num_ctx in tokens.")
    response_format: ResponseFormat | None = Field(default=None, description="`json` asks the model for JSON.")


class AgentSpec(WireModel):
    model_definition: ModelReference = Field(description="The model the agent serves.")
    role: AgentRole = Field(description="The agent's role.")
    agent_card: AgentCardSpec = Field(description="What the A2A agent card publishes.")
    replicas: StrictInt = Field(default=1, ge=0, le=100, description="Agent server replicas in a cluster.")
    resources: ComputeResources | None = Field(default=None, description="Resources of the agent.")
    server: AgentServer | None = Field(default=None, description="A2A server options.")
    model_config_: ModelConfig | None = Field(default=None, alias="modelConfig", description="Per-call model settings; override the definition's.")


class AgentPhase(str, Enum):
    PENDING = "Pending"
    DEPLOYING = "Deploying"
    READY = "Ready"
    FAILED = "Failed"


class AgentStatus(ResourceStatus):
    phase: AgentPhase | None = Field(default=None, description="Pending, Deploying, Ready or Failed.")
    ready: StrictBool | None = Field(default=None, description="Whether the agent answers.")
    url: StrictStr | None = Field(default=None, description="Base URL of the agent's A2A interfaces.")
    model: StrictStr | None = Field(default=None, description="The Ollama model the agent calls.")
    message: StrictStr | None = Field(default=None, description="A human-readable summary of the deployment.")


class OllamaAgent(CustomResource):
    """An agent that serves one model over A2A; deploying one makes it callable by pipelines."""

    KIND = "OllamaAgent"
    PLURAL = "ollamaagents"
    SHORT_NAMES = ("oagent",)
    PRINTER_COLUMNS = (
        PrinterColumn(name="Role", type="string", json_path=".spec.role", description="Agent role."),
        PrinterColumn(name="Model", type="string", json_path=".spec.modelDefinition.name", description="Model."),
        PrinterColumn(name="Phase", type="string", json_path=".status.phase", description="Deployment phase."),
        PrinterColumn(name="Ready", type="boolean", json_path=".status.ready", description="Answering."),
        PrinterColumn(name="URL", type="string", json_path=".status.url", description="A2A base URL."),
        PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp", description="Age."),
    )

    kind: Literal["OllamaAgent"] = Field(description="OllamaAgent.")
    spec: AgentSpec = Field(description="The agent and how it is served.")
    status: AgentStatus | None = Field(default=None, description="Deployment state, written by the agents DAG.")
