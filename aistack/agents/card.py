"""The A2A agent card of an OllamaAgent: who the agent is and how to call it.

Name, description and version come from the agent and its model definition (the description
says the role, the model and what the model's system prompt asks of it); each
`agentCard.capabilities` entry becomes one skill; `spec.server` sets streaming and push
notifications; bearer authentication becomes an HTTP bearer security scheme required by every
call. Two interfaces are published at the same URL (the base URL plus `agentCard.endpoint`):
JSON-RPC first (the one clients prefer) and HTTP+JSON, both A2A protocol 1.0.
"""

from __future__ import annotations

import re

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import PROTOCOL_VERSION_1_0, TransportProtocol

from aistack.agents.artifacts import output_modes
from aistack.agents.inputs import TEXT_MEDIA_TYPES
from aistack.agents.profile import AgentProfile
from aistack.resources.agent import AgentRole

BEARER_SCHEME = "bearer"

ROLE_SUMMARIES = {
    AgentRole.ANALYZER: "analyzes documents: their structure, topics, entities and claims",
    AgentRole.SUMMARIZER: "summarizes documents into their key points, findings and action items",
    AgentRole.QA: "checks a piece of work against its source material and reports whether it passes",
    AgentRole.CLASSIFIER: "classifies texts into a fixed set of labels",
    AgentRole.CHAT: "answers questions and holds a conversation",
    AgentRole.EXTRACTOR: "extracts structured fields from unstructured text",
    AgentRole.TRANSLATOR: "translates texts between languages",
    AgentRole.GENERAL: "performs general language tasks",
}

CAPABILITY_DESCRIPTIONS = {
    "text-analysis": "Analyze a text: its topics, structure and the claims it makes.",
    "entity-extraction": "Find the named entities (people, organisations, places, products) a text mentions.",
    "summarization": "Summarize a document: main points, key findings and action items.",
    "question-answering": "Answer a question, using the context sent with it when there is one.",
    "chat": "Hold a multi-turn conversation; follow-up messages in the same contextId see the earlier turns.",
    "classification": "Assign a text one label from a fixed set, with a confidence.",
    "quality-check": "Check a piece of work against its source: supported statements, completeness, clarity.",
    "fact-check": "Check that each statement of a text is supported by the material given with it.",
    "translation": "Translate a text into another language.",
    "extraction": "Extract structured fields from unstructured text.",
}

CAPABILITY_EXAMPLES = {
    "summarization": "Summarize this report: <text>",
    "question-answering": "What does the attached policy say about refunds?",
    "classification": "Our invoice from March was charged twice, please fix it.",
    "quality-check": "Check this summary against the document it summarizes: <summary> <document>",
    "text-analysis": "Analyze this document: <text>",
    "entity-extraction": "List the entities in: <text>",
    "chat": "Hello! Can you help me plan a migration?",
}


def interface_url(base_url: str, endpoint: str) -> str:
    """The URL of the A2A interfaces: base URL plus the path prefix (no trailing slash unless root)."""
    base = base_url.rstrip("/")
    return f"{base}/" if endpoint in ("", "/") else f"{base}{endpoint}"


def _title(identifier: str) -> str:
    return " ".join(word.capitalize() for word in identifier.split("-"))


def _sentences(text: str, limit: int = 400) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(".,;:") + "..."


def describe_agent(profile: AgentProfile) -> str:
    summary = ROLE_SUMMARIES.get(profile.role, ROLE_SUMMARIES[AgentRole.GENERAL])
    answer = "JSON" if profile.json_output else "text"
    text = f"{_title(profile.role.value)} agent that {summary}; it answers in {answer} with the Ollama model {profile.model}."
    if profile.system:
        text += f" Instructions of its model: {_sentences(profile.system)}"
    return text


def build_skill(profile: AgentProfile, capability: str) -> AgentSkill:
    described = CAPABILITY_DESCRIPTIONS.get(capability) or f"{_title(capability)}, as a {profile.role.value} agent."
    if profile.schema is not None and profile.function_names:
        output = f" Answers as JSON matching the schema of {', '.join(profile.function_names)}."
    elif profile.json_output:
        output = " Answers as a JSON object."
    else:
        output = " Answers in plain text."
    examples = [CAPABILITY_EXAMPLES[capability]] if capability in CAPABILITY_EXAMPLES else []
    return AgentSkill(
        id=capability,
        name=_title(capability),
        description=described + output,
        tags=list(dict.fromkeys([capability, profile.role.value, "json" if profile.json_output else "text", "ollama"])),
        examples=examples,
        input_modes=list(TEXT_MEDIA_TYPES),
        output_modes=list(output_modes(profile.json_output)),
    )


def build_agent_card(profile: AgentProfile, base_url: str) -> AgentCard:
    url = interface_url(base_url, profile.endpoint)
    card = AgentCard(
        name=profile.name,
        description=describe_agent(profile),
        version=profile.version,
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding=TransportProtocol.JSONRPC, protocol_version=PROTOCOL_VERSION_1_0),
            AgentInterface(url=url, protocol_binding=TransportProtocol.HTTP_JSON, protocol_version=PROTOCOL_VERSION_1_0),
        ],
        capabilities=AgentCapabilities(
            streaming=profile.streaming,
            push_notifications=profile.push_notifications,
            extended_agent_card=False,
        ),
        default_input_modes=list(TEXT_MEDIA_TYPES),
        default_output_modes=list(output_modes(profile.json_output)),
        skills=[build_skill(profile, capability) for capability in profile.capabilities],
    )
    if profile.bearer:
        card.security_schemes[BEARER_SCHEME].CopyFrom(
            SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="Bearer",
                    description="The aistack agent token: the caller namespace's (AISTACK_AGENT_TOKENS_DIR) "
                    "or the shared one (AISTACK_AGENT_TOKEN_FILE or AISTACK_AGENT_TOKEN).",
                )
            )
        )
        card.security_requirements.append(SecurityRequirement(schemes={BEARER_SCHEME: StringList()}))
    return card
