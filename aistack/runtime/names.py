"""Model names as Ollama reads them, so the same name finds the same model in both.

A name is `[host/][namespace/]model[:tag]`; the tag defaults to `latest`, the namespace to
`library` and the host to `registry.ollama.ai`, and those defaults are left out when a name is
shown (`llama2` is `llama2:latest`). Names compare case-insensitively, as in Ollama.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[0-9]+)?$")


class InvalidName(ValueError):
    """A model name Ollama would reject."""


@dataclass(frozen=True)
class ModelName:
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def display(self) -> str:
        """The short form Ollama shows: `model:tag`, with namespace/host only when not the defaults."""
        prefix = ""
        if self.host.lower() != DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        return f"{prefix}{self.model}:{self.tag}"

    @property
    def key(self) -> str:
        """What two equal names share (case-insensitive)."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}".lower()

    @property
    def parts(self) -> tuple[str, str, str, str]:
        """Path components of the manifest: host, namespace, model, tag."""
        return self.host, self.namespace, self.model, self.tag


def parse_name(text: str) -> ModelName:
    """Parse and validate a model name; raise InvalidName with the reason."""
    raw = (text or "").strip()
    if not raw:
        raise InvalidName("model is required")
    if "@" in raw:
        raise InvalidName(f"invalid model name {text!r}: digests (@sha256:...) are not supported here")
    parts = raw.split("/")
    last = parts[-1]
    model, sep, tag = last.partition(":")
    if not sep:
        tag = DEFAULT_TAG
    if len(parts) == 1:
        host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
    elif len(parts) == 2:
        host, namespace = DEFAULT_HOST, parts[0]
    elif len(parts) == 3:
        host, namespace = parts[0], parts[1]
    else:
        raise InvalidName(f"invalid model name {text!r}: too many '/'")
    if not _PART.match(model) or not _PART.match(namespace) or not _HOST.match(host) or not _TAG.match(tag):
        raise InvalidName(f"invalid model name {text!r}: use letters, digits, '_', '.' and '-', as in name:tag")
    return ModelName(host, namespace, model, tag)


def normalize(text: str) -> str:
    """The display form of a name: `summarizer-model` -> `summarizer-model:latest`."""
    return parse_name(text).display
