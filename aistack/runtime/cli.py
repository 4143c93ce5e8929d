"""`aistack ollama serve | create | list`: the embedded runtime from the command line.

`serve` runs the server in the foreground. `create` and `list` are clients, like `ollama create`
and `ollama list`: they talk through the official client to OLLAMA_HOST (default
127.0.0.1:11434), which may be a real Ollama or `aistack ollama serve`, so the same commands
work against both. Imported only when an `ollama` command runs, so `aistack validate` never
loads llama.cpp, Starlette or the ollama client.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path


def serve(args: argparse.Namespace) -> int:
    """Prove that llama.cpp generates here, bind, serve; with --ready-fd, tell the parent how it went."""
    import socket

    import uvicorn

    from aistack.runtime.api import create_app
    from aistack.runtime.basemodels import parse_substitutions
    from aistack.runtime.config import RuntimeConfig
    from aistack.runtime.process import report_ready

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ready_fd = args.ready_fd

    def fail(message: str) -> int:
        print(f"aistack ollama serve: {message}", file=sys.stderr)
        report_ready(ready_fd, error=message)
        return 1

    store = Path(args.store) if args.store else Path(args.home) / "ollama" if args.home else None
    try:
        substitutions = parse_substitutions(args.base_models) if args.base_models is not None else RuntimeConfig().substitution_map()
    except ValueError as e:  # a malformed AISTACK_BASE_MODELS or --base-models
        return fail(str(e))
    config = RuntimeConfig(
        store=store, substitutions=substitutions, n_threads=args.threads, n_ctx=args.context, keep_alive=args.keep_alive, num_parallel=args.parallel
    )
    try:
        config.max_body_bytes()
        config.parallel_slots()
    except ValueError as e:  # a malformed AISTACK_RUNTIME_MAX_BODY or OLLAMA_NUM_PARALLEL, or --parallel 0
        return fail(str(e))
    store = config.store_path()
    if not args.no_selftest:
        problem = _prove_generation(config)
        if problem is not None:
            return fail(problem)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as e:
        sock.close()
        return fail(f"cannot listen on {args.host}:{args.port}: {e.strerror} (choose another --port)")
    port = sock.getsockname()[1]
    url = f"http://{args.host}:{port}"
    print(f"aistack embedded Ollama runtime on {url}", file=sys.stderr)
    print(f"  models: {store}", file=sys.stderr)
    print(
        "  base model substitutions (AISTACK_BASE_MODELS): " + (", ".join(f"{k}={v}" for k, v in substitutions.items()) or "none"),
        file=sys.stderr,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_level="info" if ready_fd is None else "warning", access_log=args.access_log, timeout_graceful_shutdown=5)
    )

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.02)
        if server.started:
            report_ready(ready_fd, url=url, pid=os.getpid())

    threading.Thread(target=announce, name="aistack-runtime-ready", daemon=True).start()
    server.run(sockets=[sock])
    return 0


def _prove_generation(config) -> str | None:
    """None when llama.cpp generates with the default base model here (or there is none to try),
    else the message that names the cause and the fix."""
    from aistack.runtime.basemodels import UnknownBaseModel, resolve_base
    from aistack.runtime.selftest import RuntimeUnusable, prove

    reference = config.substitution_map().get("*", "smollm2:135m")
    try:
        base = resolve_base(reference) or resolve_base("smollm2:135m")
    except UnknownBaseModel as e:
        logging.getLogger("aistack.runtime").warning("no base model to test generation with: %s", e)
        return None
    if base is None:
        return None
    try:
        ran = prove(base.path, record=config.store_path() / "selftest.json")
    except RuntimeUnusable as e:
        return str(e)
    logging.getLogger("aistack.runtime").info("llama.cpp generates on this machine (%s)", "tested now" if ran else "tested before with this build")
    return None


def create(args: argparse.Namespace) -> int:
    import ollama

    from aistack.models.modelfile import parse_modelfile

    path = Path(args.file)
    try:
        text = path.read_text()
    except OSError as e:
        print(f"aistack ollama create: cannot read {path}: {e.strerror}", file=sys.stderr)
        return 2
    try:
        kwargs = parse_modelfile(text)
    except ValueError as e:
        print(f"aistack ollama create: {path}: {e}", file=sys.stderr)
        return 1
    if kwargs.pop("adapter", None):
        print("aistack ollama create: ADAPTER needs a blob upload, which this command does not do", file=sys.stderr)
        return 1
    base = kwargs["from_"]
    if base.lower().endswith(".gguf") and not Path(base).expanduser().is_absolute():
        kwargs["from_"] = str((path.parent / base).resolve())  # relative to the Modelfile, as in Ollama
    try:
        for progress in ollama.Client().create(model=args.name, stream=True, **kwargs):
            print(progress.status)
    except ollama.ResponseError as e:
        print(f"Error: {e.error}", file=sys.stderr)
        return 1
    except ConnectionError as e:
        print(f"Error: {e} (start one with `aistack ollama serve`)", file=sys.stderr)
        return 1
    return 0


def list_models(args: argparse.Namespace) -> int:
    import ollama

    try:
        models = ollama.Client().list().models
    except ollama.ResponseError as e:
        print(f"Error: {e.error}", file=sys.stderr)
        return 1
    except ConnectionError as e:
        print(f"Error: {e} (start one with `aistack ollama serve`)", file=sys.stderr)
        return 1
    rows = [("NAME", "ID", "SIZE", "MODIFIED")]
    for model in models:
        rows.append(
            (
                model.model or "",
                (model.digest or "")[:12],
                _size(int(model.size or 0)),
                _ago(model.modified_at),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("    ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.0f} {unit}" if size / scale >= 10 else f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return ""
    seconds = (datetime.now(UTC) - moment).total_seconds()
    for unit, scale in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= scale:
            return f"{int(seconds // scale)} {unit} ago"
    return "Less than a minute ago" if seconds >= 1 else "Just now"
