"""The TaskOrchestration watch and trigger against the test Kubernetes API server: what is reported, once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from aistack.kube.watch import DELETED, SUBMITTED, ResourceWatch
from aistack.pipelines.submissions import PLURAL, is_pending, run_id_for
from aistack_airflow.sensors.task_orchestration import TaskOrchestrationSensor
from aistack_airflow.triggers.task_orchestration import TaskOrchestrationTrigger
from tests.sensors.orchestrations import Cluster, apply, orchestration

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cluster(kube_api, kubectl, repo: Path) -> Cluster:
    kubectl("apply", "-f", str(repo / "crds" / "taskorchestration_crd.yaml"))
    return Cluster(kube_api)


def brief(events: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(e["type"], e["name"], e["generation"]) for e in events]


class Collector:
    """Runs a watch in the test's loop and records what it yields."""

    def __init__(self, watch: ResourceWatch) -> None:
        self.watch = watch
        self.events: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        async for event in self.watch.events():
            self.events.append(event)

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        if self._task.done():
            self._task.result()  # surface a crashed watch
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[str, str, int]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            assert self._task is not None and not self._task.done(), "the watch stopped"
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} events, got {brief(self.events)}")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # and nothing more arrives
        return brief(self.events)

    async def connected(self, connects: int = 1, timeout: float = 10.0) -> None:
        """Wait until the watch request number ``connects`` is open (the list is done)."""
        deadline = time.monotonic() + timeout
        while self.watch.connects < connects:
            assert time.monotonic() < deadline, "the watch did not connect"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)


def watch(kube_api, **kwargs: Any) -> ResourceWatch:
    return ResourceWatch(PLURAL, pending=is_pending, configuration=kube_api.asyncio_configuration, **kwargs)


def test_apply_and_spec_change_are_reported_once_status_and_labels_are_not(kube_api, kubectl, cluster: Cluster):
    async def scenario() -> None:
        async with Collector(watch(kube_api, report_deletions=True)) as seen:
            await seen.connected()
            await asyncio.to_thread(apply, kubectl, orchestration("qa"))
            assert await seen.wait_for(1) == [(SUBMITTED, "qa", 1)]
            uid = cluster.get("qa")["metadata"]["uid"]
            assert seen.events[0]["uid"] == uid and seen.events[0]["namespace"] == "default"

            # The watcher records the run, a controller writes progress, a user labels it: no event.
            cluster.record("qa")
            cluster.api.patch_namespaced_custom_object_status("ai.stack", "v1alpha1", "default", "taskorchestrations", "qa", {"status": {"phase": "Running"}})
            await asyncio.to_thread(kubectl, "label", "taskorchestration", "qa", "team=blue")
            # Re-applying the unchanged manifest is no change either.
            await asyncio.to_thread(apply, kubectl, orchestration("qa"))
            assert await seen.wait_for(1) == [(SUBMITTED, "qa", 1)]

            await asyncio.to_thread(apply, kubectl, orchestration("qa", text="Say goodbye."))
            assert await seen.wait_for(2) == [(SUBMITTED, "qa", 1), (SUBMITTED, "qa", 2)]

            await asyncio.to_thread(kubectl, "delete", "taskorchestration", "qa")
            assert await seen.wait_for(3) == [(SUBMITTED, "qa", 1), (SUBMITTED, "qa", 2), (DELETED, "qa", 2)]
            assert seen.events[2]["uid"] == uid
        assert seen.watch.lists == 1

    asyncio.run(scenario())


def test_deletions_are_reported_only_when_asked(kube_api, cluster: Cluster):
    async def scenario() -> None:
        async with Collector(watch(kube_api)) as seen:
            await seen.connected()
            cluster.create(orchestration("a"))
            assert await seen.wait_for(1) == [(SUBMITTED, "a", 1)]
            cluster.delete("a")
            cluster.create(orchestration("a", text="again"))  # same name, new uid: a new submission
            assert await seen.wait_for(2) == [(SUBMITTED, "a", 1), (SUBMITTED, "a", 1)]
            assert seen.events[0]["uid"] != seen.events[1]["uid"]

    asyncio.run(scenario())


