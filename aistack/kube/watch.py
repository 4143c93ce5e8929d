"""A list-then-watch loop over one aistack kind, with kubernetes_asyncio, that reports each
(uid, generation) it is told to at most once, and each request an object carries once.

Shared by the TaskOrchestration watcher (triggers/task_orchestration.py: a *submission* is a
generation without a run; a *resume* request is an ``ai.stack/resume`` annotation value its
status has not recorded) and the asset watchers of model definitions and agents
(triggers/resource_changes.py: a *change* is a generation not seen before). The loop resumes from
the last resourceVersion after a dropped watch (bookmarks included), re-lists on 410 Gone and
reports only what changed in the gap, and reconnects with exponential backoff; 401/403 are
raised, since they do not heal by retrying.

Events are plain dicts (they cross the triggerer/worker boundary as JSON)::

    {"type": "submitted", "namespace": "default", "name": "qa", "uid": "...", "generation": 2,
     "resourceVersion": "41"}
    {"type": "deleted",   "namespace": "default", "name": "qa", "uid": "...", "generation": 2,
     "resourceVersion": "57"}
    {"type": "resume",    "namespace": "default", "name": "qa", "uid": "...", "generation": 2,
     "resourceVersion": "63", "request": "latest"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp

from aistack.resources import GROUP, VERSION

log = logging.getLogger(__name__)

SUBMITTED = "submitted"
DELETED = "deleted"
RESUME = "resume"


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


def resume_event(obj: dict[str, Any], request: str) -> dict[str, Any]:
    return event_for(RESUME, obj) | {"request": request}


def _rv_int(value: str | None) -> int | None:
    """resourceVersions are opaque, but etcd's are integers; compare them only when they are."""
    return int(value) if value and value.isdigit() else None


class WatchGone(Exception):
    """The watch's resourceVersion is older than the server's history (410 Gone)."""


class _Known:
    """What one watch knows of each object: its name, the highest generation seen (or reported)
    and the last request reported."""

    def __init__(self) -> None:
        self.generation: dict[str, int] = {}
        self.names: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, str] = {}

    def remember(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        uid = meta["uid"]
        self.generation[uid] = max(self.generation.get(uid, 0), meta.get("generation") or 1)
        self.names[uid] = obj

    def is_new_generation(self, obj: dict[str, Any]) -> bool:
        meta = obj["metadata"]
        return (meta.get("generation") or 1) > self.generation.get(meta["uid"], 0)

    def is_new_request(self, obj: dict[str, Any], request: str) -> bool:
        """Whether ``request`` was not reported for the object yet; it is, from now on."""
        uid = obj["metadata"]["uid"]
        if self.requests.get(uid) == request:
            return False
        self.requests[uid] = request
        return True

    def forget(self, uid: str) -> dict[str, Any] | None:
        self.generation.pop(uid, None)
        self.requests.pop(uid, None)
        return self.names.pop(uid, None)


class ResourceWatch:
    """The list-then-watch loop over ``plural``, independent of Airflow: ``events()`` yields event dicts.

    An object is reported when its generation is higher than any this watch knows for its uid
    (``seen`` seeds that knowledge, e.g. from a store that outlives the watch) and ``pending``
    says it still needs handling. ``resume_request`` returns the resume request an object carries
    that still needs handling, or None; each new value is reported once per watch, as a
    ``resume`` event with ``request`` (the handler checks the object again: a restarted watch
    reports what its status has not recorded). ``configuration`` (a kubernetes_asyncio
    Configuration) or a factory of one; by default the in-cluster service account, else the
    kubeconfig (``kubeconfig``/``context`` or KUBECONFIG).
    ``resume_from`` is a resourceVersion from an earlier watch: pending submissions come from
    the list as always, and the history after it is replayed only for deletions (so a deletion
    between two watcher runs is not lost). ``resource_version`` is where this watch has got to.
    """

    def __init__(
        self,
        plural: str,
        *,
        pending: Callable[[dict[str, Any]], bool] = lambda obj: not (obj.get("metadata") or {}).get("deletionTimestamp"),
        resume_request: Callable[[dict[str, Any]], str | None] = lambda obj: None,
        seen: Mapping[str, int] | None = None,
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
        self.plural = plural
        self.pending = pending
        self.resume_request = resume_request
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
        self._known.generation.update(seen or {})

    @property
    def generations(self) -> dict[str, int]:
        """uid -> the highest generation seen, of the objects that exist (what ``seen`` takes)."""
        return {uid: self._known.generation[uid] for uid in self._known.names}

    # -- the client --------------------------------------------------------------------

    async def _configuration(self) -> Any:
        from kubernetes_asyncio import client, config

        if self.configuration is not None:
            return self.configuration() if callable(self.configuration) else self.configuration
        configuration = client.Configuration()
        if not self.kubeconfig and not self.context and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            await config.load_kube_config(config_file=self.kubeconfig, context=self.context, client_configuration=configuration)
        return configuration

    def _list_call(self, api: Any) -> Callable[..., Any]:
        if self.namespace:
            return lambda **kw: api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, self.plural, **kw)
        return lambda **kw: api.list_cluster_custom_object(GROUP, VERSION, self.plural, **kw)

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
                except (TimeoutError, aiohttp.ClientError, OSError, client.ApiException) as exc:
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
                    log.info("%s watch at %s is gone (410): re-listing", self.plural, self.resource_version)
                    gone = True
                    while gone:
                        try:
                            for event in await self._relist(call):
                                yield event
                            gone = False
                        except (TimeoutError, aiohttp.ClientError, OSError, client.ApiException) as exc:
                            self._raise_if_fatal(exc)
                            failures += 1
                            await self._backoff(failures, exc)
                except (TimeoutError, aiohttp.ClientError, OSError, client.ApiException) as exc:
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
        log.warning("%s watch failed (%s): retrying in %.1fs", self.plural, exc, delay)
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
            events += self._events_of(item)
            self._known.remember(item)
        self.resource_version = list_rv
        return events

    def _events_of(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        """What a listed or changed object reports (before it is remembered): a submission when its
        generation is new and pending, a resume request not reported yet."""
        events = [event_for(SUBMITTED, obj)] if self._known.is_new_generation(obj) and self.pending(obj) else []
        request = self.resume_request(obj)
        if request is not None and self._known.is_new_request(obj, request):
            events.append(resume_event(obj, request))
        return events

    async def _replay_deletions(self, call: Callable[..., Any]) -> AsyncIterator[dict[str, Any]]:
        """History from ``resume_from`` up to the list: only deletions of objects the list lacks."""
        list_rv, resume_rv = _rv_int(self.resource_version), _rv_int(self.resume_from)
        if list_rv is None or resume_rv is None or resume_rv >= list_rv:
            return
        response = await call(
            watch=True,
            resource_version=self.resume_from,
            allow_watch_bookmarks=True,
            timeout_seconds=1,
            _preload_content=False,
            _request_timeout=(10, 10),
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
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
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
                    events = self._events_of(obj)
                    self._known.remember(obj)
                    for reported in events:
                        self.resource_version = rv
                        yield reported
                elif kind == "DELETED":
                    known = self._known.forget(obj["metadata"]["uid"])
                    if self.report_deletions and known is not None:
                        self.resource_version = rv
                        yield event_for(DELETED, obj)
                if rv:
                    self.resource_version = rv


async def collect_batch(watch: ResourceWatch, batch_seconds: float, idle_timeout: float | None = None) -> tuple[list[dict[str, Any]], str | None]:
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
            raise RuntimeError(f"the {watch.plural} watch ended")
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
