"""Which models exist, how `create` builds one, and how a model is described.

The catalog joins the store (created models) with the bundled base models (always usable by
name, never written to the store) and the base-model substitution. `create` resolves `from`
in this order: a model created here (its settings are inherited), a bundled base or a .gguf
path, and only then AISTACK_BASE_MODELS (so `*=` never hijacks a model that exists). Every
check that can fail runs before anything is written, so a failed create leaves no trace.
"""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aistack.runtime import basemodels, gguf
from aistack.runtime.errors import ApiError, model_not_found
from aistack.runtime.names import InvalidName, normalize
from aistack.runtime.options import InvalidOption, coerce_all, parameters_text
from aistack.runtime.prompt import check_template_fields
from aistack.runtime.store import ModelRecord, ModelSpec, ModelStore, build_manifest

log = logging.getLogger("aistack.runtime")

MESSAGE_ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class CreateRequest:
    model: str
    from_: str | None = None
    system: str | None = None
    template: str | None = None
    parameters: Mapping[str, Any] | None = None
    messages: Sequence[Mapping[str, Any]] | None = None
    license: str | Sequence[str] | None = None


@dataclass(frozen=True)
class CreateOutcome:
    record: ModelRecord
    statuses: list[str]
    changed: bool


def parse_template(source: str) -> Any:
    """Parse a Go template with aistack.gotemplate; a parse error is a 400 naming line and column."""
    try:
        from aistack import gotemplate
    except ImportError:  # pragma: no cover - only while aistack.gotemplate is being written
        raise ApiError(501, "custom TEMPLATEs need aistack.gotemplate, which is not installed") from None
    try:
        return gotemplate.parse(source)
    except gotemplate.TemplateError as e:
        raise ApiError(400, f"invalid template: {e}") from None


