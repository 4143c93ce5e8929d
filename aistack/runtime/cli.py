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
import sys
from datetime import datetime, timezone
from pathlib import Path


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from aistack.runtime.api import create_app
    from aistack.runtime.config import RuntimeConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = RuntimeConfig(store=Path(args.home) / "ollama" if args.home else None, n_threads=args.threads)
    store = config.store_path()
    try:
        substitutions = config.substitution_map()
    except ValueError as e:  # a malformed AISTACK_BASE_MODELS
        print(f"aistack ollama serve: {e}", file=sys.stderr)
        return 2
    config = RuntimeConfig(store=store, substitutions=substitutions, n_threads=args.threads)
    print(f"aistack embedded Ollama runtime on http://{args.host}:{args.port}", file=sys.stderr)
    print(f"  models: {store}", file=sys.stderr)
    print(
        "  base model substitutions (AISTACK_BASE_MODELS): "
        + (", ".join(f"{k}={v}" for k, v in substitutions.items()) or "none"),
        file=sys.stderr,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info", access_log=args.access_log)
    return 0


def create(args: argparse.Namespace) -> int:
    import ollama

    from aistack.modelfile import parse_modelfile

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
        rows.append((
            model.model or "",
            (model.digest or "")[:12],
            _size(int(model.size or 0)),
            _ago(model.modified_at),
        ))
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
    seconds = (datetime.now(timezone.utc) - moment).total_seconds()
    for unit, scale in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= scale:
            return f"{int(seconds // scale)} {unit} ago"
    return "Less than a minute ago" if seconds >= 1 else "Just now"
