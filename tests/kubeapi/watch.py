"""``?watch=true`` streams: initial state or history replay, then live events.

Behaves like the apiserver's watch cache: a watch without resourceVersion (or
"0") first gets synthetic ADDED events for what exists; a watch from a given
resourceVersion replays the kept history after it, or gets an ERROR event with
a 410 Expired Status once that history was compacted. Selector watches see an
object entering/leaving the selection as ADDED/DELETED, as real watches do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .api import present
from .errors import APIError, bad_request
from .resources import ResourceType
from .selectors import field_predicate, label_predicate
from .store import Closed, Object, Store, StoredEvent
from .tables import to_table

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass(frozen=True)
class WatchQuery:
    namespace: str | None
    label_selector: str | None = None
    field_selector: str | None = None
    resource_version: str | None = None
    timeout_seconds: float | None = None
    bookmarks: bool = False
    send_initial_events: bool = False
    # ``kubectl get -w`` asks for each event's object as a one-row Table.
    as_table: bool = False
    include_object: str = "Metadata"


def _translate(event: StoredEvent, visible: Callable[[Object], bool]) -> tuple[str, Object] | None:
    if event.type == "DELETED":
        return ("DELETED", event.obj) if visible(event.obj) else None
    now_in = visible(event.obj)
    was_in = event.prev is not None and visible(event.prev)
    if now_in:
        return ("MODIFIED" if was_in else "ADDED", event.obj)
    if was_in:
        return ("DELETED", event.obj)
    return None


async def serve_watch(request: web.Request, store: Store, rt: ResourceType, query: WatchQuery, bookmark_interval: float) -> web.StreamResponse:
    matches_labels = label_predicate(query.label_selector)
    matches_fields = field_predicate(query.field_selector, rt.kind, rt.selectable_fields)

    def visible(obj: Object) -> bool:
        in_namespace = query.namespace is None or obj["metadata"].get("namespace") == query.namespace
        return in_namespace and matches_labels(obj) and matches_fields(obj)

    start = _start_revision(query.resource_version)
    # Subscribing and snapshotting happen with no await in between, so the
    # live queue starts exactly where the snapshot or replay ends.
    subscription = store.subscribe(rt.resource)
    try:
        backlog: list[tuple[str, Object]] = []
        failure: APIError | None = None
        if start is None or query.send_initial_events:
            backlog = [("ADDED", o) for o in store.objects(rt.resource, query.namespace) if visible(o)]
        else:
            try:
                replay = store.events_after(rt.resource, start)
                backlog = [t for t in (_translate(e, visible) for e in replay) if t is not None]
            except APIError as exc:
                failure = exc
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        sender = _Sender(response, rt, query)
        if failure is not None:
            await sender.send("ERROR", failure.status())
            return response
        try:
            for kind, obj in backlog:
                await sender.send_object(kind, obj)
            if query.send_initial_events and query.bookmarks:
                await sender.bookmark(store.revision, initial_end=True)
            await _pump(sender, subscription.queue, visible, query, bookmark_interval, store, request)
        except ConnectionResetError:  # the client went away: its watch simply ends, as on a real API server
            pass
        return response
    finally:
        store.unsubscribe(subscription)


def _start_revision(text: str | None) -> int | None:
    if text in (None, "", "0"):
        return None
    try:
        return int(text)
    except ValueError:
        raise bad_request(f'invalid resource version "{text}"') from None


async def _pump(
    sender: _Sender,
    queue: asyncio.Queue[StoredEvent | Closed],
    visible: Callable[[Object], bool],
    query: WatchQuery,
    bookmark_interval: float,
    store: Store,
    request: web.Request,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + query.timeout_seconds if query.timeout_seconds else None
    next_bookmark = loop.time() + bookmark_interval if query.bookmarks else None
    while True:
        wakeups = [t for t in (deadline, next_bookmark) if t is not None]
        wait = max(0.0, min(wakeups) - loop.time()) if wakeups else None
        try:
            item = await asyncio.wait_for(queue.get(), wait)
        except TimeoutError:
            if deadline is not None and loop.time() >= deadline:
                return
            await sender.bookmark(store.revision)
            next_bookmark = loop.time() + bookmark_interval
            continue
        if isinstance(item, Closed):
            if item.abort and request.transport is not None:
                request.transport.abort()
            return
        translated = _translate(item, visible)
        if translated is not None:
            await sender.send_object(*translated)


class _Sender:
    def __init__(self, response: web.StreamResponse, rt: ResourceType, query: WatchQuery) -> None:
        self.response = response
        self.rt = rt
        self.query = query

    async def send_object(self, kind: str, stored: Object) -> None:
        obj = present(self.rt, stored)
        if self.query.as_table:
            obj = to_table(self.rt, [obj], self.query.include_object, obj["metadata"]["resourceVersion"])
        await self.send(kind, obj)

    async def send(self, kind: str, obj: dict[str, Any]) -> None:
        await self.response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

    async def bookmark(self, revision: int, initial_end: bool = False) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        await self.send("BOOKMARK", {"kind": self.rt.kind, "apiVersion": self.rt.api_version, "metadata": meta})
