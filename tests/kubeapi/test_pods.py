"""Pods driven by the test acting as kubelet: phases, container states, logs."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.kubeapi.kubectl import Kubectl
from tests.kubeapi.server import KubeAPIServer, KubeletError

pytestmark = pytest.mark.timeout(30)


def pod(name: str, *containers: str) -> dict[str, Any]:
    names = containers or ("base",)
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": c, "image": "python:3.11"} for c in names]}}


def read_log(core: client.CoreV1Api, name: str, **kwargs: Any) -> str:
    # kubernetes 36 returns str(bytes) for preloaded logs (a client bug), so read raw.
    return str(core.read_namespaced_pod_log(name, "default", _preload_content=False, **kwargs).data.decode())


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


def test_phases_produce_kubelet_statuses(core: client.CoreV1Api, kube_api: KubeAPIServer) -> None:
    created = core.create_namespaced_pod("default", pod("p"))
    assert created.status.phase == "Pending"
    kube_api.set_pod_phase("default", "p", "Pending")
    waiting = core.read_namespaced_pod("p", "default").status.container_statuses[0]
    assert waiting.state.waiting.reason == "ContainerCreating"
    kube_api.set_pod_phase("default", "p", "Running")
    running = core.read_namespaced_pod("p", "default")
    assert running.status.phase == "Running" and running.status.pod_ip
    status = running.status.container_statuses[0]
    assert (status.name, status.ready, status.started) == ("base", True, True)
    assert status.state.running.started_at is not None
    kube_api.set_pod_phase("default", "p", "Failed", exit_code=3, message="boom")
    failed = core.read_namespaced_pod("p", "default")
    terminated = failed.status.container_statuses[0].state.terminated
    assert (failed.status.phase, failed.status.message) == ("Failed", "boom")
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert terminated.started_at == status.state.running.started_at
    assert failed.metadata.generation == 1  # status writes never bump generation


def test_succeeded_with_per_container_codes(core: client.CoreV1Api, kube_api: KubeAPIServer) -> None:
    core.create_namespaced_pod("default", pod("multi", "base", "sidecar"))
    kube_api.set_pod_phase("default", "multi", "Succeeded", container_exit_codes={"sidecar": 137})
    statuses = {s.name: s.state.terminated for s in core.read_namespaced_pod("multi", "default").status.container_statuses}
    assert (statuses["base"].exit_code, statuses["base"].reason) == (0, "Completed")
    assert (statuses["sidecar"].exit_code, statuses["sidecar"].reason) == (137, "Error")


def test_log_queries(core: client.CoreV1Api, kube_api: KubeAPIServer) -> None:
    core.create_namespaced_pod("default", pod("logger", "base", "sidecar"))
    with pytest.raises(ApiException) as waiting:
        read_log(core, "logger", container="base")
    assert waiting.value.status == 400
    assert json.loads(waiting.value.body)["message"] == 'container "base" in pod "logger" is waiting to start: ContainerCreating'
    kube_api.set_pod_phase("default", "logger", "Running")
    kube_api.append_pod_log("default", "logger", "one\ntwo\n")
    kube_api.append_pod_log("default", "logger", "three")
    kube_api.append_pod_log("default", "logger", "side\n", container="sidecar")
    with pytest.raises(ApiException) as ambiguous:
        read_log(core, "logger")
    assert json.loads(ambiguous.value.body)["message"] == ("a container name must be specified for pod logger, choose one of: [base sidecar]")
    assert read_log(core, "logger", container="base") == "one\ntwo\nthree\n"
    assert read_log(core, "logger", container="sidecar") == "side\n"
    assert read_log(core, "logger", container="base", tail_lines=1) == "three\n"
    stamped = read_log(core, "logger", container="base", timestamps=True).splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z one", stamped[0])
    time.sleep(1.1)
    kube_api.append_pod_log("default", "logger", "late\n")
    assert read_log(core, "logger", container="base", since_seconds=1) == "late\n"


def test_follow_streams_until_the_container_ends(core: client.CoreV1Api, kube_api: KubeAPIServer) -> None:
    core.create_namespaced_pod("default", pod("follow"))
    kube_api.set_pod_phase("default", "follow", "Running")
    kube_api.append_pod_log("default", "follow", "first\n")
    arrivals: list[tuple[float, str]] = []

    def read() -> None:
        stream = watch.Watch().stream(core.read_namespaced_pod_log, "follow", "default", follow=True)
        for line in stream:
            arrivals.append((time.monotonic(), line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.3)
    kube_api.append_pod_log("default", "follow", "second\n")
    time.sleep(0.3)
    finished_at = time.monotonic()
    kube_api.set_pod_phase("default", "follow", "Succeeded")
    reader.join(timeout=5)
    assert not reader.is_alive(), "follow did not end when the container terminated"
    assert [line for _, line in arrivals] == ["first", "second"]
    assert all(at < finished_at for at, _ in arrivals)  # streamed live, not buffered to the end


def test_kubectl_logs_follow(kubectl: Kubectl, core: client.CoreV1Api, kube_api: KubeAPIServer) -> None:
    core.create_namespaced_pod("default", pod("k"))
    kube_api.set_pod_phase("default", "k", "Running")
    kube_api.append_pod_log("default", "k", "hello\n")
    result: dict[str, str] = {}
    follower = threading.Thread(target=lambda: result.update(out=kubectl("logs", "-f", "k").stdout))
    follower.start()
    time.sleep(0.5)
    kube_api.append_pod_log("default", "k", "world\n")
    kube_api.set_pod_phase("default", "k", "Succeeded")
    follower.join(timeout=10)
    assert result["out"] == "hello\nworld\n"
    table = kubectl("get", "pods", "--no-headers").stdout.split()
    assert table[:3] == ["k", "0/1", "Completed"]


def test_auto_kubelet() -> None:
    def kubelet(server: KubeAPIServer, created: dict[str, Any]) -> None:
        name = created["metadata"]["name"]
        server.set_pod_phase("default", name, "Running")
        server.append_pod_log("default", name, f"running {name}\n")
        server.set_pod_phase("default", name, "Succeeded")

    with KubeAPIServer(on_pod_created=kubelet) as server, server.sync_api_client() as api:
        core = client.CoreV1Api(api)
        start = core.list_namespaced_pod("default").metadata.resource_version
        core.create_namespaced_pod("default", pod("auto"))
        phases = []
        stream = watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=start, timeout_seconds=5)
        for event in stream:
            phases.append(event["object"].status.phase)
            if phases[-1] == "Succeeded":
                break
        assert phases == ["Pending", "Running", "Succeeded"]
        assert read_log(core, "auto") == "running auto\n"
        events = core.list_namespaced_event("default", field_selector="involvedObject.name=auto")
        assert events.items == []


def test_kubelet_errors_are_reported() -> None:
    def broken(server: KubeAPIServer, created: dict[str, Any]) -> None:
        raise RuntimeError("kubelet exploded")

    server = KubeAPIServer(on_pod_created=broken).start()
    try:
        with server.sync_api_client() as api:
            client.CoreV1Api(api).create_namespaced_pod("default", pod("x"))
    finally:
        with pytest.raises(KubeletError, match="kubelet exploded"):
            server.stop()


def test_deleting_a_pod_ends_its_logs(core: client.CoreV1Api, kube_api: KubeAPIServer) -> None:
    core.create_namespaced_pod("default", pod("gone"))
    kube_api.set_pod_phase("default", "gone", "Running")
    response = core.read_namespaced_pod_log("gone", "default", follow=True, _preload_content=False)
    reader = threading.Thread(target=lambda: list(response.stream(1024)), daemon=True)
    reader.start()
    time.sleep(0.2)
    deleted = core.delete_namespaced_pod("gone", "default")
    assert deleted.metadata.name == "gone"
    reader.join(timeout=5)
    assert not reader.is_alive()
