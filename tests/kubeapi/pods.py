"""The kubelet's side of pods, driven by tests: phases, container states, logs.

Nothing runs containers here. A test (or an auto-kubelet callback) moves a pod
through its phases and appends log text; this module turns that into the
status a kubelet would report and serves ``pods/log`` including ``follow``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .api import API, WriteOptions
from .errors import bad_request
from .meta import now, parse_time, rfc3339, rfc3339_nano
from .resources import GroupResource, ResourceType
from .store import StoredEvent

PODS = GroupResource("", "pods")
PHASES = ("Pending", "Running", "Succeeded", "Failed")
Object = dict[str, Any]


@dataclass(frozen=True)
class LogLine:
    at: datetime
    text: str  # including its trailing newline


@dataclass(frozen=True)
class LogQuery:
    container: str | None = None
    follow: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: str | None = None
    limit_bytes: int | None = None


class PodRuntime:
    def __init__(self, api: API, pod_type: ResourceType) -> None:
        self.api = api
        self.pod_type = pod_type
        self._logs: dict[str, dict[str, list[LogLine]]] = {}  # pod uid -> container -> lines
        self._changed = asyncio.Event()
        self._closed = False
        api.store.listeners.append(self._on_event)

    def close(self) -> None:
        """End every follow stream (server shutdown)."""
        self._closed = True
        self._wake()

    def _on_event(self, event: StoredEvent) -> None:
        if event.resource != PODS:
            return
        if event.type == "DELETED":
            self._logs.pop(event.obj["metadata"]["uid"], None)
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- control API (called on the loop) ---------------------------------------

    def set_phase(
        self,
        namespace: str,
        name: str,
        phase: str,
        exit_code: int | None = None,
        reason: str | None = None,
        message: str | None = None,
        container_exit_codes: dict[str, int] | None = None,
    ) -> Object:
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, not {phase!r}")
        pod = self.api.get(self.pod_type, namespace, name)
        updated = copy.deepcopy(pod)
        updated["status"] = pod_status(pod, phase, exit_code, reason, message, container_exit_codes or {})
        result = self.api.update(self.pod_type, namespace, name, updated, WriteOptions(), subresource="status")
        return result.obj

    def append_log(self, namespace: str, name: str, text: str, container: str | None = None) -> None:
        pod = self.api.get(self.pod_type, namespace, name)
        target = container or _containers(pod)[0]
        if target not in _containers(pod, include_init=True):
            raise ValueError(f"container {target} is not valid for pod {name}")
        lines = self._logs.setdefault(pod["metadata"]["uid"], {}).setdefault(target, [])
        stamp = now()
        for piece in text.splitlines(keepends=True):
            lines.append(LogLine(stamp, piece if piece.endswith("\n") else piece + "\n"))
        self._wake()

    # -- pods/log ---------------------------------------------------------------

    def open_log(self, namespace: str, name: str, query: LogQuery) -> AsyncIterator[bytes]:
        """Validate the request now (so errors become a Status) and return the stream."""
        pod = self.api.get(self.pod_type, namespace, name)
        container = _pick_container(pod, query.container)
        state = _container_state(pod, container)
        if "waiting" in state or not state:
            why = (state.get("waiting") or {}).get("reason", "ContainerCreating")
            raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {why}')
        return self._stream(namespace, name, pod["metadata"]["uid"], container, query)

    async def _stream(self, namespace: str, name: str, uid: str, container: str, query: LogQuery) -> AsyncIterator[bytes]:
        lines = self._logs.setdefault(uid, {}).setdefault(container, [])
        start = _first_line(lines, query)
        budget = query.limit_bytes
        position = start
        while True:
            changed = self._changed
            while position < len(lines):
                line = lines[position]
                position += 1
                chunk = ((rfc3339_nano(line.at) + " ") if query.timestamps else "") + line.text
                data = chunk.encode()
                if budget is not None:
                    data = data[:budget]
                    budget -= len(data)
                yield data
                if budget is not None and budget <= 0:
                    return
            if not query.follow or self._closed:
                return
            pod = self.api.store.get(PODS, namespace, name)
            if pod is None or pod["metadata"]["uid"] != uid or "terminated" in _container_state(pod, container):
                if position >= len(lines):
                    return
                continue
            await changed.wait()


def _first_line(lines: list[LogLine], query: LogQuery) -> int:
    start = 0
    since: datetime | None = None
    if query.since_seconds is not None:
        since = now() - timedelta(seconds=query.since_seconds)
    elif query.since_time:
        since = parse_time(query.since_time)
    if since is not None:
        start = next((i for i, line in enumerate(lines) if line.at >= since), len(lines))
    if query.tail_lines is not None:
        start = max(start, len(lines) - query.tail_lines)
    return start


def _containers(pod: Object, include_init: bool = False) -> list[str]:
    spec = pod.get("spec") or {}
    groups = ("initContainers", "containers") if include_init else ("containers",)
    return [c["name"] for g in groups for c in spec.get(g) or [] if isinstance(c, dict) and "name" in c]


def _pick_container(pod: Object, requested: str | None) -> str:
    name = pod["metadata"]["name"]
    containers = _containers(pod)
    if requested:
        if requested not in _containers(pod, include_init=True):
            raise bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    default = (pod["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    if isinstance(default, str) and default in containers:
        return default
    if len(containers) == 1:
        return containers[0]
    raise bad_request(f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]")


def _container_state(pod: Object, container: str) -> dict[str, Any]:
    status = pod.get("status") or {}
    for entry in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        if entry.get("name") == container:
            return entry.get("state") or {}
    return {}


def pod_status(
    pod: Object,
    phase: str,
    exit_code: int | None,
    reason: str | None,
    message: str | None,
    container_exit_codes: dict[str, int],
) -> Object:
    """The status a kubelet reports for a pod in ``phase`` (containers all alike)."""
    previous = pod.get("status") or {}
    stamp = rfc3339()
    started = previous.get("startTime") or stamp
    spec = pod.get("spec") or {}
    status: Object = {
        "phase": phase,
        "qosClass": previous.get("qosClass", "BestEffort"),
        "conditions": _conditions(phase, stamp),
    }
    if phase != "Pending":
        digest = int(hashlib.sha1(pod["metadata"]["uid"].encode()).hexdigest(), 16)
        status.update(
            startTime=started,
            hostIP="172.18.0.2",
            hostIPs=[{"ip": "172.18.0.2"}],
            podIP=f"10.244.{digest % 200}.{digest % 250 + 2}",
        )
        status["podIPs"] = [{"ip": status["podIP"]}]
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    old_states = {s.get("name"): s.get("state") or {} for s in (previous.get("initContainerStatuses") or []) + (previous.get("containerStatuses") or [])}
    init = [_container_status(c, "Succeeded" if phase != "Pending" else "Pending", 0, old_states, stamp) for c in spec.get("initContainers") or []]
    default_code = exit_code if exit_code is not None else (1 if phase == "Failed" else 0)
    main = [_container_status(c, phase, container_exit_codes.get(c.get("name"), default_code), old_states, stamp) for c in spec.get("containers") or []]
    if init:
        status["initContainerStatuses"] = init
    status["containerStatuses"] = main
    return status


def _conditions(phase: str, stamp: str) -> list[Object]:
    running = phase == "Running"
    done = phase in ("Succeeded", "Failed")

    def cond(kind: str, ok: bool, why: str | None = None) -> Object:
        entry: Object = {
            "type": kind,
            "status": "True" if ok else "False",
            "lastProbeTime": None,
            "lastTransitionTime": stamp,
        }
        if why and not ok:
            entry["reason"] = why
        return entry

    not_ready = "PodCompleted" if done else "ContainersNotReady"
    return [
        cond("PodReadyToStartContainers", phase != "Pending"),
        cond("Initialized", True),
        cond("Ready", running, not_ready),
        cond("ContainersReady", running, not_ready),
        cond("PodScheduled", True),
    ]


def _container_status(container: Object, phase: str, exit_code: int, old_states: dict[str, Any], stamp: str) -> Object:
    name = container.get("name", "")
    image = container.get("image", "")
    previous = old_states.get(name) or {}
    started_at = (previous.get("running") or previous.get("terminated") or {}).get("startedAt") or stamp
    entry: Object = {
        "name": name,
        "image": image,
        "imageID": f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}",
        "restartCount": 0,
        "ready": phase == "Running",
        "started": phase == "Running",
    }
    if phase == "Pending":
        entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
        entry["imageID"] = ""
        return entry
    entry["containerID"] = "containerd://" + hashlib.sha256(f"{name}{stamp}".encode()).hexdigest()
    if phase == "Running":
        entry["state"] = {"running": {"startedAt": started_at}}
    else:
        entry["state"] = {
            "terminated": {
                "exitCode": exit_code,
                "reason": "Completed" if exit_code == 0 else "Error",
                "startedAt": started_at,
                "finishedAt": stamp,
                "containerID": entry["containerID"],
            }
        }
    return entry
