"""Asset watchers of OllamaModelDefinitions and OllamaAgents: `kubectl apply` of one runs the DAG
that builds the model or deploys the agent, without waiting for the DAG's periodic run.

Airflow 3's event-driven scheduling: the assets `aistack://ollamamodeldefinitions` and
`aistack://ollamaagents` each carry an AssetWatcher whose ResourceChangeTrigger runs in the
triggerer for as long as the asset is watched. Every batch of changes it sees becomes one asset
event, and so one run of the DAG scheduled on the asset (ollama_model_builds, ollama_agents).

A change is a (uid, generation) not seen before: a new resource or a new spec. The DAGs write
only status, which keeps the generation, so a build never triggers another build. The
generations seen are kept in the asset's state store (Airflow's per-asset key/value store), so
after a triggerer restart only what changed while it was down is reported, not every resource
again. Deletions are not reported: the DAGs act on what exists. Why not the sensor DAG the
TaskOrchestration watcher uses: these DAGs need "something changed, run once", which is
exactly an asset event; pipelines need one run per submission, with its own run id and status.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from aistack.kube.watch import ResourceWatch, collect_batch

log = logging.getLogger(__name__)

SEEN_KEY = "generations"  # in the asset state store: {uid: highest generation reported}, deleted uids dropped


class ResourceChangeTrigger(BaseEventTrigger):
    """Yields ``{"plural": ..., "changes": [event, ...]}`` for each batch of new or changed resources.

    A batch gathers what arrives within ``batch_seconds`` of its first change, so applying a
    folder of manifests makes one run. Cluster access: the in-cluster service account, else
    ``kubeconfig``/``context`` or KUBECONFIG.
    """

    def __init__(
        self,
        *,
        plural: str,
        namespace: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        batch_seconds: float = 2.0,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__()
        self.plural = plural
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.context = context
        self.batch_seconds = batch_seconds
        self.max_backoff = max_backoff

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "plural": self.plural,
                "namespace": self.namespace,
                "kubeconfig": self.kubeconfig,
                "context": self.context,
                "batch_seconds": self.batch_seconds,
                "max_backoff": self.max_backoff,
            },
        )

    def _store(self) -> Any:
        """The watched asset's state store; None outside a triggerer (then nothing outlives the run)."""
        return getattr(self, "asset_state_store", None)

    async def _seen(self) -> dict[str, int]:
        store = self._store()
        value = await store.aget(SEEN_KEY, {}) if store is not None else {}
        return {str(uid): int(g) for uid, g in value.items()} if isinstance(value, dict) else {}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        seen = await self._seen()
        watch = ResourceWatch(self.plural, seen=seen, namespace=self.namespace, kubeconfig=self.kubeconfig, context=self.context, max_backoff=self.max_backoff)
        while True:
            changes, _ = await collect_batch(watch, self.batch_seconds)
            if not changes:
                continue
            yield TriggerEvent({"plural": self.plural, "changes": changes})
            # Recorded once the event is handed over: a crash in between reports the batch again
            # (at least once), which the DAGs absorb (unchanged models and agents are skipped).
            store = self._store()
            if store is not None:
                await store.aset(SEEN_KEY, watch.generations)
            log.info("%s changed: %s", self.plural, ", ".join(f"{c['namespace']}/{c['name']}" for c in changes))
