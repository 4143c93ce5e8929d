"""The embedded runtime as its own process: it proves it can generate, dies alone, says why.

Real `aistack ollama serve` children with the real SmolLM2 model; the crash is a real signal.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import ollama
import pytest

from aistack.runtime.config import RuntimeConfig
from aistack.runtime.process import RuntimeProcess, RuntimeStartError, exit_cause
from aistack.runtime.selftest import RuntimeUnusable, prove

pytestmark = pytest.mark.timeout(300)


def _config(tmp_path: Path) -> RuntimeConfig:
    return RuntimeConfig(store=tmp_path / "ollama", substitutions={"*": "smollm2:135m"}, n_ctx=512)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/version", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_runtime_serves_from_its_own_process_and_stops(tmp_path):
    runtime = RuntimeProcess(_config(tmp_path), tmp_path / "runtime.log").start()
    try:
        assert runtime.process is not None and runtime.process.pid != os.getpid()
        reply = ollama.Client(host=runtime.url).generate(model="smollm2:135m", prompt="Hi", options={"num_predict": 3})
        assert reply.eval_count and reply.eval_count <= 3
        assert (tmp_path / "ollama" / "selftest.json").is_file(), "the generation proof is remembered"
    finally:
        runtime.stop()
    assert runtime.process.poll() is not None and not _answers(runtime.url)
    assert exit_cause(runtime.url) is None, "a stop that was asked for is not a death"


def test_a_crash_of_the_runtime_is_reported_with_its_signal_and_the_log(tmp_path):
    deaths: list[str] = []
    died = threading.Event()
    runtime = RuntimeProcess(_config(tmp_path), tmp_path / "runtime.log").start()
    runtime.on_exit.append(lambda cause: (deaths.append(cause), died.set()))
    try:
        os.kill(runtime.process.pid, signal.SIGSEGV)
        assert died.wait(10)
        assert deaths == [f"the model runtime exited with signal 11 (SIGSEGV); see {tmp_path / 'runtime.log'}"]
        assert exit_cause(runtime.url) == deaths[0]
    finally:
        runtime.stop()


def test_with_restart_a_dead_runtime_comes_back_on_the_same_url(tmp_path):
    runtime = RuntimeProcess(_config(tmp_path), tmp_path / "runtime.log", restart=True).start()
    try:
        first, url = runtime.process.pid, runtime.url
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (runtime.process.pid != first and _answers(url)):
            time.sleep(0.2)
        assert runtime.process.pid != first and runtime.url == url and _answers(url)
        assert exit_cause(url) is None, "once restarted, the runtime is not reported dead"
    finally:
        runtime.stop()


def test_a_runtime_that_cannot_generate_does_not_start_and_says_why(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)  # not a model llama.cpp can load
    config = RuntimeConfig(store=tmp_path / "ollama", substitutions={"*": str(broken)})
    with pytest.raises(RuntimeStartError) as raised:
        RuntimeProcess(config, tmp_path / "runtime.log").start()
    message = str(raised.value)
    assert "cannot generate on this machine" in message and "broken.gguf" in message
    assert "make install" in message, "the message names the fix"


def test_a_test_generation_that_dies_by_a_signal_names_the_signal_and_the_fix(tmp_path):
    crash = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    with pytest.raises(RuntimeUnusable) as raised:
        prove(tmp_path / "model.gguf", argv=crash)
    message = str(raised.value)
    assert "signal 11 (SIGSEGV)" in message and "AMX" in message and "make install" in message
    illegal = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]
    with pytest.raises(RuntimeUnusable, match=r"signal 4 \(SIGILL\).*instructions this processor does not have"):
        prove(tmp_path / "model.gguf", argv=illegal)


def test_the_proof_runs_once_per_build_and_model(tmp_path):
    from aistack.runtime.basemodels import resolve_base

    model = resolve_base("smollm2:135m").path
    record = tmp_path / "selftest.json"
    assert prove(model, record=record) is True
    assert prove(model, record=record) is False, "remembered for the same library, model and CPU"
    record.write_text('{"fingerprint": "another build"}')
    assert prove(model, record=record) is True
