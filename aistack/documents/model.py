"""Which model stands behind the summarizer agent, down to its digest.

A summary is reused only while the model that wrote it is unchanged, so each run pins the
model once, at its start:

1. the model's name comes from the agent itself: every aistack agent answers `GET /readyz`
   with `{"model": "<definition>:<version>", ...}` (an open path, no token needed), whether it
   runs locally or in the cluster;
2. its digest comes from Ollama: `list()` on the Ollama the agent uses (the documents
   settings say where: AISTACK_SUMMARIZATION_OLLAMA_HOST, else OLLAMA_HOST, else the cluster's
   Ollama service). The digest changes whenever the model is rebuilt with another base model,
   system prompt, template or parameters, which is what matters for a summary;
3. when that Ollama cannot be reached or does not list the model, the identity falls back to
   the model name (`name:<model>`, source "model-name"), logged as a warning and recorded in
   the manifest: summaries stay reusable across runs while the name is unchanged, and the
   first run that sees a real digest again writes new ones. A definition's version is part of
   its name, so a rebuilt-and-bumped model is still noticed.

Why not the agent card: it names the agent and the definition's version but has no digest.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

FROM_OLLAMA, FROM_NAME = "ollama", "model-name"
_HEX = re.compile(r"^(?:sha256:)?[0-9a-f]{12,}$")


class ModelIdentityError(RuntimeError):
    """The agent did not say which model it uses."""


@dataclass(frozen=True)
class ModelIdentity:
    agent: str
    namespace: str
    agent_url: str
    model: str
    digest: str
    source: str  # FROM_OLLAMA or FROM_NAME

    def to_json(self) -> dict[str, str]:
        return {
            "agent": self.agent,
            "namespace": self.namespace,
            "agentUrl": self.agent_url,
            "model": self.model,
            "digest": self.digest,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelIdentity:
        return cls(data["agent"], data["namespace"], data["agentUrl"], data["model"], data["digest"], data["source"])


def short_digest(digest: str) -> str:
    """12 hex characters naming a digest in object keys (hashed when it is not hex)."""
    if _HEX.match(digest):
        return digest.removeprefix("sha256:")[:12]
    return hashlib.sha256(digest.encode()).hexdigest()[:12]


def agent_model(agent_url: str, timeout: float = 10.0) -> str:
    """The Ollama model an aistack agent calls, from its /readyz answer (ready or not)."""
    url = agent_url.rstrip("/") + "/readyz"
    try:
        response = httpx.get(url, timeout=timeout)
        model = response.json().get("model")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise ModelIdentityError(f"cannot read the model of the agent at {agent_url} from {url}: {exc}") from None
    if not isinstance(model, str) or not model:
        raise ModelIdentityError(f"the agent at {agent_url} did not name its model at {url} (status {response.status_code})")
    return model


def ollama_digest(model: str, host: str | None, timeout: float = 10.0) -> str | None:
    """The digest Ollama at `host` lists for `model`, or None (not listed, or Ollama unreachable)."""
    import ollama

    wanted = {model, f"{model}:latest"} if ":" not in model else {model}
    try:
        listed = ollama.Client(host=host, timeout=timeout).list().models
    except Exception as exc:  # connection refused, timeouts, HTTP errors: all mean "unknown here"
        log.warning("cannot list the models of Ollama at %s: %s", host or "OLLAMA_HOST", exc)
        return None
    for entry in listed:
        if (entry.model or "") in wanted and entry.digest:
            return entry.digest
    log.warning("Ollama at %s does not list the model %s", host or "OLLAMA_HOST", model)
    return None


def resolve_identity(agent: str, namespace: str, agent_url: str, ollama_host: str | None) -> ModelIdentity:
    model = agent_model(agent_url)
    digest = ollama_digest(model, ollama_host)
    if digest is not None:
        return ModelIdentity(agent, namespace, agent_url, model, digest, FROM_OLLAMA)
    log.warning("no digest for %s: identifying the model by its name (summaries are redone once a digest is known)", model)
    return ModelIdentity(agent, namespace, agent_url, model, f"name:{model}", FROM_NAME)
