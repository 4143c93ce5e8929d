"""The local agent registry: which agents `aistack agents serve` runs here, and where.

Airflow running on the same machine finds local agents through this file instead of a
cluster's Services: `<data dir>/agents/registry.json`, shaped

    {"agents": [{"namespace": "default", "name": "qa-agent", "url": "http://127.0.0.1:8101",
                 "cardUrl": "http://127.0.0.1:8101/.well-known/agent-card.json",
                 "model": "qa-model:1.0.0"}]}

Several `serve` processes may share it: every change is a read-modify-write under an exclusive
lock, written atomically (temporary file, then rename), and a process removes only its own
entries when it stops. An agent served again under the same namespace/name replaces its entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aistack.files import write_atomic
from aistack.settings import data_dir


def registry_path() -> Path:
    return data_dir() / "agents" / "registry.json"


@dataclass(frozen=True)
class RegistryEntry:
    namespace: str
    name: str
    url: str
    card_url: str
    model: str

    def to_json(self) -> dict[str, str]:
        return {"namespace": self.namespace, "name": self.name, "url": self.url, "cardUrl": self.card_url, "model": self.model}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RegistryEntry:
        return cls(data["namespace"], data["name"], data["url"], data["cardUrl"], data.get("model", ""))

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read(path: Path) -> list[RegistryEntry]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except json.JSONDecodeError:
        return []  # a damaged registry is rebuilt by the next writer
    return [RegistryEntry.from_json(item) for item in data.get("agents", []) if isinstance(item, dict) and "name" in item]


def _write(path: Path, entries: list[RegistryEntry]) -> None:
    write_atomic(path, json.dumps({"agents": [e.to_json() for e in entries]}, indent=2) + "\n")


def read_registry(path: Path | None = None) -> list[RegistryEntry]:
    return _read(path or registry_path())


def lookup(name: str, namespace: str = "default", path: Path | None = None) -> RegistryEntry | None:
    """The entry of a local agent, or None when no `serve` process runs it."""
    return next((e for e in read_registry(path) if e.key == (namespace, name)), None)


def register(entries: Iterable[RegistryEntry], path: Path | None = None) -> None:
    path = path or registry_path()
    new = list(entries)
    keys = {e.key for e in new}
    with _locked(path):
        _write(path, [e for e in _read(path) if e.key not in keys] + new)


def unregister(entries: Iterable[RegistryEntry], path: Path | None = None) -> None:
    """Remove these entries (only if they still point where this process put them)."""
    path = path or registry_path()
    mine = set(entries)
    with _locked(path):
        _write(path, [e for e in _read(path) if e not in mine])
