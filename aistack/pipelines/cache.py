"""Memoized steps (`cache.ttl`): a step's result reused instead of calling its agent again.

The key is a SHA-256 over everything that decides the answer: the agent (namespace and name),
the model it serves and that model's build digest, the step's instruction, every part of its
message (the run's input it sees, its inputFrom artifacts, a forEach item) and the step's own
answer-shaping spec (the artifacts it declares with their schemas, includeInput, verdict), but
not its retries or timeout. The digest comes from the agent itself (`GET /readyz`, an open path):
the agent knows the Ollama it calls, the pipeline does not, and the agent card has no digest.
Rebuilding the model (another base model, system prompt, template or parameters) changes the
digest, so it misses the cache; an agent that reports no digest is keyed by the model's name.

Entries live in the pipeline's output store (S3 through the Amazon provider, or the output
directory), under `<prefix>_cache/<namespace>/<name>/<step>/<key>.json`: shared by every Airflow
worker, kept across restarts, and within the namespace's own results. Airflow's XCom would not
do: it belongs to one run and is cleared with it. An entry is written whole; one that cannot be
read, does not parse, or is older than the ttl is a miss, never a failure.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from aistack.pipelines.output import Storage, checked_key

log = logging.getLogger(__name__)

CACHE_FOLDER = "_cache"
KEY_VERSION = 1  # bump when what the key covers changes


@dataclass(frozen=True)
class ModelBuild:
    """The model an agent serves and its build digest (`name:<model>` when the agent reports none)."""

    model: str
    digest: str


def model_build(agent_url: str, timeout: float = 10.0) -> ModelBuild | None:
    """What the agent at `agent_url` serves, from its /readyz answer; None when it does not say
    (the step then runs without its cache, and says so)."""
    try:
        answer = httpx.get(agent_url.rstrip("/") + "/readyz", timeout=timeout).json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("cannot learn the model of the agent at %s: %s", agent_url, exc)
        return None
    model = answer.get("model") if isinstance(answer, dict) else None
    if not isinstance(model, str) or not model:
        return None
    digest = answer.get("digest")
    return ModelBuild(model, digest if isinstance(digest, str) and digest else f"name:{model}")


def cache_key(*, namespace: str, agent: str, build: ModelBuild, text: str | None, inputs: Sequence[Any], spec: Mapping[str, Any]) -> str:
    material = {"v": KEY_VERSION, "agent": [namespace, agent], "model": [build.model, build.digest], "text": text, "inputs": inputs, "spec": spec}
    return hashlib.sha256(json.dumps(material, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class CachedResult:
    result: dict[str, Any]
    run_id: str
    created: datetime
    digest: str


class StepCache:
    """One step's entries in a store; `now` is injectable for the ttl's tests."""

    def __init__(self, storage: Storage, folder: str, ttl: timedelta, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.storage, self.folder, self.ttl, self.now = storage, folder, ttl, now

    @classmethod
    def for_step(cls, storage: Storage, prefix: str, namespace: str, name: str, step: str, ttl: timedelta) -> StepCache:
        return cls(storage, checked_key(f"{prefix}{CACHE_FOLDER}/{namespace}/{name}/{step}/"), ttl)

    def _key(self, key: str) -> str:
        return f"{self.folder}{key}.json"

    def get(self, key: str) -> CachedResult | None:
        try:
            raw = self.storage.get(self._key(key))
            if raw is None:
                return None
            entry = json.loads(raw)
            cached = CachedResult(entry["result"], entry["runId"], datetime.fromisoformat(entry["created"]), entry["digest"])
        except Exception as exc:  # unreadable, corrupt, or from another version: a miss
            log.warning("ignoring the cache entry %s: %s", self._key(key), exc)
            return None
        if not isinstance(cached.result, dict) or self.now() - cached.created > self.ttl:
            return None
        return cached

    def put(self, key: str, result: Mapping[str, Any], run_id: str, digest: str) -> None:
        entry = {"result": dict(result), "runId": run_id, "created": self.now().isoformat(), "digest": digest}
        self.storage.put(self._key(key), json.dumps(entry, ensure_ascii=False).encode(), "application/json")