def test_dropped_watch_reconnects_and_misses_nothing(kube_api, cluster: Cluster):
    async def scenario() -> None:
        async with Collector(watch(kube_api, report_deletions=True, min_backoff=1.0)) as seen:
            await seen.connected()
            cluster.create(orchestration("a"))
            cluster.create(orchestration("b"))
            assert await seen.wait_for(2) == [(SUBMITTED, "a", 1), (SUBMITTED, "b", 1)]

            assert kube_api.drop_watches(abort=True) == 1
            # While the client waits to reconnect: a new one, a spec change, a deletion.
            cluster.create(orchestration("c"))
            cluster.set_text("a", "changed")
            cluster.delete("b")
            expected = [(SUBMITTED, "a", 1), (SUBMITTED, "b", 1), (SUBMITTED, "c", 1), (SUBMITTED, "a", 2), (DELETED, "b", 1)]
            assert await seen.wait_for(5) == expected
            assert seen.watch.connects == 2 and seen.watch.lists == 1

            # A clean end of the stream (server-side timeout) resumes too.
            kube_api.drop_watches(abort=False)
            await seen.connected(3)
            cluster.create(orchestration("d"))
            assert await seen.wait_for(6) == [*expected, (SUBMITTED, "d", 1)]

    asyncio.run(scenario())


def test_410_gone_relists_and_reports_only_the_gap(kube_api, cluster: Cluster):
    async def scenario() -> None:
        cluster.create(orchestration("recorded"))
        cluster.record("recorded")
        async with Collector(watch(kube_api, report_deletions=True, min_backoff=1.0)) as seen:
            await seen.connected()
            cluster.create(orchestration("a"))
            cluster.create(orchestration("b"))
            assert await seen.wait_for(2) == [(SUBMITTED, "a", 1), (SUBMITTED, "b", 1)]

            kube_api.drop_watches(abort=True)
            cluster.create(orchestration("c"))
            cluster.set_text("a", "changed")
            cluster.delete("b")
            cluster.set_label("recorded", "team", "red")
            kube_api.compact()  # the client's resourceVersion is now too old: 410 Gone on resume
            assert await seen.wait_for(5) == [
                (SUBMITTED, "a", 1),
                (SUBMITTED, "b", 1),
                (DELETED, "b", 1),
                (SUBMITTED, "a", 2),
                (SUBMITTED, "c", 1),
            ]
            assert seen.watch.lists == 2, "re-listed once after the 410"

            cluster.set_text("c", "changed")  # and it watches again from the new list
            assert (await seen.wait_for(6))[-1] == (SUBMITTED, "c", 2)

    asyncio.run(scenario())


def test_a_restarted_trigger_reports_exactly_the_unrecorded_submissions(kube_api, kubeconfig: Path, cluster: Cluster):
    for name in ("done", "changed", "new"):
        cluster.create(orchestration(name))
    cluster.record("done")
    cluster.record("changed")
    cluster.set_text("changed", "v2")  # generation 2, observedGeneration 1: pending again
    cluster.set_text("done", "v2")
    cluster.record("done")  # generation 2 recorded

    async def fire(**kwargs: Any) -> dict[str, Any]:
        trigger = TaskOrchestrationTrigger(kubeconfig=str(kubeconfig), **kwargs)
        events = [event async for event in trigger.run()]
        assert len(events) == 1, "a trigger fires once"
        return events[0].payload

    first = asyncio.run(fire())
    assert first["status"] == "ok"
    assert sorted(brief(first["events"])) == [(SUBMITTED, "changed", 2), (SUBMITTED, "new", 1)]
    assert int(first["resource_version"]) == kube_api.resource_version

    # The triggerer restarts before the watcher recorded anything: the same two again.
    assert sorted(brief(asyncio.run(fire())["events"])) == [(SUBMITTED, "changed", 2), (SUBMITTED, "new", 1)]

    # One was recorded meanwhile: only the other.
    cluster.record("new")
    assert brief(asyncio.run(fire())["events"]) == [(SUBMITTED, "changed", 2)]

    # All recorded: nothing to report, and the idle timeout ends the wait with an empty batch.
    cluster.record("changed")
    idle = asyncio.run(fire(idle_timeout=0.5))
    assert idle == {"status": "ok", "events": [], "resource_version": str(kube_api.resource_version)}


