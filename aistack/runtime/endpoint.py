"""Which Ollama aistack talks to: a real one when OLLAMA_HOST points at one that answers, the
embedded runtime otherwise.

`choose_endpoint()` applies the rule without starting anything: OLLAMA_HOST set and
answering `GET /api/version` gives that URL (kind "ollama", or "embedded" when the server
there is an `aistack ollama serve`); unset or silent gives kind "embedded" with no URL yet
(a silent OLLAMA_HOST is logged, never a silent fallback). `ollama_endpoint()` is the same
rule as a context manager that also starts the embedded server when needed, and
`embedded_server()` starts one in a background thread on a free 127.0.0.1 port and stops it
on exit; tests and `aistack run` use them. The URL is what `ollama.Client(host=...)` takes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from aistack.runtime.config import RuntimeConfig

log = logging.getLogger("aistack.runtime")

Kind = Literal["ollama", "embedded"]


@dataclass(frozen=True)
class Endpoint:
    kind: Kind
    url: str | None  # None: the embedded runtime, not started yet
    reason: str


def host_url(value: str | None) -> str:
    """OLLAMA_HOST as the official client reads it (`host`, `host:port`, `http://host`...)."""
    from ollama._client import _parse_host

    return _parse_host(value)


def probe(url: str, timeout: float = 1.0) -> str | None:
    """The version an Ollama API at `url` reports, or None when nothing answers like one."""
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/api/version", timeout=timeout)
        response.raise_for_status()
        version = response.json().get("version")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return str(version) if version else None


def choose_endpoint(env: Mapping[str, str] | None = None, timeout: float = 1.0) -> Endpoint:
    env = os.environ if env is None else env
    host = env.get("OLLAMA_HOST", "").strip()
    if not host:
        return Endpoint("embedded", None, "OLLAMA_HOST is not set")
    url = host_url(host)
    version = probe(url, timeout)
    if version is None:
        log.warning("OLLAMA_HOST=%s (%s) does not answer: using the embedded runtime", host, url)
        return Endpoint("embedded", None, f"OLLAMA_HOST={host} does not answer")
    kind: Kind = "embedded" if "aistack" in version else "ollama"
    return Endpoint(kind, url, f"OLLAMA_HOST={host} answers (version {version})")


class EmbeddedServer:
    """The embedded runtime served by uvicorn in a daemon thread; `url` is set once it listens."""

    def __init__(self, config: RuntimeConfig | None = None, host: str = "127.0.0.1", port: int = 0):
        self.config = config or RuntimeConfig()
        self.host = host
        self.port = port
        self.url: str | None = None
        self._server = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> EmbeddedServer:
        import uvicorn

        from aistack.runtime.api import create_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.config),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="aistack-ollama-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                sock.close()
                raise RuntimeError("the embedded Ollama server failed to start (see the log)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the embedded Ollama server did not start within {timeout:.0f}s")
            time.sleep(0.01)
        self.url = f"http://{self.host}:{self.port}"
        log.info("embedded Ollama runtime listening on %s", self.url)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the embedded Ollama server did not stop within %.0fs", timeout)
        self._server = self._thread = None

    def __enter__(self) -> EmbeddedServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def embedded_server(
    config: RuntimeConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[EmbeddedServer]:
    """Start the embedded runtime on a free port (port=0) for the duration of the block."""
    server = EmbeddedServer(config, host, port).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def ollama_endpoint(
    config: RuntimeConfig | None = None, env: Mapping[str, str] | None = None, timeout: float = 1.0
) -> Iterator[Endpoint]:
    """The endpoint to use, with a URL: the answering OLLAMA_HOST, or an embedded server started
    for the block and stopped after it."""
    chosen = choose_endpoint(env, timeout)
    if chosen.url is not None:
        yield chosen
        return
    with embedded_server(config) as server:
        assert server.url is not None
        yield Endpoint("embedded", server.url, chosen.reason)
