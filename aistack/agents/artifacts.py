"""The output artifacts of an agent's task, and how a caller asks for specific ones.

Convention (what pipeline steps use to get exactly the artifacts they declare): the message's
metadata, or else the SendMessage request's metadata, may hold

    {"aistack": {"artifact": {"name": "analysis-result", "mediaType": "application/json",
                              "schema": {...optional JSON schema...}}}}

or `"artifacts": [...]` with several such objects. Without it the task has one artifact named
`output`, `application/json` for agents that answer in JSON and `text/plain` otherwise.

- A JSON artifact (`application/json`) holds one data part: the model's answer parsed as JSON
  and validated against the artifact's `schema`, else the model definition's function schema.
  The model is asked for JSON (constrained by that schema) whenever a JSON artifact is wanted,
  even from an agent that answers in text otherwise.
- A text artifact (`text/plain`, `text/markdown`) holds the answer as text parts with that media
  type. When it is the only artifact and the model answers in text, it is streamed token by
  token (the first chunk creates it, the others append, the last has lastChunk); its text is
  the concatenation of its parts.

Names must be RFC 1123 labels (as step artifact names are); media types must be one of
text/plain, text/markdown, application/json. Anything else is refused before a task starts.

The request's `acceptedOutputModes` (when it names any) is honoured, as the A2A spec asks an
agent to tailor its output to it: an artifact whose media type is not given gets the agent's
preferred mode among the accepted ones (`output_modes`: a JSON agent's answer is rendered as text
when only text/plain is accepted), and a request the agent cannot serve in an accepted mode (an
artifact asked for in a media type not accepted, or no accepted mode the agent produces) is
refused as ContentTypeNotSupported, naming the modes it produces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
from a2a.types import Part
from google.protobuf import json_format, struct_pb2

from aistack.agents.inputs import InputError, plain

METADATA_KEY = "aistack"
DEFAULT_NAME = "output"
JSON = "application/json"
OUTPUT_MEDIA_TYPES = ("text/plain", "text/markdown", JSON)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class OutputSpec:
    name: str
    media_type: str
    schema: dict[str, Any] | None = None

    @property
    def is_json(self) -> bool:
        return self.media_type == JSON


class InvalidOutput(ValueError):
    """The model's answer does not fit the requested artifact."""


def output_modes(json_agent: bool) -> tuple[str, ...]:
    """The media types the agent's artifacts come in, preferred first (the card's output modes): a
    JSON agent answers in JSON or gives that answer as text; a text agent answers in text or
    Markdown, or in JSON when asked for it (the model is then held to JSON)."""
    return (JSON, "text/plain") if json_agent else OUTPUT_MEDIA_TYPES


def _media_types(modes: Sequence[str]) -> frozenset[str]:
    """Media types without parameters (`text/plain; charset=utf-8` is text/plain), lowercase."""
    return frozenset(mode.split(";", 1)[0].strip().lower() for mode in modes if mode.strip())


def _default_media_type(json_agent: bool, accepted: frozenset[str]) -> str:
    modes = output_modes(json_agent)
    chosen = next((mode for mode in modes if not accepted or mode in accepted), None)
    if chosen is None:
        raise InputError(
            f"acceptedOutputModes ({', '.join(sorted(accepted))}) names no media type this agent produces: accept one of {', '.join(modes)}",
            unsupported_type=True,
        )
    return chosen


def requested_outputs(
    message_metadata: Mapping[str, Any] | None,
    request_metadata: Mapping[str, Any] | None,
    json_agent: bool,
    accepted_modes: Sequence[str] = (),
) -> list[OutputSpec]:
    """The artifacts to produce, from the metadata convention and the accepted output modes (see
    the module docstring)."""
    accepted = _media_types(accepted_modes)
    for metadata in (message_metadata, request_metadata):
        section = (metadata or {}).get(METADATA_KEY)
        if section is None:
            continue
        if not isinstance(section, Mapping):
            raise InputError(f'metadata "{METADATA_KEY}" must be an object')
        if "artifacts" in section:
            raw = section["artifacts"]
            if not isinstance(raw, list) or not raw:
                raise InputError(f'metadata "{METADATA_KEY}.artifacts" must be a non-empty list of artifact objects')
        elif "artifact" in section:
            raw = [section["artifact"]]
        else:
            continue
        specs = [
            _spec(item, f"{METADATA_KEY}.artifacts[{i}]" if "artifacts" in section else f"{METADATA_KEY}.artifact", json_agent, accepted)
            for i, item in enumerate(raw)
        ]
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise InputError(f"artifact names must be unique, got {names}")
        return specs
    return [OutputSpec(DEFAULT_NAME, _default_media_type(json_agent, accepted))]


