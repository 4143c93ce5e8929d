"""The asset watchers' trigger against the test Kubernetes API server: which applies become asset
events (new resources, new generations), which do not (status writes, labels, re-applies), and what
a triggerer restart reports (only what changed while it was down)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk import AssetWatcher

from aistack_airflow.triggers.resource_changes import SEEN_KEY, ResourceChangeTrigger

pytestmark = pytest.mark.timeout(90)

PLURAL = "ollamamodeldefinitions"


class InMemoryAssetStateStore:
    """Test double of the asset state store the triggerer gives a watcher trigger (aget/aset only)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return copy.deepcopy(self.values.get(key, default))

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = copy.deepcopy(value)


@pytest.fixture
def definition(kubectl, repo: Path):
    kubectl("apply", "-f", str(repo / "crds" / "ollamamodeldefinition_crd.yaml"))
    base = yaml.safe_load((repo / "models" / "summarizer" / "model.yaml").read_text())

    def make(name: str, system: str = "You summarize.") -> dict[str, Any]:
        manifest = copy.deepcopy(base)
        manifest["metadata"] = {"name": name, "namespace": "default"}
        manifest["spec"]["build"]["system"] = system
        return manifest

    return make


def apply(kubectl, *manifests: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))


def names(event) -> list[tuple[str, int]]:
    return sorted((c["name"], c["generation"]) for c in event.payload["changes"])


async def quiet(pending: asyncio.Future, seconds: float = 1.5) -> None:
    done, _ = await asyncio.wait({pending}, timeout=seconds)
    assert not done, f"unexpected event: {pending.result().payload if done else None}"


async def stop(pending: asyncio.Future, events) -> None:
    """Stop the trigger as the triggerer does: cancel it where it waits, then close it."""
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pending
    await events.aclose()


def trigger(kube_api, tmp_path: Path, store: InMemoryAssetStateStore) -> ResourceChangeTrigger:
    made = ResourceChangeTrigger(plural=PLURAL, kubeconfig=str(kube_api.write_kubeconfig(tmp_path / "kubeconfig")), batch_seconds=0.3)
    made.asset_state_store = store
    return made


def test_new_resources_and_spec_changes_are_events_status_and_labels_are_not(kube_api, kubectl, definition, tmp_path):
    apply(kubectl, definition("summarizer"))
    store = InMemoryAssetStateStore()

    async def scenario() -> None:
        events = trigger(kube_api, tmp_path, store).run()
        assert names(await asyncio.wait_for(anext(events), 20)) == [("summarizer", 1)], "first start: what exists"

        pending = asyncio.ensure_future(anext(events))
        await asyncio.to_thread(kubectl, "label", PLURAL, "summarizer", "team=blue")
        await asyncio.to_thread(apply, kubectl, definition("summarizer"))  # unchanged re-apply
        await asyncio.to_thread(kubectl, "patch", PLURAL, "summarizer", "--subresource=status", "--type=merge", "-p", '{"status": {"phase": "Building"}}')
        await quiet(pending)

        await asyncio.to_thread(apply, kubectl, definition("summarizer", "You summarize briefly."), definition("analyzer"))
        assert names(await asyncio.wait_for(pending, 20)) == [("analyzer", 1), ("summarizer", 2)], "one event per batch"
        uids = {d["metadata"]["name"]: d["metadata"]["uid"] for d in kube_api.list_objects("ai.stack/v1alpha1", "OllamaModelDefinition")}
        assert store.values[SEEN_KEY] == {uids["summarizer"]: 1}, "a batch is recorded once the next event is asked for"
        nxt = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.5)
        assert store.values[SEEN_KEY] == {uids["summarizer"]: 2, uids["analyzer"]: 1}
        await stop(nxt, events)

    asyncio.run(scenario())


def test_after_a_restart_only_what_changed_while_down_is_reported(kube_api, kubectl, definition, tmp_path):
    apply(kubectl, definition("summarizer"), definition("analyzer"))
    store = InMemoryAssetStateStore()

    async def first_life() -> None:
        events = trigger(kube_api, tmp_path, store).run()
        assert names(await asyncio.wait_for(anext(events), 20)) == [("analyzer", 1), ("summarizer", 1)]
        pending = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.5)  # the batch is recorded, then the triggerer stops
        await stop(pending, events)

    async def second_life() -> None:
        events = trigger(kube_api, tmp_path, store).run()
        assert names(await asyncio.wait_for(anext(events), 20)) == [("summarizer", 2)]
        pending = asyncio.ensure_future(anext(events))
        await quiet(pending)
        await stop(pending, events)

    asyncio.run(first_life())
    apply(kubectl, definition("summarizer", "You summarize in French."))  # while no trigger runs
    kubectl("label", PLURAL, "analyzer", "team=red")
    asyncio.run(second_life())


def test_the_dags_watch_the_cluster_only_when_the_resources_live_there(monkeypatch, repo: Path):
    import importlib
    import sys

    def watchers(module: str) -> list[AssetWatcher]:
        sys.modules.pop(module, None)
        loaded = importlib.import_module(module)
        asset = loaded.DEFINITIONS_ASSET if hasattr(loaded, "DEFINITIONS_ASSET") else loaded.AGENTS_ASSET
        return list(asset.watchers)

    monkeypatch.delenv("AISTACK_MODELS_PATH", raising=False)
    (models,) = watchers("aistack_airflow.dags.ollama_model_builds")
    (agents,) = watchers("aistack_airflow.dags.ollama_agents")
    assert (models.trigger.plural, agents.trigger.plural) == ("ollamamodeldefinitions", "ollamaagents")

    monkeypatch.setenv("AISTACK_MODELS_PATH", str(repo / "models"))
    assert watchers("aistack_airflow.dags.ollama_model_builds") == [] and watchers("aistack_airflow.dags.ollama_agents") == []
