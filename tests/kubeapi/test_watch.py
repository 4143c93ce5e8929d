"""Watch semantics with the sync and asyncio Kubernetes clients."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from typing import Any

import kubernetes_asyncio
import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.kubeapi.server import KubeAPIServer
from tests.kubeapi.support import eventually

pytestmark = pytest.mark.timeout(30)


def configmap(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def async_configmap(name: str) -> kubernetes_asyncio.client.V1ConfigMap:
    return kubernetes_asyncio.client.V1ConfigMap(metadata=kubernetes_asyncio.client.V1ObjectMeta(name=name))


def events(core: client.CoreV1Api, **kwargs: Any) -> list[tuple[str, str]]:
    """(type, name) of every event until the server-side timeout ends the stream."""
    stream = watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=1, **kwargs)
    return [(e["type"], e["object"].metadata.name) for e in stream]


class Collector:
    """Runs a watch in a thread so the test can write while it streams."""

    def __init__(self, core: client.CoreV1Api, **kwargs: Any) -> None:
        self.watch = watch.Watch()
        self.seen: list[tuple[str, str, str]] = []
        self.error: BaseException | None = None
        self.stopped = False
        self._thread = threading.Thread(target=self._run, args=(core, kwargs), daemon=True)
        self._thread.start()

    def _run(self, core: client.CoreV1Api, kwargs: dict[str, Any]) -> None:
        try:
            for event in self.watch.stream(core.list_namespaced_config_map, "default", **kwargs):
                obj = event["object"]
                self.seen.append((event["type"], obj.metadata.name, obj.metadata.resource_version))
        except BaseException as exc:  # surfaced by the test through .error
            if not self.stopped:  # Watch.stop() shuts the socket down under the reader
                self.error = exc

    def wait_for(self, count: int) -> None:
        eventually(lambda: len(self.seen) >= count)

    def stop(self) -> None:
        self.stopped = True
        self.watch.stop()
        self._thread.join(timeout=5)


def test_live_events(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    start = core.list_namespaced_config_map("default").metadata.resource_version
    collector = Collector(core, resource_version=start, timeout_seconds=5)
    time.sleep(0.2)
    created = core.create_namespaced_config_map("default", configmap("live"))
    patched = core.patch_namespaced_config_map("live", "default", {"data": {"k": "v"}})
    core.delete_namespaced_config_map("live", "default")
    collector.wait_for(3)
    collector.stop()
    kinds = [(t, n) for t, n, _ in collector.seen]
    assert kinds == [("ADDED", "live"), ("MODIFIED", "live"), ("DELETED", "live")]
    versions = [int(rv) for _, _, rv in collector.seen]
    assert versions[0] == int(created.metadata.resource_version)
    assert versions[1] == int(patched.metadata.resource_version)
    assert versions[2] > versions[1]  # deletion gets its own resourceVersion


def test_initial_state_then_resume(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map("default", configmap("old"))
    checkpoint = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", configmap("new"))
    core.delete_namespaced_config_map("old", "default")
    assert events(core) == [("ADDED", "new")]
    assert events(core, resource_version="0") == [("ADDED", "new")]
    assert events(core, resource_version=checkpoint) == [("ADDED", "new"), ("DELETED", "old")]


def test_timeout_seconds_ends_the_stream(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    began = time.monotonic()
    assert events(core, resource_version=rv) == []
    assert 0.9 <= time.monotonic() - began < 3


def test_compacted_history_is_gone(api_client: client.ApiClient, kube_api: KubeAPIServer) -> None:
    core = client.CoreV1Api(api_client)
    old = core.create_namespaced_config_map("default", configmap("a")).metadata.resource_version
    core.create_namespaced_config_map("default", configmap("b"))
    kube_api.compact()
    raw = core.list_namespaced_config_map("default", watch=True, resource_version=old, _preload_content=False)
    first = json.loads(raw.readline())
    assert first["type"] == "ERROR"
    assert (first["object"]["code"], first["object"]["reason"]) == (410, "Expired")
    assert first["object"]["message"].startswith(f"too old resource version: {old} (")
    with pytest.raises(ApiException) as gone:
        events(core, resource_version=old)
    assert gone.value.status == 410


def test_compacted_history_is_gone_asyncio(kube_api: KubeAPIServer) -> None:
    async def scenario() -> tuple[list[str], int]:
        async with kubernetes_asyncio.client.ApiClient(kube_api.asyncio_configuration()) as api:
            core = kubernetes_asyncio.client.CoreV1Api(api)
            created = await core.create_namespaced_config_map("default", async_configmap("a"))
            old = created.metadata.resource_version
            await core.create_namespaced_config_map("default", async_configmap("b"))
            seen: list[str] = []
            async with kubernetes_asyncio.watch.Watch() as w:
                async for event in w.stream(core.list_namespaced_config_map, "default", resource_version="0", timeout_seconds=1):
                    seen.append(event["object"].metadata.name)
            kube_api.compact()
            with pytest.raises(kubernetes_asyncio.client.ApiException) as gone:
                async with kubernetes_asyncio.watch.Watch() as w:
                    async for _ in w.stream(core.list_namespaced_config_map, "default", resource_version=old, timeout_seconds=1):
                        pass
            return seen, gone.value.status

    seen, status = asyncio.run(scenario())
    assert seen == ["a", "b"]
    assert status == 410


def test_selectors_translate_membership(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", configmap("x", tier="db"))
    core.patch_namespaced_config_map("x", "default", {"metadata": {"labels": {"tier": "web"}}})
    core.patch_namespaced_config_map("x", "default", {"data": {"k": "v"}})
    core.patch_namespaced_config_map("x", "default", {"metadata": {"labels": {"tier": "db"}}})
    core.create_namespaced_config_map("default", configmap("y", tier="web"))
    assert events(core, resource_version=start, label_selector="tier=web") == [
        ("ADDED", "x"),
        ("MODIFIED", "x"),
        ("DELETED", "x"),
        ("ADDED", "y"),
    ]
    assert events(core, resource_version=start, field_selector="metadata.name=y") == [("ADDED", "y")]
    assert events(core, label_selector="tier in (web)") == [("ADDED", "y")]


def test_bookmarks() -> None:
    with KubeAPIServer(bookmark_interval=0.2) as server, server.sync_api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map("default", configmap("a"))
        stream = watch.Watch().stream(core.list_namespaced_config_map, "default", allow_watch_bookmarks=True, timeout_seconds=1)
        seen = [(e["type"], e["raw_object"]["metadata"]["resourceVersion"]) for e in stream]
    assert seen[0][0] == "ADDED"
    bookmarks = [rv for kind, rv in seen if kind == "BOOKMARK"]
    assert len(bookmarks) >= 2
    assert bookmarks[-1] == seen[0][1]


@pytest.mark.parametrize("abort", [True, False])
def test_drop_watches(api_client: client.ApiClient, kube_api: KubeAPIServer, abort: bool) -> None:
    core = client.CoreV1Api(api_client)
    response = core.list_namespaced_config_map("default", watch=True, _preload_content=False)
    outcome: dict[str, Any] = {}

    def read() -> None:
        try:
            outcome["lines"] = [line for line in response.stream(1024)]
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError) as exc:
            outcome["error"] = exc

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    eventually(lambda: kube_api.drop_watches(abort=abort) == 1)
    reader.join(timeout=5)
    assert not reader.is_alive()
    if abort:
        assert "error" in outcome
    else:
        assert outcome.get("lines") == []


def test_many_clients_at_once(kube_api: KubeAPIServer) -> None:
    apis = [kube_api.sync_api_client() for _ in range(4)]

    def create(i: int) -> str:
        created = client.CoreV1Api(apis[i % 4]).create_namespaced_config_map("default", configmap(f"c{i}"))
        return str(created.metadata.name)

    try:
        start = client.CoreV1Api(apis[0]).list_namespaced_config_map("default").metadata.resource_version
        collectors = [Collector(client.CoreV1Api(api), resource_version=start, timeout_seconds=10) for api in apis]
        time.sleep(0.2)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            names = list(pool.map(create, range(40)))
        assert sorted(names) == sorted(f"c{i}" for i in range(40))
        for collector in collectors:
            collector.wait_for(40)
            collector.stop()
            assert collector.error is None
            versions = [int(rv) for _, _, rv in collector.seen]
            assert versions == sorted(versions)
    finally:
        for api in apis:
            api.close()
