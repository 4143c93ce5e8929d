"""Run agents: each OllamaAgent on its own port, all in one process, from one event loop.

`AgentGroup` binds every agent's socket first (so a port-0 agent knows its URL before its card
is built), then serves them all with uvicorn from one background thread, and stops them
together. `serve_agents()` is the same as a context manager, for tests and `aistack run`:

    with serve_agents(pairs, ollama_host=url) as running:
        for agent in running: print(agent.name, agent.url)

The thread has its own event loop, so callers may be synchronous or run their own loop.
Signals are the caller's business (uvicorn's own Ctrl-C handling is off): the CLI stops the
group on Ctrl-C or SIGTERM. Without explicit options, settings come from the environment, and
bearer agents with no token configured use the local token (tokens.py), which local clients
send too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import uvicorn

from aistack import telemetry
from aistack.agents.app import AgentApp, create_agent_app
from aistack.agents.backend import ModelBackend, OllamaBackend
from aistack.agents.config import ServerOptions
from aistack.agents.profile import AgentProfile
from aistack.agents.registry import RegistryEntry, register, unregister
from aistack.agents.tokens import TokenSource, ensure_local_token
from aistack.resources.agent import OllamaAgent
from aistack.resources.model_definition import OllamaModelDefinition

log = logging.getLogger("aistack.agents.runner")

BackendFactory = Callable[[OllamaAgent, OllamaModelDefinition], ModelBackend]


@dataclass
class RunningAgent:
    agent: OllamaAgent
    definition: OllamaModelDefinition
    port: int
    served: AgentApp

    @property
    def name(self) -> str:
        return self.agent.name

    @property
    def namespace(self) -> str:
        return self.agent.namespace

    @property
    def url(self) -> str:
        """The base URL: the agent card is at `<url>/.well-known/agent-card.json`."""
        return self.served.base_url

    @property
    def card_url(self) -> str:
        return self.served.card_url

    @property
    def interface_url(self) -> str:
        return self.served.interface_url

    @property
    def model(self) -> str:
        return self.definition.model_name

    def registry_entry(self) -> RegistryEntry:
        return RegistryEntry(self.namespace, self.name, self.url, self.card_url, self.model)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: several run in one loop, and the caller owns signals."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]  # any context manager does
        return contextlib.nullcontext()


def ollama_backends(host: str | None) -> BackendFactory:
    return lambda agent, definition: OllamaBackend(definition.model_name, host=host)


class AgentGroup:
    def __init__(
        self,
        pairs: Iterable[tuple[OllamaAgent, OllamaModelDefinition]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        backends: BackendFactory | None = None,
        options: ServerOptions | None = None,
        access_log: bool = False,
    ):
        self.pairs = list(pairs)
        self.host = host
        self.port = port
        self.backends = backends or ollama_backends(None)
        self.options = options or default_options(self.pairs)
        self.access_log = access_log
        self.running: list[RunningAgent] = []
        self._servers: list[_Server] = []
        self._sockets: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> list[RunningAgent]:
        if self.options.public_url and len(self.pairs) > 1:
            raise ValueError("a public URL names one agent; serve agents with a public URL one at a time")
        telemetry.configure("aistack-agent")  # spans go out through OTLP when AISTACK_OTLP_ENDPOINT says where
        try:
            for index, (agent, definition) in enumerate(self.pairs):
                # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
                # without it Nagle's algorithm meets delayed ACKs: 40 ms on every response.
                sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self._sockets.append(sock)
                sock.bind((self.host, self.port + index if self.port else 0))
                port = sock.getsockname()[1]
                served = create_agent_app(
                    agent,
                    definition,
                    self.backends(agent, definition),
                    base_url=f"http://{_url_host(self.host)}:{port}",
                    options=self.options,
                )
                self.running.append(RunningAgent(agent, definition, port, served))
                config = uvicorn.Config(
                    served.app,
                    log_level="warning",
                    access_log=self.access_log,
                    lifespan="on",
                    timeout_graceful_shutdown=5,
                    log_config=None,
                )
                self._servers.append(_Server(config))
        except BaseException:
            self._close_sockets()
            raise
        self._thread = threading.Thread(target=self._run, name="aistack-agents", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not all(server.started for server in self._servers):
            if not self._thread.is_alive() or self._error is not None:
                self.stop()
                raise RuntimeError(f"the agent servers failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the agent servers did not start within {timeout:.0f}s")
            time.sleep(0.01)
        for running in self.running:
            log.info("agent %s/%s serving on %s", running.namespace, running.name, running.url)
        return self.running

    def _run(self) -> None:
        async def main() -> None:
            await asyncio.gather(*(s.serve(sockets=[sock]) for s, sock in zip(self._servers, self._sockets)))

        loop_factory = self._servers[0].config.get_loop_factory() if self._servers else None
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:  # uvloop when installed, as uvicorn does
                runner.run(main())
        except BaseException as exc:  # SystemExit from a failed lifespan startup included
            self._error = exc
            log.error("agent servers stopped: %r", exc)

    def stop(self, timeout: float = 30.0) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                for server in self._servers:
                    server.force_exit = True
                self._thread.join(5)
        self._close_sockets()
        self._thread = None

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._sockets = []

    def __enter__(self) -> list[RunningAgent]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def default_options(pairs: Iterable[tuple[OllamaAgent, OllamaModelDefinition]]) -> ServerOptions:
    """Options from the environment; for local bearer agents with no token configured, the local
    token (created once), which local clients find too."""
    options = ServerOptions.from_env()
    bearer = any(AgentProfile.from_resources(agent, definition).bearer for agent, definition in pairs)
    if bearer and options.tokens is None and options.namespace_tokens is None:
        options = dataclasses.replace(options, tokens=TokenSource(file=ensure_local_token()))
    return options


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@contextlib.contextmanager
def serve_agents(
    pairs: Iterable[tuple[OllamaAgent, OllamaModelDefinition]],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ollama_host: str | None = None,
    backends: BackendFactory | None = None,
    options: ServerOptions | None = None,
    registry: bool = False,
) -> Iterator[list[RunningAgent]]:
    """Serve the agents for the block; with `registry`, list them in the local agent registry."""
    group = AgentGroup(pairs, host=host, port=port, backends=backends or ollama_backends(ollama_host), options=options)
    running = group.start()
    entries = [agent.registry_entry() for agent in running]
    try:
        if registry:
            register(entries)
        yield running
    finally:
        try:
            if registry:
                unregister(entries)
        finally:
            group.stop()
