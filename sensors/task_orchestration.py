"""Notice `kubectl apply` of a TaskOrchestration: a watch in the triggerer and a deferrable sensor.

A *submission* is a TaskOrchestration whose current ``metadata.generation`` has no run yet:
``status.observedGeneration`` is missing or lower. The watcher DAG writes observedGeneration
when it starts a run for that generation, so the cluster itself is the durable record of what
was handled: a trigger that (re)starts lists the resources and reports every pending one
first, then watches for new ones. Nothing is kept in the triggerer that a restart could lose.

Within one trigger a (uid, generation) is reported at most once: a status-only or label-only
change keeps the generation, a dropped watch resumes from the last resourceVersion (bookmarks
included), and a 410 Gone re-lists and reports only what changed in the gap (deletions in the
gap are found by comparing the uids known before and after). Generations that come and go
while nothing watches (v2 then v3 before a re-list) are coalesced into the latest one: the
generated DAG is built from the current spec anyway. A duplicate report can still arise around
a restart (a run started but its status not yet written), which is why the watcher DAG uses a
deterministic run id per (uid, generation): a second trigger of the same run is refused by
Airflow.

Events are plain dicts (they cross the triggerer/worker boundary as JSON)::

    {"type": "submitted", "namespace": "default", "name": "qa", "uid": "...", "generation": 2,
     "resourceVersion": "41"}
    {"type": "deleted",   "namespace": "default", "name": "qa", "uid": "...", "generation": 2,
     "resourceVersion": "57"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from typing import Any

import aiohttp
from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.triggers.base import BaseTrigger, TriggerEvent

from aistack.resources import GROUP, VERSION, TaskOrchestration

log = logging.getLogger(__name__)

SUBMITTED = "submitted"
DELETED = "deleted"
RUN_ID_PREFIX = "k8s__"
PLURAL = TaskOrchestration.PLURAL


def run_id_for(uid: str, generation: int) -> str:
    """The Airflow run id of a (uid, generation): the same submission can never start two runs."""
    return f"{RUN_ID_PREFIX}{uid}__g{generation}"


def is_pending(obj: dict[str, Any]) -> bool:
    """True when the object's current generation has not been handled (no run, no rejection) yet."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    generation = meta.get("generation") or 1
    observed = (obj.get("status") or {}).get("observedGeneration")
    return not isinstance(observed, int) or observed < generation


def event_for(kind: str, obj: dict[str, Any], resource_version: str | None = None) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {
        "type": kind,
        "namespace": meta.get("namespace") or "default",
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "generation": meta.get("generation") or 1,
        "resourceVersion": resource_version or meta.get("resourceVersion", ""),
    }


def _rv_int(value: str | None) -> int | None:
    """resourceVersions are opaque, but etcd's are integers; compare them only when they are."""
    return int(value) if value and value.isdigit() else None


class WatchGone(Exception):
    """The watch's resourceVersion is older than the server's history (410 Gone)."""


