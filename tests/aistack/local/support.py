"""Helpers of the `aistack run` tests: the real CLI in a subprocess, in a private AISTACK_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
SCRIPT = Path(sys.executable).with_name("aistack")
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "aistack.cli"]


def clean_env(home: Path, fake_home: Path) -> dict[str, str]:
    """No real Ollama, no AWS, no Airflow settings of the test session: the embedded runtime and the
    run's private Airflow home, as on a fresh laptop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "AISTACK_", "OLLAMA_"))}
    # No warm worker outlives a test, unless the test asks for one (and stops it).
    env.update(AISTACK_HOME=str(home), HOME=str(fake_home), NO_COLOR="1", PYTHONUNBUFFERED="1", AISTACK_RUN_STANDBY="0")
    return env


@dataclass
class Run:
    status: int
    stdout: str
    stderr: str
    trace: dict[str, Any] | None

    def events(self, kind: str = "task") -> list[dict[str, Any]]:
        return [e for e in (self.trace or {}).get("events", []) if e["event"] == kind]

    @property
    def finished(self) -> dict[str, Any]:
        (event,) = self.events("finished")
        return event

    def explain(self) -> str:
        return f"exit {self.status}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def aistack_run(home: Path, *args: str, timeout: float = 900, cwd: Path = REPO, env: dict[str, str] | None = None) -> Run:
    traces = home / "traces"
    traces.mkdir(parents=True, exist_ok=True)
    trace = traces / f"trace-{len(list(traces.glob('*.json')))}.json"
    user_home = home / "user-home"
    user_home.mkdir(exist_ok=True)
    environment = {**clean_env(home, user_home), **(env or {})}
    done = subprocess.run([*COMMAND, "run", *args, "--trace", str(trace)], cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)
    data = json.loads(trace.read_text()) if trace.exists() else None
    return Run(done.returncode, done.stdout, done.stderr, data)


def stop_standbys(home: Path) -> int:
    """Kill every standby worker of this aistack home (what a test left warm); how many there were."""
    import psutil

    marker = str(home / "airflow" / "standby.sock")
    found = [p for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]
    for process in found:
        process.kill()
    psutil.wait_procs(found, timeout=10)
    return len(found)
