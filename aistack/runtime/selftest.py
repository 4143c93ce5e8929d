"""Proof that llama.cpp can generate on this machine, taken in a child process before serving.

llama-cpp-python is compiled on the user's machine, and a build that does not suit the CPU
does not fail with an error: it dies with a signal (SIGSEGV in llama.cpp's AMX kernels on
Xeons with AMX, SIGILL for instructions the CPU lacks) on the first matrix multiplication.
So `aistack ollama serve` loads a base model and generates a few tokens in a child process
first; when the child dies, the server does not start, and the message names the cause and
the fix instead of a bare "Segmentation fault" in the middle of someone's run.

A proof is remembered per (llama.cpp library, model file, CPU, Python) in the store, so an
unchanged machine pays for it once, and any rebuild, model or CPU change takes it again.

`python -m aistack.runtime.selftest MODEL.gguf` is the child: it prints what it generated.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from aistack.files import write_atomic
from aistack.runtime.process import describe_exit

TIMEOUT_SECONDS = 180.0
TEST_TOKENS = 4
REBUILD_HINT = (
    "Rebuild llama-cpp-python for a portable CPU baseline: `rm -rf .venv && make install` in the aistack "
    "checkout (the Makefile compiles it with GGML_NATIVE=OFF and the AMX kernels off), or point OLLAMA_HOST "
    "at a real Ollama server"
)


class RuntimeUnusable(RuntimeError):
    """llama.cpp cannot generate here; the message says why and what to do."""


def explain_exit(returncode: int, output: str, model: str) -> str:
    """Why the test generation failed, and the fix, from the child's exit status and output."""
    tail = "\n".join(output.strip().splitlines()[-5:])
    if returncode < 0:
        number = -returncode
        if number == signal.SIGILL:
            cause = "the llama.cpp build uses CPU instructions this processor does not have"
        elif number in (signal.SIGSEGV, signal.SIGBUS):
            cause = "the llama.cpp build does not suit this CPU (a build with -march=native or with the AMX kernels crashes like this on Xeons with AMX)"
        else:
            cause = "llama.cpp was killed"
        return (
            f"the model runtime cannot generate on this machine: llama.cpp died with {describe_exit(returncode)} "
            f"while generating {TEST_TOKENS} test tokens with {model}; {cause}. {REBUILD_HINT}." + (f"\nIts last output:\n{tail}" if tail else "")
        )
    return (
        f"the model runtime cannot generate on this machine: the test generation with {model} exited with "
        f"status {returncode}" + (f":\n{tail}" if tail else "") + f"\n{REBUILD_HINT}."
    )


def fingerprint(model: Path) -> str:
    """What the proof depends on: the llama.cpp libraries, the model file, the CPU and Python."""
    import llama_cpp

    parts = [sys.executable, platform.machine(), _cpu_flags()]
    library_dir = Path(llama_cpp.__file__).parent / "lib"
    for path in sorted(library_dir.glob("*.so*")) + [model]:
        stat = path.stat()
        parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return line
    return platform.processor()


def prove(model: Path, record: Path | None = None, argv: Sequence[str] | None = None, timeout: float = TIMEOUT_SECONDS) -> bool:
    """Generate a few tokens with `model` in a child process; raise RuntimeUnusable when it fails.

    Returns False when a remembered proof made the test unnecessary, True when it ran. `argv`
    replaces the child's command line (tests give one that dies with a real signal).
    """
    key = fingerprint(model) if argv is None else None
    if key is not None and record is not None and _remembered(record) == key:
        return False
    command = list(argv) if argv is not None else [sys.executable, "-m", "aistack.runtime.selftest", str(model)]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    except subprocess.TimeoutExpired:
        raise RuntimeUnusable(
            f"the model runtime cannot generate on this machine: {TEST_TOKENS} test tokens with {model.name} took "
            f"more than {timeout:.0f}s. Check the machine's load and memory, or point OLLAMA_HOST at a real Ollama"
        ) from None
    if done.returncode != 0:
        raise RuntimeUnusable(explain_exit(done.returncode, done.stderr + done.stdout, model.name))
    if key is not None and record is not None:
        write_atomic(record, json.dumps({"fingerprint": key, "model": str(model), "output": done.stdout.strip()}) + "\n")
    return True


def _remembered(record: Path) -> str | None:
    try:
        value = json.loads(record.read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def main(argv: Sequence[str] | None = None) -> int:
    import llama_cpp

    args = list(sys.argv[1:] if argv is None else argv)
    llm = llama_cpp.Llama(model_path=args[0], n_ctx=256, n_threads=min(2, os.cpu_count() or 1), verbose=False)
    out = llm.create_completion("The capital of France is", max_tokens=TEST_TOKENS, temperature=0.0, stream=False)
    assert isinstance(out, dict)
    print(json.dumps({"text": out["choices"][0]["text"], "system": llama_cpp.llama_print_system_info().decode()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