class _Known:
    """What one watch knows of each object: its name and the highest generation seen (or reported)."""

    def __init__(self) -> None:
        self.generation: dict[str, int] = {}
        self.names: dict[str, dict[str, Any]] = {}

    def remember(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        uid = meta["uid"]
        self.generation[uid] = max(self.generation.get(uid, 0), meta.get("generation") or 1)
        self.names[uid] = obj

    def is_new_generation(self, obj: dict[str, Any]) -> bool:
        meta = obj["metadata"]
        return (meta.get("generation") or 1) > self.generation.get(meta["uid"], 0)

    def forget(self, uid: str) -> dict[str, Any] | None:
        self.generation.pop(uid, None)
        return self.names.pop(uid, None)


class TaskOrchestrationWatch:
    """The list-then-watch loop, independent of Airflow: ``events()`` yields event dicts.

    ``configuration`` (a kubernetes_asyncio Configuration) or a factory of one; by default the
    in-cluster service account, else the kubeconfig (``kubeconfig``/``context`` or KUBECONFIG).
    ``resume_from`` is a resourceVersion from an earlier watch: pending submissions come from
    the list as always, and the history after it is replayed only for deletions (so a deletion
    between two watcher runs is not lost). ``resource_version`` is where this watch has got to.
    """

    def __init__(
        self,
        *,
        namespace: str | None = None,
        report_deletions: bool = False,
        resume_from: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        configuration: Any = None,
        watch_timeout_seconds: int = 290,
        min_backoff: float = 0.2,
        max_backoff: float = 30.0,
    ) -> None:
        self.namespace = namespace or None
        self.report_deletions = report_deletions
        self.resume_from = resume_from or None
        self.kubeconfig = kubeconfig
        self.context = context
        self.configuration = configuration
        self.watch_timeout_seconds = watch_timeout_seconds
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.resource_version: str | None = None
        self.lists = 0  # how many times the objects were listed (1 + one per 410 Gone)
        self.connects = 0  # how many watch requests were made
        self._known = _Known()

    # -- the client --------------------------------------------------------------------

    async def _configuration(self) -> Any:
        from kubernetes_asyncio import client, config

        if self.configuration is not None:
            return self.configuration() if callable(self.configuration) else self.configuration
        configuration = client.Configuration()
        if not self.kubeconfig and not self.context and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            await config.load_kube_config(
                config_file=self.kubeconfig, context=self.context, client_configuration=configuration
            )
        return configuration

    def _list_call(self, api: Any) -> Callable[..., Any]:
        if self.namespace:
            return lambda **kw: api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, **kw)
        return lambda **kw: api.list_cluster_custom_object(GROUP, VERSION, PLURAL, **kw)

    # -- the loop ----------------------------------------------------------------------

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        from kubernetes_asyncio import client

        async with client.ApiClient(await self._configuration()) as api_client:
            call = self._list_call(client.CustomObjectsApi(api_client))
            failures = 0
            while self.resource_version is None:
                try:
                    for event in await self._relist(call):
                        yield event
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError, client.ApiException) as exc:
                    self._raise_if_fatal(exc)
                    failures += 1
                    await self._backoff(failures, exc)
            if self.resume_from and self.report_deletions:
                async for event in self._replay_deletions(call):
                    yield event
            failures = 0
            while True:
                try:
                    async for event in self._watch_once(call):
                        failures = 0
                        yield event
                    failures = 0  # a clean end (server timeout): reconnect at once
                except WatchGone:
                    log.info("taskorchestrations watch at %s is gone (410): re-listing", self.resource_version)
                    gone = True
                    while gone:
                        try:
                            for event in await self._relist(call):
                                yield event
                            gone = False
                        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, client.ApiException) as exc:
                            self._raise_if_fatal(exc)
                            failures += 1
                            await self._backoff(failures, exc)
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError, client.ApiException) as exc:
                    self._raise_if_fatal(exc)
                    failures += 1
                    await self._backoff(failures, exc)

    @staticmethod
    def _raise_if_fatal(exc: BaseException) -> None:
        """Authentication and authorization errors do not heal by retrying: surface them."""
        if getattr(exc, "status", None) in (401, 403):
            raise exc

    async def _backoff(self, failures: int, exc: BaseException) -> None:
        delay = min(self.max_backoff, self.min_backoff * 2 ** (failures - 1)) * random.uniform(0.75, 1.0)
        log.warning("taskorchestrations watch failed (%s): retrying in %.1fs", exc, delay)
        await asyncio.sleep(delay)

    async def _relist(self, call: Callable[..., Any]) -> list[dict[str, Any]]:
        """List everything: the pending ones, and (after a gap) what was deleted in it."""
        result = await call()
        self.lists += 1
        list_rv = result.get("metadata", {}).get("resourceVersion")
        events = []
        present = {item["metadata"]["uid"] for item in result.get("items", [])}
        for uid in [u for u in self._known.names if u not in present]:
            gone_obj = self._known.forget(uid)
            if self.report_deletions and gone_obj is not None:
                events.append(event_for(DELETED, gone_obj, list_rv))
        for item in result.get("items", []):
            if self._known.is_new_generation(item) and is_pending(item):
                events.append(event_for(SUBMITTED, item))
            self._known.remember(item)
        self.resource_version = list_rv
        return events

    async def _replay_deletions(self, call: Callable[..., Any]) -> AsyncIterator[dict[str, Any]]:
        """History from ``resume_from`` up to the list: only deletions of objects the list lacks."""
        list_rv = _rv_int(self.resource_version)
        if list_rv is None or _rv_int(self.resume_from) is None or _rv_int(self.resume_from) >= list_rv:
            return
        response = await call(
            watch=True, resource_version=self.resume_from, allow_watch_bookmarks=True, timeout_seconds=1,
            _preload_content=False, _request_timeout=(10, 10),
        )
        deleted: dict[str, dict[str, Any]] = {}
        try:
            async with response:
                while True:
                    line = await response.content.readline()
                    if not line:
                        break
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        log.info("cannot replay deletions since %s: %s", self.resume_from, event["object"].get("message"))
                        return
                    obj = event.get("object") or {}
                    rv = _rv_int((obj.get("metadata") or {}).get("resourceVersion"))
                    if rv is None or rv > list_rv or (event.get("type") == "BOOKMARK" and rv >= list_rv):
                        break
                    if event.get("type") == "DELETED" and obj["metadata"]["uid"] not in self._known.names:
                        deleted[obj["metadata"]["uid"]] = obj
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.info("cannot replay deletions since %s: %s", self.resume_from, exc)
        for obj in deleted.values():
            yield event_for(DELETED, obj)

    async def _watch_once(self, call: Callable[..., Any]) -> AsyncIterator[dict[str, Any]]:
        """One watch request from ``resource_version`` until the stream ends or breaks."""
        self.connects += 1
        response = await call(
            watch=True,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_timeout_seconds,
            _preload_content=False,
            # No total limit; a read stalled past the server's timeout (plus a margin) is a dead connection.
            _request_timeout=aiohttp.ClientTimeout(sock_connect=10, sock_read=self.watch_timeout_seconds + 30),
        )
        async with response:
            while True:
                line = await response.content.readline()
                if not line:
                    return
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise WatchGone(obj.get("message", ""))
                    from kubernetes_asyncio.client import ApiException

                    raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if kind in ("ADDED", "MODIFIED"):
                    if self._known.is_new_generation(obj) and is_pending(obj):
                        self._known.remember(obj)
                        self.resource_version = rv
                        yield event_for(SUBMITTED, obj)
                    else:
                        self._known.remember(obj)
                elif kind == "DELETED":
                    known = self._known.forget(obj["metadata"]["uid"])
                    if self.report_deletions and known is not None:
                        self.resource_version = rv
                        yield event_for(DELETED, obj)
                if rv:
                    self.resource_version = rv


