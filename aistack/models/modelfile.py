"""One mapping from an OllamaModelDefinition to what Ollama builds, in two renderings.

`build_request` decides every value once; `BuildRequest.modelfile()` writes it for
`ollama create -f` (the build pod), `BuildRequest.create_kwargs()` for the official client's
`create()` (local builds and the embedded runtime). The digest is computed from that same
request, so "unchanged" means the same thing for every builder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aistack.resources.errors import FieldError, InvalidResource
from aistack.resources.model_definition import ModelParameters, OllamaModelDefinition, ResponseFormat

# The seed's camelCase parameter names and Ollama's PARAMETER names.
OLLAMA_PARAMETER_NAMES = {
    "temperature": "temperature",
    "context_window": "num_ctx",
    "num_predict": "num_predict",
    "top_k": "top_k",
    "top_p": "top_p",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
    "repeat_last_n": "repeat_last_n",
    "seed": "seed",
    "stop": "stop",
}

_INT_PARAMETERS = {
    "num_ctx",
    "num_predict",
    "top_k",
    "repeat_last_n",
    "seed",
    "mirostat",
    "num_keep",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
}
_BOOL_PARAMETERS = {"penalize_newline", "numa", "use_mmap", "use_mlock", "low_vram"}
_LIST_PARAMETERS = {"stop"}

# Template variables aistack adds to Ollama's (.System, .Prompt, .Messages, .Tools, .Response).
INPUT_VARIABLE = re.compile(r"(?<![\w$])(\$?)\.Input\b")
RESPONSE_FORMAT_VARIABLE = re.compile(r"(?<![\w$])\$?\.ResponseFormat\b")
# An action, with string literals inside it skipped whole (a "}}" in a string does not end it).
ACTION = re.compile(r"\{\{(?:\"(?:\\.|[^\"\\])*\"|`[^`]*`|[^\"`}]|\}(?!\}))*\}\}", re.S)
STRING_LITERAL = re.compile(r"(\"(?:\\.|[^\"\\])*\"|`[^`]*`)")

BASE_MODELS_ENV = "AISTACK_BASE_MODELS"


@dataclass(frozen=True)
class BuildRequest:
    """Everything `ollama create` receives for one definition, already in Ollama's terms."""

    model: str
    from_: str
    requested_from: str
    system: str | None = None
    template: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    messages: tuple[Mapping[str, str], ...] = ()
    license: str | None = None
    adapter: str | None = None
    base_digest: str | None = None

    @property
    def substituted(self) -> bool:
        return self.from_ != self.requested_from

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `ollama.Client.create` (adapters need an uploaded blob; see modelfile())."""
        kwargs: dict[str, Any] = {"model": self.model, "from_": self.from_}
        for name in ("system", "template", "license"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        if self.parameters:
            kwargs["parameters"] = dict(self.parameters)
        if self.messages:
            kwargs["messages"] = [dict(m) for m in self.messages]
        return kwargs

    def modelfile(self) -> str:
        """The Modelfile for `ollama create <model> -f Modelfile`."""
        lines = [f"FROM {self.from_}"]
        if self.adapter:
            lines.append(f"ADAPTER {self.adapter}")
        for name, value in self.parameters.items():
            for item in value if isinstance(value, list) else [value]:
                lines.append(f"PARAMETER {name} {_parameter_text(item)}")
        if self.system is not None:
            lines.append(f"SYSTEM {_quote('system', self.system)}")
        if self.template is not None:
            lines.append(f"TEMPLATE {_quote('template', self.template)}")
        for message in self.messages:
            lines.append(f"MESSAGE {message['role']} {_quote('messages', message['content'])}")
        if self.license is not None:
            lines.append(f"LICENSE {_quote('license', self.license)}")
        return "\n".join(lines) + "\n"

    @property
    def digest(self) -> str:
        """A content digest: equal for equal requests, different after any change that Ollama would see."""
        content = self.create_kwargs() | {"adapter": self.adapter, "base_digest": self.base_digest}
        content.pop("model")
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def build_request(
    definition: OllamaModelDefinition,
    substitutions: Mapping[str, str] | None = None,
    base_digest: str | None = None,
) -> BuildRequest:
    """Render a definition; `substitutions` maps cluster base models to ones available here."""
    build = definition.spec.build
    requested = definition.spec.from_
    return BuildRequest(
        model=definition.model_name,
        from_=substitute_base_model(requested, substitutions or {}),
        requested_from=requested,
        system=build.system,
        template=translate_template(build.template, response_format_text(definition)) if build.template else None,
        parameters=ollama_parameters(build.parameters),
        messages=tuple({"role": m.role, "content": m.content} for m in build.messages or ()),
        license=build.license,
        adapter=build.adapter,
        base_digest=base_digest,
    )


def ollama_parameters(parameters: ModelParameters | None) -> dict[str, Any]:
    """Modelfile PARAMETERs under Ollama's names; responseFormat is a per-call setting, not one of them."""
    if parameters is None:
        return {}
    values = parameters.model_dump(by_alias=False, exclude_none=True, exclude={"response_format"})
    return {OLLAMA_PARAMETER_NAMES[name]: value for name, value in values.items()}


