"""The pipelines' DAGs as an earlier parse built them, kept between parses of the DAG file.

Airflow parses the generator's DAG file again every 30 s or so, in a fresh process, and most
pipelines have not changed since the last time. Building a DAG costs Airflow's own per-task work
(operator __init__s, attribute tracking, dependency bookkeeping): 1.6 s for 1,000 pipelines of 10
steps. Restoring the same DAGs from a pickle costs about a tenth of that; Airflow's operators
are made to be pickled (BaseOperator has __getstate__/__setstate__).

An entry is keyed by the whole validated resource (its JSON), and the cache by everything else a
DAG's build reads (`_fingerprint`): aistack's code and the provider's, the versions of Python,
Airflow and pydantic, the AIRFLOW__* and AISTACK_* settings and the Airflow configuration file.
So an edited resource, a code change or another configuration builds afresh, never serves a
stale DAG. A DAG that cannot be pickled is built on every parse; one that cannot be restored is
rebuilt. The file is read and written as `aistack.pickles` says (this user's only, atomically).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path

import airflow
import pydantic
from airflow.sdk import DAG

from aistack import pickles, settings
from aistack.resources import TaskOrchestration

log = logging.getLogger(__name__)


class DagCache:
    """One source's DAGs (a folder's, or the cluster's), as pickles by resource."""

    def __init__(self, source: str) -> None:
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        self.path = settings.data_dir() / "cache" / f"dags-{digest}.pickle"
        self.header = _fingerprint()
        self.stored = pickles.read(self.path, self.header)
        self.seen: dict[str, bytes] = {}

    def dag(self, orchestration: TaskOrchestration, build: Callable[[TaskOrchestration], DAG]) -> DAG:
        """The resource's DAG: restored when this resource's DAG was kept, else built (and kept)."""
        key = hashlib.sha256(orchestration.model_dump_json().encode()).hexdigest()
        kept = self.stored.get(key)
        if kept is not None:
            try:
                dag = pickle.loads(kept)
            except Exception as exc:  # written by this code, so not expected: build it again
                log.warning("TaskOrchestration %s/%s: cannot restore its kept DAG (%s): building it", orchestration.namespace, orchestration.name, exc)
            else:
                if isinstance(dag, DAG):
                    self.seen[key] = kept
                    return dag
        dag = build(orchestration)
        try:
            self.seen[key] = pickle.dumps(dag, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # something in it cannot be pickled: it is built on every parse
            log.debug("TaskOrchestration %s/%s: its DAG cannot be kept: %s", orchestration.namespace, orchestration.name, exc)
        return dag

    def save(self) -> None:
        """Keep this parse's DAGs (and only those: a deleted resource's DAG goes)."""
        if self.seen.keys() != self.stored.keys():
            pickles.write(self.path, self.header, self.seen)


def _fingerprint() -> bytes:
    """What a DAG's build reads besides its resource; the settings are read afresh on each call."""
    environment = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith(("AIRFLOW__", "AISTACK_")))
    config = _airflow_config_file()
    config_text = config.read_text(errors="replace") if config.is_file() else ""
    return pickles.fingerprint(
        [], pickles.code_fingerprint(), sys.version, f"airflow {airflow.__version__}", f"pydantic {pydantic.VERSION}", *environment, config_text
    )


def _airflow_config_file() -> Path:
    explicit = os.environ.get("AIRFLOW_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("AIRFLOW_HOME") or "~/airflow").expanduser() / "airflow.cfg"