class TaskOrchestrationTrigger(BaseTrigger):
    """Fires once with every submission (and, with ``report_deletions``, deletion) it sees.

    It lists first (the pending submissions are reported at once), then watches. The first
    event opens a short window (``batch_seconds``) so that several applies in a row make one
    TriggerEvent: ``{"status": "ok", "events": [...], "resource_version": rv}``; with
    ``idle_timeout``, an empty one after that many quiet seconds; ``{"status": "error",
    "message": ...}`` when the cluster refuses access (401/403). Dropped connections and server
    errors are retried with exponential backoff up to ``max_backoff`` seconds.
    ``resource_version``: see TaskOrchestrationWatch's ``resume_from``. Cluster access: the
    in-cluster service account, else ``kubeconfig``/``context`` or KUBECONFIG.
    """

    def __init__(
        self,
        *,
        namespace: str | None = None,
        report_deletions: bool = False,
        resource_version: str | None = None,
        batch_seconds: float = 0.25,
        idle_timeout: float | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        watch_timeout_seconds: int = 290,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__()
        self.idle_timeout = idle_timeout
        self.namespace = namespace
        self.report_deletions = report_deletions
        self.resource_version = resource_version
        self.batch_seconds = batch_seconds
        self.kubeconfig = kubeconfig
        self.context = context
        self.watch_timeout_seconds = watch_timeout_seconds
        self.max_backoff = max_backoff

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "namespace": self.namespace,
                "report_deletions": self.report_deletions,
                "resource_version": self.resource_version,
                "batch_seconds": self.batch_seconds,
                "idle_timeout": self.idle_timeout,
                "kubeconfig": self.kubeconfig,
                "context": self.context,
                "watch_timeout_seconds": self.watch_timeout_seconds,
                "max_backoff": self.max_backoff,
            },
        )

    def make_watch(self) -> TaskOrchestrationWatch:
        return TaskOrchestrationWatch(
            namespace=self.namespace,
            report_deletions=self.report_deletions,
            resume_from=self.resource_version,
            kubeconfig=self.kubeconfig,
            context=self.context,
            watch_timeout_seconds=self.watch_timeout_seconds,
            max_backoff=self.max_backoff,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watch = self.make_watch()
        try:
            batch, resource_version = await collect_batch(watch, self.batch_seconds, self.idle_timeout)
        except Exception as exc:  # a refused watch (401/403) must fail the task, not hang it
            log.exception("taskorchestrations watch failed")
            yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
            return
        yield TriggerEvent({"status": "ok", "events": batch, "resource_version": resource_version})


async def collect_batch(
    watch: TaskOrchestrationWatch, batch_seconds: float, idle_timeout: float | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Wait for the first event, gather what follows within ``batch_seconds``, then stop the watch.

    With ``idle_timeout``, an empty batch comes back when nothing happened for that long.
    Returns the events and the resourceVersion the watch had reached when it stopped: every
    event up to it is in the batch (the watch is stopped before the queue is drained).
    """
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def feed() -> None:
        async for event in watch.events():
            queue.put_nowait(event)

    feeder = asyncio.create_task(feed())
    getter: asyncio.Task[dict[str, Any]] | None = None
    try:
        getter = asyncio.create_task(queue.get())
        done, _ = await asyncio.wait({feeder, getter}, timeout=idle_timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            batch = []
        elif getter not in done:
            feeder.result()  # raises what stopped the watch
            raise RuntimeError("the taskorchestrations watch ended")
        else:
            batch = [getter.result()]
        if batch:
            await asyncio.wait({feeder}, timeout=batch_seconds)
        if feeder.done():
            feeder.result()
    finally:
        for task in (getter, feeder):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    while not queue.empty():
        batch.append(queue.get_nowait())
    return batch, watch.resource_version


class TaskOrchestrationSensor(BaseSensorOperator):
    """Waits for TaskOrchestration submissions; returns them (a list of event dicts).

    Deferrable by default: the watch runs in the triggerer (TaskOrchestrationTrigger). The
    resourceVersion the watch reached is pushed as the XCom ``resource_version``; pass it back
    as ``resource_version`` to the next sensor so that deletions in between are replayed.
    ``idle_timeout`` (seconds) ends the wait with an empty list. Non-deferrable, it polls: each
    poke lists the pending submissions (no deletions).
    """

    template_fields: Sequence[str] = ("namespace", "resource_version")

    def __init__(
        self,
        *,
        namespace: str | None = None,
        report_deletions: bool = False,
        resource_version: str | None = None,
        batch_seconds: float = 0.25,
        idle_timeout: float | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.idle_timeout = idle_timeout
        self.namespace = namespace
        self.report_deletions = report_deletions
        self.resource_version = resource_version
        self.batch_seconds = batch_seconds
        self.kubeconfig = kubeconfig
        self.context = context
        self.deferrable = deferrable

    def trigger(self) -> TaskOrchestrationTrigger:
        return TaskOrchestrationTrigger(
            namespace=self.namespace or None,
            report_deletions=self.report_deletions,
            resource_version=self.resource_version or None,
            batch_seconds=self.batch_seconds,
            idle_timeout=self.idle_timeout,
            kubeconfig=self.kubeconfig,
            context=self.context,
        )

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        timeout = timedelta(seconds=self.timeout) if self.timeout else None
        self.defer(trigger=self.trigger(), method_name="execute_complete", timeout=timeout)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> list[dict[str, Any]]:
        if event.get("status") != "ok":
            raise RuntimeError(f"watching TaskOrchestrations failed: {event.get('message')}")
        events = event["events"]
        context["ti"].xcom_push(key="resource_version", value=event.get("resource_version"))
        self.log.info("%d TaskOrchestration event(s): %s", len(events),
                      ", ".join(f"{e['type']} {e['namespace']}/{e['name']} g{e['generation']}" for e in events))
        return events

    def poke(self, context: Any) -> PokeReturnValue:
        from aistack.kube import api_client
        from kubernetes import client

        with api_client(self.kubeconfig, self.context) as api:
            objects = client.CustomObjectsApi(api)
            if self.namespace:
                result = objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
            else:
                result = objects.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        events = [event_for(SUBMITTED, item) for item in result.get("items", []) if is_pending(item)]
        return PokeReturnValue(is_done=bool(events), xcom_value=events or None)
