"""What an agent is, decided once from its OllamaAgent and OllamaModelDefinition.

The card, the executor and the metrics all read the same `AgentProfile`, so they cannot
disagree about which model is called or how: `name:version` from the definition, the agent's
`modelConfig` over the definition's parameters (temperature, contextWindow as num_ctx,
responseFormat), and the JSON schema from `output_format(definition)` when the answer is JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aistack.agents.limits import token_options
from aistack.models.modelfile import ollama_parameters, output_format
from aistack.resources.agent import AgentRole, OllamaAgent
from aistack.resources.model_definition import OllamaModelDefinition, ResponseFormat


@dataclass(frozen=True)
class AgentProfile:
    name: str
    namespace: str
    role: AgentRole
    model: str  # the Ollama model, "<definition name>:<version>"
    definition: str  # the OllamaModelDefinition's name
    version: str
    capabilities: tuple[str, ...]
    endpoint: str  # the path prefix of the A2A interfaces, "/" or e.g. "/api/v1/agent"
    bearer: bool
    streaming: bool
    push_notifications: bool
    options: dict[str, Any] = field(default_factory=dict)
    format: str | dict[str, Any] | None = None  # None: text; "json"; or a JSON schema
    system: str | None = None
    function_names: tuple[str, ...] = ()

    @property
    def json_output(self) -> bool:
        return self.format is not None

    @property
    def schema(self) -> dict[str, Any] | None:
        return self.format if isinstance(self.format, dict) else None

    @classmethod
    def from_resources(cls, agent: OllamaAgent, definition: OllamaModelDefinition) -> AgentProfile:
        spec = agent.spec
        server = spec.server
        auth = spec.agent_card.authentication
        return cls(
            name=agent.name,
            namespace=agent.namespace,
            role=spec.role,
            model=definition.model_name,
            definition=definition.name,
            version=definition.version,
            capabilities=tuple(spec.agent_card.capabilities),
            endpoint=spec.agent_card.endpoint,
            bearer=auth is not None and auth.type.value == "bearer",
            streaming=server.streaming if server else True,
            push_notifications=server.push_notifications if server else False,
            options=chat_options(agent, definition),
            format=response_format(agent, definition),
            system=definition.spec.build.system,
            function_names=tuple(f.name for f in definition.spec.build.functions or ()),
        )


def chat_options(agent: OllamaAgent, definition: OllamaModelDefinition) -> dict[str, Any]:
    """Per-call Ollama options: the agent's modelConfig (the model's own PARAMETERs apply otherwise),
    and a token limit when the model has none (see limits.py)."""
    config = agent.spec.model_config_
    options: dict[str, Any] = token_options(ollama_parameters(definition.spec.build.parameters))
    if config is not None:
        if config.temperature is not None:
            options["temperature"] = config.temperature
        if config.context_window is not None:
            options["num_ctx"] = config.context_window
    return options


def response_format(agent: OllamaAgent, definition: OllamaModelDefinition) -> str | dict[str, Any] | None:
    """The chat `format`: the agent's responseFormat wins over the definition's; JSON uses the
    definition's function schema when it has one."""
    config = agent.spec.model_config_
    wanted = config.response_format if config is not None else None
    defined = output_format(definition)
    if wanted is ResponseFormat.TEXT:
        return None
    if wanted is ResponseFormat.JSON and defined is None:
        schemas = [f.parameters for f in definition.spec.build.functions or ()]
        if not schemas:
            return "json"
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return defined