class Catalog:
    def __init__(self, store: ModelStore, substitutions: Mapping[str, str]):
        self.store = store
        self.substitutions = dict(substitutions)

    # -- lookup --------------------------------------------------------------------------------

    def find(self, name: str) -> ModelRecord | None:
        """A created model, else a bundled base model under its name or an alias."""
        try:
            record = self.store.get(name)
        except InvalidName as e:
            raise ApiError(400, str(e)) from None
        if record is not None:
            return record
        bundled = basemodels.bundled_model(name)
        if bundled is not None and bundled.path() is not None:
            return self.bundled_record(bundled)
        return None

    def require(self, name: str) -> ModelRecord:
        if not name:
            raise ApiError(400, "model is required")
        record = self.find(name)
        if record is None:
            raise model_not_found(name)
        return record

    def list(self) -> list[ModelRecord]:
        created = self.store.list()
        names = {r.name.lower() for r in created}
        bundled = [self.bundled_record(m) for m in basemodels.BUNDLED if m.path() is not None]
        return created + [r for r in bundled if r.name.lower() not in names]

    def bundled_record(self, bundled: basemodels.BundledModel) -> ModelRecord:
        path = bundled.path()
        assert path is not None
        spec = ModelSpec(
            base=bundled.name,
            base_digest=self.store.gguf_digest(path),
            base_size=path.stat().st_size,
            requested_from=bundled.name,
        )
        manifest = build_manifest(spec, self._details_of(path))
        modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        size = spec.base_size + sum(len(b) for b in manifest.blobs.values())
        return ModelRecord(name=bundled.name, digest=manifest.digest, modified_at=modified, size=size, spec=spec, bundled_base=True)

    def base_path(self, record: ModelRecord) -> Path:
        """The GGUF file to load for a model."""
        return self._spec_path(record.spec, record.name)

    @staticmethod
    def _spec_path(spec: ModelSpec, name: str | None = None) -> Path:
        owner = f"{name}: " if name else ""
        try:
            base = basemodels.resolve_base(spec.base)
        except basemodels.UnknownBaseModel as e:
            raise ApiError(500, f"{owner}{e.message}") from None
        if base is None:
            raise ApiError(500, f"{owner}its base model {spec.base} is not available any more")
        return base.path

    # -- create ----------------------------------------------------------------------------------

    def create(self, request: CreateRequest) -> CreateOutcome:
        try:
            name = normalize(request.model)
        except InvalidName as e:
            raise ApiError(400, str(e)) from None
        if not request.from_:
            raise ApiError(400, "neither 'from' or 'files' was specified")
        statuses = ["gathering model components"]
        spec, note = self._resolve_from(request.from_.strip())
        if note:
            statuses.append(note)
        if request.template is not None and request.template.strip():
            check_template_fields(parse_template(request.template))
        try:
            parameters = coerce_all(request.parameters)
        except InvalidOption as e:
            raise ApiError(400, str(e)) from None
        messages = _messages(request.messages)
        licenses = _licenses(request.license)
        spec = replace(
            spec,
            system=request.system if request.system is not None else spec.system,
            template=(request.template or None) if request.template is not None else spec.template,
            parameters=dict(spec.parameters) | parameters,
            messages=tuple(messages) if request.messages is not None else spec.messages,
            license=tuple(licenses) if request.license is not None else spec.license,
        )
        manifest = build_manifest(spec, self._details_of(self._spec_path(spec)))
        statuses.extend(manifest.layer_statuses(self.store))
        changed = self.store.write(name, manifest)
        statuses.append("writing manifest" if changed else f"using existing manifest {manifest.digest}")
        statuses.append("success")
        record = self.store.get(name)
        assert record is not None
        if spec.substituted_from:
            log.warning("created %s from %s: base model substituted %s (AISTACK_BASE_MODELS)", name, spec.base, spec.substitution)
        log.info("created %s (%s, %s)", name, record.digest, "new" if changed else "unchanged")
        return CreateOutcome(record=record, statuses=statuses, changed=changed)

    def _resolve_from(self, reference: str) -> tuple[ModelSpec, str | None]:
        """(the spec to start from, a status line about the base) for a create's `from`."""
        try:
            existing = self.store.get(reference)
        except InvalidName:
            existing = None
        if existing is not None:
            return replace(existing.spec, parent=existing.name), None
        base = self._base(reference)
        if base is not None:
            return self._base_spec(base, reference, None), None
        target = basemodels.substitute(reference, self.substitutions)
        if target != reference:
            try:
                existing = self.store.get(target)
            except InvalidName:
                existing = None
            if existing is not None:
                spec = replace(existing.spec, parent=existing.name, requested_from=reference, substituted_from=reference)
            else:
                base = self._base(target)
                if base is None:
                    raise ApiError(
                        404, basemodels.unknown_base_message(target, self._created_names()) + f" ({reference} was mapped to {target} by AISTACK_BASE_MODELS)"
                    )
                spec = self._base_spec(base, reference, reference)
            note = f"substituting base model {reference} -> {target} (AISTACK_BASE_MODELS)"
            log.warning("%s", note)
            return spec, note
        raise ApiError(404, basemodels.unknown_base_message(reference, self._created_names()))

    def _base(self, reference: str) -> basemodels.BaseModel | None:
        try:
            return basemodels.resolve_base(reference)
        except basemodels.UnknownBaseModel as e:
            raise ApiError(404, f"{e.message}; the embedded runtime has {basemodels.available_description()}") from None

    def _base_spec(self, base: basemodels.BaseModel, requested: str, substituted_from: str | None) -> ModelSpec:
        try:
            gguf.read_info(base.path)
        except gguf.GGUFError as e:
            raise ApiError(400, str(e)) from None
        return ModelSpec(
            base=base.name,
            base_digest=self.store.gguf_digest(base.path),
            base_size=base.path.stat().st_size,
            requested_from=requested,
            substituted_from=substituted_from,
        )

    def _created_names(self) -> builtins.list[str]:  # `list` is this class's Ollama list call
        return [r.name for r in self.store.list()]

    # -- description -----------------------------------------------------------------------------

    @staticmethod
    def _details_of(path: Path) -> dict[str, Any]:
        info = gguf.read_info(path)
        return {
            "format": "gguf",
            "family": info.architecture,
            "families": [info.architecture],
            "parameter_size": info.parameter_size,
            "quantization_level": info.quantization_level,
        }

    def details(self, record: ModelRecord) -> dict[str, Any]:
        """Ollama's `details`, plus the base and any substitution (ignored by clients that don't know them)."""
        spec = record.spec
        details = {"parent_model": spec.parent or ("" if record.bundled_base else spec.base)}
        details |= self._details_of(self.base_path(record))
        details["base_model"] = spec.base
        if spec.substituted_from:
            details["substituted_from"] = spec.substituted_from
        return details

    def model_info(self, record: ModelRecord) -> dict[str, Any]:
        info = gguf.read_info(self.base_path(record))
        spec = record.spec
        values = info.model_info()
        values["tokenizer.chat_template"] = info.chat_template
        values |= {
            "aistack.runtime": "embedded",
            "aistack.base_model": spec.base,
            "aistack.requested_from": spec.requested_from,
            "aistack.substitution": spec.substitution,
            "aistack.temperature_cap": basemodels.temperature_cap(spec.base, spec.substituted_from),
            "aistack.json_quotes_prompt": basemodels.quotes_prompt(spec.base, spec.substituted_from),
            "aistack.template_source": (
                "GGUF tokenizer.chat_template"
                if not spec.template
                else "custom TEMPLATE inside the GGUF chat template (base substituted)"
                if spec.substituted_from
                else "custom TEMPLATE"
            ),
        }
        return values

    def modelfile(self, record: ModelRecord) -> str:
        """The Modelfile `ollama show --modelfile` prints; aistack's parse_modelfile reads it back."""
        spec = record.spec
        lines = [
            '# Modelfile generated by "ollama show" (aistack embedded runtime)',
            "# To build a new Modelfile based on this, replace FROM with:",
            f"# FROM {record.name}",
        ]
        if spec.substituted_from:
            lines.append(f"# Base model substituted by AISTACK_BASE_MODELS: {spec.substitution}")
            if spec.template:
                lines.append("# The TEMPLATE's text is sent as the user turn of the substitute's own chat template")
            cap = basemodels.temperature_cap(spec.base, spec.substituted_from)
            if cap is not None:
                lines.append(f"# Sampling temperature at most {cap} (the substitute's ceiling)")
            if basemodels.quotes_prompt(spec.base, spec.substituted_from):
                lines.append("# JSON answers quote the prompt: free strings are chosen from its sentences")
        if not spec.template:
            lines.append("# No TEMPLATE: the base model's own chat template (GGUF tokenizer.chat_template) is used")
        lines += ["", f"FROM {spec.base}"]
        if spec.template:
            lines.append(f"TEMPLATE {_quote(spec.template)}")
        if spec.system is not None:
            lines.append(f"SYSTEM {_quote(spec.system)}")
        for line in parameters_text(spec.parameters).splitlines():
            name, _, value = line.partition(" ")
            lines.append(f"PARAMETER {name} {value.strip()}")
        for message in spec.messages:
            lines.append(f"MESSAGE {message['role']} {_quote(message['content'])}")
        for text in spec.license:
            lines.append(f"LICENSE {_quote(text)}")
        return "\n".join(lines) + "\n"

    def show(self, record: ModelRecord) -> dict[str, Any]:
        spec = record.spec
        body: dict[str, Any] = {
            "modelfile": self.modelfile(record),
            "parameters": parameters_text(spec.parameters),
            "details": self.details(record),
            "model_info": self.model_info(record),
            "capabilities": ["completion"],
            "modified_at": _timestamp(record.modified_at),
        }
        if spec.template:
            body["template"] = spec.template
        if spec.system is not None:
            body["system"] = spec.system
        if spec.license:
            body["license"] = "\n".join(spec.license)
        if spec.messages:
            body["messages"] = [dict(m) for m in spec.messages]
        return body

    def summary(self, record: ModelRecord) -> dict[str, Any]:
        """One entry of /api/tags."""
        return {
            "name": record.name,
            "model": record.name,
            "modified_at": _timestamp(record.modified_at),
            "size": record.size,
            "digest": record.short_digest,
            "details": self.details(record),
        }


def _messages(messages: Sequence[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    result = []
    for index, message in enumerate(messages or ()):
        if not isinstance(message, Mapping):
            raise ApiError(400, f"messages[{index}] must be an object with role and content")
        role, content = message.get("role"), message.get("content", "")
        if role not in MESSAGE_ROLES:
            raise ApiError(400, f"messages[{index}]: invalid role {role!r}: use one of {', '.join(MESSAGE_ROLES)}")
        if not isinstance(content, str):
            raise ApiError(400, f"messages[{index}]: content must be a string")
        result.append({"role": role, "content": content})
    return result


def _licenses(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) for item in items):
        raise ApiError(400, "license must be a string or a list of strings")
    return items


def _quote(text: str) -> str:
    """Triple quotes, as Ollama writes them; a JSON string when the text would break them."""
    if '"""' in text or text.endswith('"') or text.startswith('"'):
        return json.dumps(text, ensure_ascii=False)
    return f'"""{text}"""'


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