def _spec(item: Any, where: str, json_agent: bool, accepted: frozenset[str]) -> OutputSpec:
    if not isinstance(item, Mapping):
        raise InputError(f'metadata "{where}" must be an object with name and mediaType')
    name = item.get("name", DEFAULT_NAME)
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 63:
        raise InputError(f'metadata "{where}.name" {name!r} is not a valid artifact name (lowercase letters, digits and "-")')
    media_type = item["mediaType"] if "mediaType" in item else _default_media_type(json_agent, accepted)
    if media_type not in OUTPUT_MEDIA_TYPES:
        raise InputError(
            f'metadata "{where}.mediaType" {media_type!r} is not supported: use one of {", ".join(OUTPUT_MEDIA_TYPES)}',
            unsupported_type=True,
        )
    if accepted and media_type not in accepted:
        raise InputError(
            f'metadata "{where}.mediaType" {media_type!r} is not among the acceptedOutputModes '
            f"({', '.join(sorted(accepted))}): accept it, or ask for the artifact in an accepted media type",
            unsupported_type=True,
        )
    schema = item.get("schema")
    if schema is not None:
        # Metadata travels as a protobuf Struct, which keeps numbers as doubles: maxLength 10
        # would reach the grammar builder as 10.0 and break it.
        schema = plain(dict(schema)) if isinstance(schema, Mapping) else schema
        if not isinstance(schema, Mapping):
            raise InputError(f'metadata "{where}.schema" must be a JSON schema object')
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InputError(f'metadata "{where}.schema" is not a valid JSON schema: {exc.message}') from None
        if media_type != JSON:
            raise InputError(f'metadata "{where}.schema" needs mediaType {JSON}')
    return OutputSpec(name, media_type, dict(schema) if schema is not None else None)


def model_format(outputs: list[OutputSpec], agent_format: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """The chat `format` for these outputs: JSON (with the tightest schema known) when any is JSON."""
    for spec in outputs:
        if spec.is_json:
            if spec.schema is not None:
                return spec.schema
            return agent_format if agent_format is not None else "json"
    return agent_format


def streams_text(outputs: list[OutputSpec], fmt: str | dict[str, Any] | None) -> bool:
    return fmt is None and len(outputs) == 1 and not outputs[0].is_json


def parse_json(text: str, schema: Mapping[str, Any] | None) -> Any:
    """The answer as JSON, checked against `schema`; InvalidOutput says what is wrong."""
    candidate = text.strip()
    if candidate.startswith("```"):
        candidate = re.sub(r"^```[a-zA-Z]*\s*|\s*```$", "", candidate)
    try:
        value = json.loads(candidate, strict=False)  # small models emit raw control characters in strings
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"the answer is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if schema is not None:
        errors = sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(value), key=lambda e: list(e.path))
        if errors:
            problems = [f"at {'/'.join(str(p) for p in e.absolute_path) or 'the top level'}: {e.message}" for e in errors[:3]]
            more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
            raise InvalidOutput(f"the answer does not match the schema {'; '.join(problems)}{more}")
    return value


def text_part(text: str, media_type: str = "text/plain") -> Part:
    return Part(text=text, media_type=media_type)


def data_part(value: Any) -> Part:
    return Part(data=json_format.ParseDict(value, struct_pb2.Value()), media_type=JSON)


def output_parts(spec: OutputSpec, answer: str, schema: Mapping[str, Any] | None) -> tuple[list[Part], Any]:
    """The parts of one artifact built from the whole answer (and the parsed JSON, if any)."""
    if spec.is_json:
        value = parse_json(answer, spec.schema or schema)
        return [data_part(value)], value
    return [text_part(answer, spec.media_type)], None