def output_format(definition: OllamaModelDefinition) -> str | dict[str, Any] | None:
    """The `format` of every chat call an agent makes with this model.

    `responseFormat: json` asks for JSON; with functions, their parameter schemas constrain it
    (one function: its schema; several: any one of them). Without responseFormat, free text.
    """
    parameters = definition.spec.build.parameters
    if parameters is None or parameters.response_format is not ResponseFormat.JSON:
        return None
    schemas = [function.parameters for function in definition.spec.build.functions or ()]
    if not schemas:
        return "json"
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


def response_format_text(definition: OllamaModelDefinition) -> str:
    """What `{{.ResponseFormat}}` says in a template: the contract output_format enforces, in words."""
    fmt = output_format(definition)
    if fmt is None:
        return "Plain text."
    if isinstance(fmt, str):  # "json": any JSON object
        return "A single JSON object, and nothing else."
    return describe_format(fmt)


def describe_format(schema: Mapping[str, Any]) -> str:
    """A JSON schema as a sentence: its fields and what each holds, without the schema's keywords.

    The grammar enforces the schema itself; this text only tells the model what the fields mean.
    Printing the schema's JSON made small models answer with its words ("items", "type",
    "array") as content: bench/response_format_echo.py measures the candidates.
    """
    properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else None
    if not properties:
        return "A single JSON object, and nothing else."
    fields = ", ".join(f'"{name}" ({_describe_value(value)})' for name, value in properties.items())
    return f"A single JSON object, and nothing else, with the fields {fields}."


def _describe_value(schema: Any) -> str:
    if not isinstance(schema, Mapping):
        return "a value"
    if isinstance(schema.get("description"), str) and schema["description"].strip():
        return schema["description"].strip()
    kind = schema.get("type")
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"][:10])
    if kind == "array":
        return "a list of " + _plural(schema.get("items"))
    if kind == "string":
        return "a short text"
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        return f"a whole number from {low} to {high}" if low is not None and high is not None else "a whole number"
    if kind == "number":
        return "a number"
    if kind == "boolean":
        return "true or false"
    if kind == "object":
        return "an object"
    return "a value"


def _plural(schema: Any) -> str:
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    return {"string": "short texts", "integer": "whole numbers", "number": "numbers", "boolean": "true/false values", "object": "objects"}.get(kind or "", "values")


def translate_template(template: str, response_format: str) -> str:
    """Rewrite aistack's template variables into Ollama's, inside template actions only.

    `.Input` is the user's input, which Ollama calls `.Prompt`; `.ResponseFormat` is fixed
    at build time, so it becomes a string literal. Everything else is passed through, and
    Ollama's own variables keep working.
    """
    literal = json.dumps(response_format, ensure_ascii=False)

    def code(text: str) -> str:
        text = INPUT_VARIABLE.sub(lambda m: f"{m.group(1)}.Prompt", text)
        return RESPONSE_FORMAT_VARIABLE.sub(lambda _: literal, text)

    def action(match: re.Match[str]) -> str:
        pieces = STRING_LITERAL.split(match.group(0))  # odd positions are string literals: kept as written
        return "".join(piece if index % 2 else code(piece) for index, piece in enumerate(pieces))

    return ACTION.sub(action, template)


