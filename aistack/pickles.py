"""Caches kept as pickles: read only when this user wrote them and for the code that reads them.

Two parse-time caches are pickles, because restoring objects is several times faster than
making them again: the validated manifests (`aistack.resources.validation.OutcomeCache`) and the
built pipeline DAGs (the generator's `aistack_airflow.dag_cache`). Unpickling can run code, so
a cache file is read only when it belongs to this user and nobody else can write it; and each
starts with a fingerprint of what produced it (the code, the libraries, the settings), so a
cache from other code is ignored instead of served. A missing, foreign, corrupt or outdated cache
is an empty one: its owner rebuilds and rewrites it, atomically.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aistack.files import write_atomic

__all__ = ["code_fingerprint", "fingerprint", "read", "write"]

PACKAGES = ("aistack", "aistack_airflow", "aistack_airflow.operators", "aistack_airflow.hooks", "aistack_airflow.triggers", "aistack_airflow.sensors")
"""Whose source decides what the caches hold: the core and its Airflow provider."""

log = logging.getLogger(__name__)


def fingerprint(sources: Iterable[Path], *facts: str) -> bytes:
    """A hex SHA-256 of the source files' contents and of the facts (versions, settings) given."""
    digest = hashlib.sha256()
    for fact in facts:
        digest.update(fact.encode() + b"\0")
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest().encode()


@functools.cache
def code_fingerprint() -> str:
    """aistack's and its provider's source, hashed once per process (new code means a new
    process). Found by name, so nothing of the provider (nor Airflow) is imported."""
    sources: list[Path] = []
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec is not None else []:
            pattern = "**/*.py" if package == "aistack" else "*.py"
            sources += sorted(Path(folder).glob(pattern))
    return fingerprint(sources).decode()


def read(path: Path, header: bytes) -> dict[str, Any]:
    """The cache's entries; empty unless the file is this user's, not writable by others, and
    starts with `header`."""
    try:
        with path.open("rb") as handle:
            status = os.fstat(handle.fileno())
            if status.st_uid != os.getuid() or status.st_mode & 0o022 or handle.read(len(header)) != header:
                return {}
            entries = pickle.load(handle)
    except FileNotFoundError:
        return {}
    except Exception as exc:  # truncated, corrupt, unreadable: rebuild
        log.warning("ignoring the cache %s: %s", path, exc)
        return {}
    return entries if isinstance(entries, dict) else {}


def write(path: Path, header: bytes, entries: dict[str, Any]) -> None:
    """Replace the cache, readable by this user only; a failure costs the next parse time, never this one."""
    try:
        write_atomic(path, header + pickle.dumps(entries, protocol=pickle.HIGHEST_PROTOCOL), mode=0o600)
    except Exception as exc:  # a full disk, an unpicklable value
        log.warning("cannot write the cache %s: %s", path, exc)
