"""Which Ollama aistack talks to: a real one when OLLAMA_HOST points at one that answers, the
embedded runtime otherwise.

`choose_endpoint()` applies the rule without starting anything: OLLAMA_HOST set and
answering `GET /api/version` gives that URL (kind "ollama", or "embedded" when the server
there is an `aistack ollama serve`); unset or silent gives kind "embedded" with no URL yet
(a silent OLLAMA_HOST is logged, never a silent fallback). `ollama_endpoint()` is the same
rule as a context manager that also starts the embedded server when needed, and
`embedded_server()` starts one as a supervised child process (`aistack ollama serve`, see
process.py) on a free 127.0.0.1 port and stops it on exit; tests and the commands use them. The URL is what `ollama.Client(host=...)` takes.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aistack.runtime.config import RuntimeConfig
from aistack.runtime.process import RuntimeProcess

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


@contextlib.contextmanager
def embedded_server(config: RuntimeConfig | None = None, host: str = "127.0.0.1", port: int = 0, log_path: Path | None = None) -> Iterator[RuntimeProcess]:
    """The embedded runtime as a child process on a free port (port=0) for the duration of the block."""
    server = RuntimeProcess(config, log_path, host=host, port=port).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def ollama_endpoint(
    config: RuntimeConfig | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 1.0,
    log_path: Path | None = None,
) -> Iterator[Endpoint]:
    """The endpoint to use, with a URL: the answering OLLAMA_HOST, or an embedded server started
    for the block and stopped after it."""
    chosen = choose_endpoint(env, timeout)
    if chosen.url is not None:
        yield chosen
        return
    with embedded_server(config, log_path=log_path) as server:
        assert server.url is not None
        yield Endpoint("embedded", server.url, chosen.reason)