def substitute_base_model(base: str, substitutions: Mapping[str, str]) -> str:
    """Map a cluster base model (`llama2`) to one this machine has; `*` matches any other."""
    name = base.rsplit(":", 1)[0] if ":" in base.rsplit("/", 1)[-1] else base  # a registry port is not a tag
    return substitutions.get(base) or substitutions.get(name) or substitutions.get("*") or base


def parse_substitutions(text: str) -> dict[str, str]:
    """Parse `llama2=smollm2:135m,*=smollm2:135m` (the AISTACK_BASE_MODELS setting)."""
    result = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, target = item.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise InvalidResource([FieldError(BASE_MODELS_ENV, f"invalid entry {item!r}: write base=replacement, e.g. llama2=smollm2:135m")])
        result[name.strip()] = target.strip()
    return result


def substitutions_from_env(default: str = "") -> dict[str, str]:
    return parse_substitutions(os.environ.get(BASE_MODELS_ENV, default))


def _quote(field_name: str, value: str) -> str:
    if '"""' in value:
        raise InvalidResource([FieldError(f"spec.build.{field_name}", 'contains """, which a Modelfile cannot quote: remove it')])
    return f'"""{value}"""'


def _parameter_text(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def parse_modelfile(text: str) -> dict[str, Any]:
    """Read a Modelfile into `create()` keyword arguments (plus `adapter`), the inverse of modelfile().

    It is what `aistack ollama create -f` uses, so a Modelfile written for Ollama builds the
    same model in the embedded runtime.
    """
    result: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    messages: list[dict[str, str]] = []
    for number, instruction, argument in _instructions(text):
        if instruction == "FROM":
            result["from_"] = argument
        elif instruction in ("SYSTEM", "TEMPLATE", "LICENSE", "ADAPTER"):
            result[instruction.lower()] = _unquote(argument)
        elif instruction == "PARAMETER":
            name, _, raw = argument.partition(" ")
            value = _parameter_value(name, _unquote(raw.strip()), number)
            if name in _LIST_PARAMETERS:
                parameters.setdefault(name, []).append(value)
            else:
                parameters[name] = value
        elif instruction == "MESSAGE":
            role, _, content = argument.partition(" ")
            messages.append({"role": role, "content": _unquote(content.strip())})
        else:
            raise ValueError(f"Modelfile line {number}: unknown instruction {instruction!r}")
    if "from_" not in result:
        raise ValueError("Modelfile has no FROM line: name the base model, e.g. FROM smollm2:135m")
    if parameters:
        result["parameters"] = parameters
    if messages:
        result["messages"] = messages
    return result


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, argument) with triple-quoted arguments joined across lines."""
    found = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        number = index + 1
        index += 1
        if not line or line.startswith("#"):
            continue
        instruction, _, argument = line.partition(" ")
        argument = argument.strip()
        if argument.count('"""') == 1:
            parts = [argument]
            while index < len(lines) and '"""' not in lines[index]:
                parts.append(lines[index])
                index += 1
            if index == len(lines):
                raise ValueError(f"Modelfile line {number}: unterminated triple-quoted value")
            parts.append(lines[index])
            index += 1
            argument = "\n".join(parts)
        found.append((number, instruction.upper(), argument))
    return found


def _unquote(value: str) -> str:
    if value.startswith('"""') and value.endswith('"""') and len(value) >= 6:
        return value[3:-3]
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return json.loads(value)
    return value


def _parameter_value(name: str, raw: str, number: int) -> Any:
    try:
        if name in _INT_PARAMETERS:
            return int(raw)
        if name in _BOOL_PARAMETERS:
            return {"true": True, "false": False}[raw.lower()]
        if name in _LIST_PARAMETERS:
            return raw
        return float(raw)
    except (ValueError, KeyError):
        raise ValueError(f"Modelfile line {number}: PARAMETER {name} cannot be {raw!r}") from None
