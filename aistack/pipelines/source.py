"""Where the generator finds TaskOrchestrations: a folder of manifests, or the cluster.

Parsing a DAG file must be fast and must never hang or fail because a cluster is down:
cluster listings use short timeouts, and when the cluster cannot be reached the last good
listing is served (with a warning) from a snapshot on disk. The snapshot is only a fallback:
a parse requested right after `kubectl apply` must see the new resource. A folder's manifests
are validated through a cache keyed by each file's content, since Airflow re-parses the DAG
file every 30 s or so and most files have not changed since the last time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aistack import settings
from aistack.files import write_atomic
from aistack.pipelines.plan import parse_dag_id
from aistack.resources import FieldError, TaskOrchestration

log = logging.getLogger(__name__)

CLUSTER_TIMEOUT = (2.0, 5.0)  # connect, read seconds


@dataclass
class InvalidOrchestration:
    namespace: str
    name: str
    where: str
    errors: list[FieldError]


@dataclass
class Snapshot:
    valid: list[TaskOrchestration] = field(default_factory=list)
    invalid: list[InvalidOrchestration] = field(default_factory=list)
    source: str = ""
    stale: bool = False


def load(only: str | None = None) -> Snapshot:
    """All TaskOrchestrations; with `only` (a generated dag_id), the cluster is asked for that one alone."""
    folder = settings.orchestrations_path()
    if folder is not None:
        return from_folder(folder)
    target = parse_dag_id(only) if only else None
    return from_cluster(target)


def from_folder(folder: Path) -> Snapshot:
    from aistack.resources.validation import validate_paths

    result = validate_paths([folder], check_references=False, cache=_validated_cache_file(folder))
    snapshot = Snapshot(source=str(folder))
    snapshot.valid = [r for _, r in result.resources if isinstance(r, TaskOrchestration)]
    for problem in result.problems:
        data = problem.document.data if isinstance(problem.document.data, dict) else {}
        if data.get("kind") not in (None, TaskOrchestration.KIND):
            continue
        namespace, name = identity(data)
        where = problem.document.where
        # A document without a name (empty, unreadable, generateName) is told apart by its place.
        snapshot.invalid.append(InvalidOrchestration(namespace, f"?({where})" if name == "?" else name, where, problem.errors))
    return snapshot


def identity(item: Any) -> tuple[str, str]:
    """(namespace, name) of any document, however malformed, so it can be reported by name:
    "?" where the name is missing or not a string (a `generateName` is never resolved here)."""
    meta = item.get("metadata") if isinstance(item, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    namespace, name = meta.get("namespace"), meta.get("name")
    return (namespace if isinstance(namespace, str) and namespace else "default", name if isinstance(name, str) and name else "?")


def _cache_file() -> Path:
    return settings.data_dir() / "cache" / "taskorchestrations.json"


def _validated_cache_file(folder: Path | None) -> Path:
    """One validation cache per folder (and one for the cluster), so loaders of different sources
    do not evict each other's."""
    digest = hashlib.sha256(str(folder.resolve() if folder else "cluster").encode()).hexdigest()[:16]
    return settings.data_dir() / "cache" / f"manifests-{digest}.pickle"


def from_cluster(target: tuple[str, str] | None = None) -> Snapshot:
    cache = _cache_file()
    try:
        from kubernetes import client

        from aistack.kube.client import api_client

        api = client.CustomObjectsApi(api_client())
        if target is not None:
            try:
                item = api.get_namespaced_custom_object("ai.stack", "v1alpha1", target[0], TaskOrchestration.PLURAL, target[1], _request_timeout=CLUSTER_TIMEOUT)
                return _from_items([item], "cluster", stale=False)
            except client.ApiException as exc:
                if exc.status != 404:  # not found by that name (e.g. a shortened long name): list them all
                    raise
        listing = api.list_cluster_custom_object("ai.stack", "v1alpha1", TaskOrchestration.PLURAL, _request_timeout=CLUSTER_TIMEOUT)
        items = listing.get("items", [])
    except Exception as exc:  # unreachable, no kubeconfig, no CRD: serve the last good listing
        if cache.exists():
            log.warning("cannot list TaskOrchestrations (%s): serving the last good listing from %s", exc, cache)
            return _from_items(json.loads(cache.read_text()), "cluster (last good listing)", stale=True)
        log.warning("cannot list TaskOrchestrations (%s) and there is no earlier listing: no pipelines", exc)
        return Snapshot(source="cluster (unreachable)", stale=True)
    write_atomic(cache, json.dumps(items))
    return _from_items(items, "cluster", stale=False)


def _from_items(items: list[dict[str, Any]], source: str, stale: bool) -> Snapshot:
    """The listing's resources, validated through a cache by uid and resourceVersion (a parse
    re-validates only the objects written since the last one)."""
    from aistack.resources.validation import OutcomeCache

    snapshot = Snapshot(source=source, stale=stale)
    store = OutcomeCache(_validated_cache_file(None))
    for item in items:
        namespace, name = identity(item)
        try:
            found = store.parsed(item)
        except Exception as exc:  # a validator bug must not hide the other resources
            log.exception("TaskOrchestration %s/%s: validation failed", namespace, name)
            found = [FieldError("", f"could not be validated: {type(exc).__name__}: {exc}")]
        if isinstance(found, TaskOrchestration):
            snapshot.valid.append(found)
        elif isinstance(found, list):
            snapshot.invalid.append(InvalidOrchestration(namespace, name, f"cluster:{namespace}/{name}", found))
    store.save()
    return snapshot
