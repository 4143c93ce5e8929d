"""Versioned object storage with an event history, standing in for etcd.

One global counter provides resourceVersions, like etcd revisions. Stored
objects are never mutated after being written, so events and list results can
share them safely. The store is owned by the server's event loop; callers from
other threads must hop onto the loop first.
"""

from __future__ import annotations

import asyncio
import collections
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import gone
from .resources import GroupResource

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Object = dict[str, Any]


@dataclass(frozen=True)
class StoredEvent:
    rv: int
    resource: GroupResource
    type: EventType
    obj: Object
    # The object as it was before this event; lets watches with selectors
    # turn a MODIFIED into ADDED/DELETED when an object enters or leaves the selection.
    prev: Object | None


class Closed:
    """Sentinel queued to a subscription to end its watch.

    ``abort`` drops the TCP connection (a crashed apiserver or network blip);
    otherwise the stream ends cleanly like a server-side timeout.
    """

    def __init__(self, abort: bool) -> None:
        self.abort = abort


@dataclass(eq=False)
class Subscription:
    resource: GroupResource
    queue: asyncio.Queue[StoredEvent | Closed] = field(default_factory=asyncio.Queue)


class Store:
    def __init__(self, history_limit: int = 1000) -> None:
        self.revision = 0
        # Events at or below this revision are gone from the history.
        self.compacted = 0
        self._history: collections.deque[StoredEvent] = collections.deque(maxlen=history_limit)
        self._objects: dict[GroupResource, dict[tuple[str, str], Object]] = {}
        self._subscriptions: set[Subscription] = set()
        # Synchronous observers (pod runtime, kubelet hook) called after each event.
        self.listeners: list[Callable[[StoredEvent], None]] = []

    # -- reads ---------------------------------------------------------------

    def get(self, resource: GroupResource, namespace: str, name: str) -> Object | None:
        return self._objects.get(resource, {}).get((namespace, name))

    def objects(self, resource: GroupResource, namespace: str | None = None) -> list[Object]:
        bucket = self._objects.get(resource, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def resources(self) -> list[GroupResource]:
        return list(self._objects)

    # -- writes --------------------------------------------------------------

    def write(self, resource: GroupResource, obj: Object) -> Object:
        """Store a new or changed object under a fresh resourceVersion."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        bucket = self._objects.setdefault(resource, {})
        prev = bucket.get(key)
        stored = self._stamp(obj)
        bucket[key] = stored
        self._emit(resource, "MODIFIED" if prev is not None else "ADDED", stored, prev)
        return stored

    def delete(self, resource: GroupResource, namespace: str, name: str) -> Object | None:
        """Remove an object; the DELETED event carries its last state at a new revision."""
        prev = self._objects.get(resource, {}).pop((namespace, name), None)
        if prev is None:
            return None
        final = self._stamp(prev)
        self._emit(resource, "DELETED", final, prev)
        return final

    def _stamp(self, obj: Object) -> Object:
        self.revision += 1
        stamped = copy.deepcopy(obj)
        stamped["metadata"]["resourceVersion"] = str(self.revision)
        return stamped

    def _emit(self, resource: GroupResource, kind: EventType, obj: Object, prev: Object | None) -> None:
        event = StoredEvent(self.revision, resource, kind, obj, prev)
        if len(self._history) == self._history.maxlen:
            self.compacted = self._history[0].rv
        self._history.append(event)
        for sub in list(self._subscriptions):
            if sub.resource == resource:
                sub.queue.put_nowait(event)
        for listener in list(self.listeners):
            listener(event)

    # -- watch support ---------------------------------------------------------

    def events_after(self, resource: GroupResource, rv: int) -> Iterator[StoredEvent]:
        """History replay for a watch resuming at ``rv``; 410 when compacted away."""
        if rv < self.compacted:
            raise gone(f"too old resource version: {rv} ({self.compacted + 1})")
        return (e for e in list(self._history) if e.rv > rv and e.resource == resource)

    def subscribe(self, resource: GroupResource) -> Subscription:
        sub = Subscription(resource)
        self._subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    def close_watches(self, resource: GroupResource | None = None, abort: bool = False) -> int:
        closing = [s for s in self._subscriptions if resource is None or s.resource == resource]
        for sub in closing:
            sub.queue.put_nowait(Closed(abort))
            self._subscriptions.discard(sub)
        return len(closing)

    def compact(self, rv: int | None = None) -> int:
        """Forget history up to ``rv`` (default: everything), as etcd compaction does."""
        target = self.revision if rv is None else min(rv, self.revision)
        self.compacted = max(self.compacted, target)
        while self._history and self._history[0].rv <= self.compacted:
            self._history.popleft()
        return self.compacted