def test_resuming_replays_deletions_between_two_triggers(kube_api, kubeconfig: Path, cluster: Cluster):
    cluster.create(orchestration("kept"))
    cluster.create(orchestration("short-lived"))
    cluster.record("kept")
    cluster.record("short-lived")
    resume = str(kube_api.resource_version)
    # Between two watcher runs: a deletion, and a submission that was handled already.
    cluster.delete("short-lived")
    cluster.create(orchestration("handled"))
    cluster.record("handled")

    trigger = TaskOrchestrationTrigger(kubeconfig=str(kubeconfig), report_deletions=True, resource_version=resume)

    async def fire() -> dict[str, Any]:
        return [event async for event in trigger.run()][0].payload

    payload = asyncio.run(fire())
    assert brief(payload["events"]) == [(DELETED, "short-lived", 1)]


def test_a_refused_watch_fails_instead_of_retrying(kube_api, kubeconfig: Path, cluster: Cluster, monkeypatch):
    from kubernetes_asyncio.client import ApiException

    async def forbidden(self, call):
        raise ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(ResourceWatch, "_relist", forbidden)

    async def fire() -> dict[str, Any]:
        trigger = TaskOrchestrationTrigger(kubeconfig=str(kubeconfig))
        return [event async for event in trigger.run()][0].payload

    payload = asyncio.run(fire())
    assert payload["status"] == "error" and "403" in payload["message"]


def test_trigger_round_trips_through_serialization():
    trigger = TaskOrchestrationTrigger(namespace="team-a", report_deletions=True, resource_version="42", batch_seconds=0.1)
    path, kwargs = trigger.serialize()
    assert path == "aistack_airflow.triggers.task_orchestration.TaskOrchestrationTrigger"
    assert TaskOrchestrationTrigger(**kwargs).serialize() == (path, kwargs)


def test_sensor_defers_to_the_trigger_and_returns_the_events():
    sensor = TaskOrchestrationSensor(task_id="wait", namespace="team-a", report_deletions=True, resource_version="7")
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, TaskOrchestrationTrigger)
    assert (trigger.namespace, trigger.report_deletions, trigger.resource_version) == ("team-a", True, "7")
    assert deferred.value.method_name == "execute_complete"

    pushed = {}

    class TI:
        def xcom_push(self, key, value):
            pushed[key] = value

    events = [{"type": SUBMITTED, "namespace": "team-a", "name": "x", "uid": "u", "generation": 1, "resourceVersion": "9"}]
    assert sensor.execute_complete({"ti": TI()}, {"status": "ok", "events": events, "resource_version": "9"}) == events
    assert pushed == {"resource_version": "9"}
    with pytest.raises(RuntimeError, match="Forbidden"):
        sensor.execute_complete({"ti": TI()}, {"status": "error", "message": "Forbidden"})


def test_pending_and_run_id_rules():
    assert is_pending({"metadata": {"generation": 1}})
    assert is_pending({"metadata": {"generation": 3}, "status": {"observedGeneration": 2}})
    assert not is_pending({"metadata": {"generation": 3}, "status": {"observedGeneration": 3}})
    assert not is_pending({"metadata": {"generation": 1, "deletionTimestamp": "2026-01-01T00:00:00Z"}})
    assert run_id_for("1234-abcd", 2) == "k8s__1234-abcd__g2"
