"""``KubeAPIServer``: the fixture's lifecycle and its thread-safe control surface.

The server runs its own event loop in a background thread. All state lives on
that loop; control methods called from test threads are marshalled onto it,
so they see and produce exactly what HTTP clients see (events, resourceVersions).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from .api import API, WriteOptions
from .app import KubeApp
from .errors import APIError
from .pods import PodRuntime
from .resources import Registry, ResourceType
from .store import Store, StoredEvent

T = TypeVar("T")
PodCallback = Callable[["KubeAPIServer", dict[str, Any]], None]
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public")
CONTEXT = "aistack-test"


class KubeletError(RuntimeError):
    """An ``on_pod_created`` callback raised; surfaced when the server stops."""


class KubeAPIServer:
    """A Kubernetes API server on 127.0.0.1 for tests.

    ``on_pod_created(server, pod)`` plays kubelet: it runs in its own thread for
    every new pod and typically calls ``set_pod_phase``/``append_pod_log``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        history_limit: int = 1000,
        bookmark_interval: float = 1.0,
        on_pod_created: PodCallback | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.history_limit = history_limit
        self.bookmark_interval = bookmark_interval
        self.on_pod_created = on_pod_created
        self.kubelet_errors: list[BaseException] = []
        self._kubelets: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._api: API | None = None
        self._pods: PodRuntime | None = None
        self._app: KubeApp | None = None

    # -- lifecycle ----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> KubeAPIServer:
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.stop(raise_kubelet_errors=exc_type is None)

    def start(self) -> KubeAPIServer:
        if self._thread is not None:
            raise RuntimeError("server already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, args=(sock, started), name=f"kubeapi-{self.port}", daemon=True)
        self._thread.start()
        started.result(timeout=30)
        return self

    def _serve(self, sock: socket.socket, started: concurrent.futures.Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup(sock))
        except BaseException as exc:
            started.set_exception(exc)
            loop.close()
            return
        started.set_result(None)
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    async def _startup(self, sock: socket.socket) -> None:
        store = Store(self.history_limit)
        registry = Registry()
        self._api = API(store, registry)
        pod_type = registry.lookup("", "v1", "pods")
        assert pod_type is not None
        self._pods = PodRuntime(self._api, pod_type)
        self._app = KubeApp(self._api, self._pods, lambda: f"{self.host}:{self.port}", self.bookmark_interval)
        namespaces = self._type("v1", "Namespace")
        for name in INITIAL_NAMESPACES:
            self._api.create(namespaces, "", {"metadata": {"name": name}}, WriteOptions())
        store.listeners.append(self._on_event)
        self._runner = web.AppRunner(self._app.build(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    def stop(self, raise_kubelet_errors: bool = True) -> None:
        if self._thread is None or self._loop is None:
            return
        for thread in list(self._kubelets):
            thread.join(timeout=10)
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = None
        if raise_kubelet_errors and self.kubelet_errors:
            raise KubeletError(f"on_pod_created failed: {self.kubelet_errors[0]!r}") from self.kubelet_errors[0]

    async def _shutdown(self) -> None:
        if self._api is not None:
            self._api.store.close_watches()
        if self._pods is not None:
            self._pods.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- clients --------------------------------------------------------------------

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT, "cluster": {"server": self.url, "insecure-skip-tls-verify": True}}],
            "users": [{"name": CONTEXT, "user": {"token": "aistack-test-token"}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}],
            "current-context": CONTEXT,
            "preferences": {},
        }
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    def sync_api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` bound to this server."""
        import kubernetes.client

        configuration = kubernetes.client.Configuration(host=self.url)
        configuration.api_key = {"authorization": "aistack-test-token"}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return kubernetes.client.ApiClient(configuration)

    def asyncio_configuration(self) -> Any:
        """A ``kubernetes_asyncio.client.Configuration``; build the ApiClient inside your loop."""
        import kubernetes_asyncio.client

        configuration = kubernetes_asyncio.client.Configuration(host=self.url)
        configuration.api_key = {"authorization": "aistack-test-token"}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return configuration

    # -- control methods (any thread) -----------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        if self._loop is None or self._thread is None:
            raise RuntimeError("server is not running")
        if threading.current_thread() is self._thread:
            return fn()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def _type(self, api_version: str, kind: str) -> ResourceType:
        assert self._api is not None
        rt = self._api.registry.by_kind(api_version, kind)
        if rt is None:
            raise LookupError(f"no resource serves {kind} in {api_version}")
        return rt

    @property
    def resource_version(self) -> int:
        return self._call(lambda: self._require_api().store.revision)

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path?query) of every request served so far, oldest first."""
        return self._call(lambda: list(self._require_app().requests))

    @property
    def responses(self) -> list[tuple[str, str, int]]:
        """(method, path?query, status code) of every request answered so far, oldest first;
        a status tells what a request did (a server-side apply that created answers 201)."""
        return self._call(lambda: list(self._require_app().responses))

    def get_object(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            rt = self._type(api_version, kind)
            try:
                return copy.deepcopy(self._require_api().get(rt, namespace or "", name))
            except APIError:
                return None

        return self._call(read)

    def list_objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            rt = self._type(api_version, kind)
            return copy.deepcopy(self._require_api().list_objects(rt, namespace).items)

        return self._call(read)

    def create_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create with full API semantics (validation, events), bypassing HTTP."""

        def create() -> dict[str, Any]:
            rt = self._type(obj["apiVersion"], obj["kind"])
            namespace = obj.get("metadata", {}).get("namespace", "default") if rt.namespaced else ""
            return copy.deepcopy(self._require_api().create(rt, namespace, obj, WriteOptions()).obj)

        return self._call(create)

    def set_pod_phase(
        self,
        namespace: str,
        name: str,
        phase: str,
        *,
        exit_code: int | None = None,
        reason: str | None = None,
        message: str | None = None,
        container_exit_codes: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """Report ``phase`` as kubelet would: Running starts containers, Succeeded/Failed terminate them."""
        return self._call(lambda: copy.deepcopy(self._require_pods().set_phase(namespace, name, phase, exit_code, reason, message, container_exit_codes)))

    def append_pod_log(self, namespace: str, name: str, text: str, container: str | None = None) -> None:
        self._call(lambda: self._require_pods().append_log(namespace, name, text, container))

    def compact(self, resource_version: int | None = None) -> int:
        """Drop watch history up to ``resource_version`` (default: all) so older resumes get 410."""
        return self._call(lambda: self._require_api().store.compact(resource_version))

    def drop_watches(self, *, abort: bool = True) -> int:
        """End every open watch; ``abort`` cuts the TCP connection, else the stream ends cleanly."""
        return self._call(lambda: self._require_api().store.close_watches(abort=abort))

    # -- internals ----------------------------------------------------------------

    def _require_api(self) -> API:
        if self._api is None:
            raise RuntimeError("server is not running")
        return self._api

    def _require_pods(self) -> PodRuntime:
        if self._pods is None:
            raise RuntimeError("server is not running")
        return self._pods

    def _require_app(self) -> KubeApp:
        if self._app is None:
            raise RuntimeError("server is not running")
        return self._app

    def _on_event(self, event: StoredEvent) -> None:
        if self.on_pod_created is None or event.type != "ADDED" or event.resource != ("", "pods"):
            return
        thread = threading.Thread(target=self._run_kubelet, args=(copy.deepcopy(event.obj),), name="kubeapi-kubelet", daemon=True)
        self._kubelets.append(thread)
        thread.start()

    def _run_kubelet(self, pod: dict[str, Any]) -> None:
        assert self.on_pod_created is not None
        try:
            self.on_pod_created(self, pod)
        except BaseException as exc:  # reported by stop(); a kubelet thread must never die silently
            self.kubelet_errors.append(exc)
