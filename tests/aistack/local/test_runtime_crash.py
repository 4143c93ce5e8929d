"""A model runtime that dies in the middle of a step ends the run at once, with the cause.

The real `aistack run` CLI in a subprocess, the embedded runtime as its own process with the
real SmolLM2 model; the runtime is killed with a real SIGSEGV (what an unsuitable llama.cpp
build does on its own) while the first step is running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.aistack.local.support import COMMAND, REPO, aistack_run, clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EXAMPLE = REPO / "examples" / "summarization-pipeline"


def _runtime_of(parent: psutil.Process) -> psutil.Process | None:
    for child in parent.children(recursive=True):
        try:
            command = child.cmdline()
        except psutil.Error:
            continue
        if "ollama" in command and "serve" in command:
            return child
    return None


def test_killing_the_runtime_during_a_step_fails_the_run_within_seconds_and_stops_everything(tmp_path: Path):
    home, user_home = tmp_path / "home", tmp_path / "user"
    user_home.mkdir()
    process = subprocess.Popen(
        [*COMMAND, "run", str(EXAMPLE), "--input-file", str(EXAMPLE / "document.md")],
        cwd=REPO,
        env=clean_env(home, user_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "document-analyzer" in line and "running" in line:
                break
        else:
            pytest.fail("the first step never started:\n" + "".join(lines) + (process.stderr.read() if process.stderr else ""))
        parent = psutil.Process(process.pid)
        runtime = _runtime_of(parent)
        assert runtime is not None, "the runtime runs as a child process of aistack run"
        started = [p for p in parent.children(recursive=True)]
        os.kill(runtime.pid, signal.SIGSEGV)
        killed = time.monotonic()
        out, err = process.communicate(timeout=60)
        elapsed = time.monotonic() - killed
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines) + out
    assert process.returncode == 1, output + err
    assert elapsed < 10, f"the run took {elapsed:.1f}s to end after the runtime died"
    assert "the model runtime exited with signal 11 (SIGSEGV) during step document-analyzer; see " in err, err
    assert "Traceback" not in output + err
    time.sleep(1)
    alive = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"still running after the run ended: {[p.cmdline() for p in alive]}"

    again = aistack_run(home, str(REPO / "examples" / "multi-model-chat"), "--output-dir", str(tmp_path / "out"))
    assert again.status == 0, "the next run starts a fresh runtime:\n" + again.explain()
