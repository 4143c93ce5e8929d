"""The console ends of `aistack run PATH...` and `aistack airflow [PATH]`: exit statuses and error lines."""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from pathlib import Path

from aistack.local.progress import Console, words
from aistack.local.runner import RunError, RunRequest, run


def _error(message: str, status: int, command: str = "run") -> int:
    print(f"aistack {command}: {message}", file=sys.stderr)
    return status


def request_from(args: argparse.Namespace) -> RunRequest:
    text = label = None
    if args.input is not None:
        text, label = args.input, f"--input ({words(args.input)})"
    elif args.input_file is not None:
        path: Path = args.input_file
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RunError(f"cannot read --input-file {path}: {exc}", status=2) from None
        label = f"{path} ({words(text)})"
    return RunRequest(
        paths=list(args.paths),
        input_text=text,
        input_label=label,
        keep_running=args.keep_running,
        output_dir=args.output_dir,
        orchestration=args.orchestration,
        trace=args.trace,
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(args: argparse.Namespace) -> int:
    console = Console()
    for sig in (signal.SIGINT, signal.SIGTERM):  # stop what was started (even where the shell ignores SIGINT)
        signal.signal(sig, _interrupt)
    try:
        outcome = run(request_from(args), console)
    except RunError as exc:
        if console.wrote:
            console.line()
        return _error(str(exc), exc.status)
    except KeyboardInterrupt:
        console.line()
        return _error("interrupted; the agents, the model runtime and the Airflow worker were stopped", 130)
    except Exception as exc:  # a bug: keep the traceback, end with one clear line
        traceback.print_exc()
        return _error(f"unexpected error: {type(exc).__name__}: {exc}", 1)
    if not outcome.succeeded:
        return _error(f"the run failed: {outcome.message}", 1)
    return 0


def serve_ui(args: argparse.Namespace) -> int:
    from aistack.local.standalone import UIRequest, serve

    console = Console()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    try:
        serve(UIRequest(args.path, args.host, args.port), console)
    except RunError as exc:
        return _error(str(exc), exc.status, "airflow")
    except KeyboardInterrupt:
        console.line()
        return _error("interrupted; Airflow, the agents and the model runtime were stopped", 130, "airflow")
    return 0
