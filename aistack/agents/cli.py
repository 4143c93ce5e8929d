"""`aistack agents serve PATH...`: run the OllamaAgents of some manifests as local A2A servers.

1. Load and validate the manifests (`validate_paths`): every OllamaAgent and the
   OllamaModelDefinition it references must be among them.
2. Pick the Ollama server: `--ollama-host`, else OLLAMA_HOST when it answers, else the embedded
   runtime started in this process (aistack.runtime.endpoint).
3. Build the models that server lacks (provision.py).
4. Serve each agent on its own port (`--port 0`: free ports; `--port N`: N, N+1...), print a
   table name -> URL, and list the agents in the local registry (registry.py) for Airflow.
5. On Ctrl-C or SIGTERM, stop the servers and remove this process's registry entries.

When an agent requires bearer authentication and no token is configured, a local token is
created once in `<data dir>/agents/token` and used by agents and local clients alike.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

from aistack.agents.config import ConfigError, ServerOptions
from aistack.agents.runner import serve_agents
from aistack.agents.tokens import TokenDirectory, TokenSource, ensure_local_token
from aistack.models.provision import ProvisionError, ensure_models
from aistack.resources.agent import OllamaAgent
from aistack.resources.model_definition import OllamaModelDefinition


def _err(message: str) -> int:
    print(f"aistack agents serve: {message}", file=sys.stderr)
    return 2


@contextlib.contextmanager
def _ollama(url: str | None) -> Iterator[tuple[str, str]]:
    if url:
        yield url, "--ollama-host"
        return
    from aistack.runtime.endpoint import choose_endpoint
    from aistack.runtime.process import RuntimeProcess

    chosen = choose_endpoint()
    if chosen.url is not None:
        yield chosen.url, f"{chosen.kind} ({chosen.reason})"
        return
    with RuntimeProcess(restart=True) as process:  # restarted if it dies, so the agents keep a model
        assert process.url is not None
        yield process.url, f"embedded, pid {process.process.pid if process.process else '?'} ({chosen.reason})"


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve(args: argparse.Namespace) -> int:
    from aistack.agents.logs import configure
    from aistack.resources.validation import validate_paths

    configure(args.log_level.upper(), args.log_format)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        return _err(f"no such file or folder: {', '.join(missing)}")
    result = validate_paths(args.paths)
    if not result.ok:
        for problem in result.problems:
            for line in problem.lines():
                print(line, file=sys.stderr)
        return _err(f"{len(result.problems)} invalid documents; fix them first (see `aistack validate`)")
    definitions = {(d.namespace, d.name): d for d in result.of_kind(OllamaModelDefinition)}
    agents = result.of_kind(OllamaAgent)
    if not agents:
        return _err("no OllamaAgent in the given files")
    pairs = [(agent, definitions[(agent.namespace, agent.spec.model_definition.name)]) for agent in agents]
    if any(a.spec.agent_card.authentication and a.spec.agent_card.authentication.type.value == "bearer" for a in agents):
        if TokenSource.from_env() is None and TokenDirectory.from_env() is None:
            path = ensure_local_token()
            print(f"bearer token for local agents and clients: {path}")
    try:
        options = ServerOptions.from_env(**({"public_url": args.public_url} if args.public_url else {}))
    except ConfigError as exc:
        return _err(str(exc))

    import ollama

    from aistack.runtime.process import RuntimeStartError

    try:
        with _ollama(args.ollama_host) as (url, source):
            print(f"Ollama: {url} [{source}]")
            ensure_models(ollama.Client(host=url), [d for _, d in pairs], report=lambda line: print(line, flush=True))
            with serve_agents(pairs, host=args.host, port=args.port, ollama_host=url, options=options, registry=True) as running:
                width = max(len(f"{r.namespace}/{r.name}") for r in running)
                print(f"{'AGENT'.ljust(width)}  {'MODEL':24}  URL")
                for r in running:
                    print(f"{f'{r.namespace}/{r.name}'.ljust(width)}  {r.model:24}  {r.url}  (A2A: {r.interface_url})")
                print("Serving; press Ctrl-C to stop.", flush=True)
                _wait_for_signal()
                print("stopping", flush=True)
    except (ProvisionError, ConfigError, OSError, RuntimeStartError) as exc:
        return _err(str(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
