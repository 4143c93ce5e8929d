"""The embedded runtime as a process of its own: `aistack ollama serve`, started, watched, stopped.

llama.cpp is native code. When it crashes (a build that does not suit the CPU, a corrupt GGUF,
memory), it must take down only the runtime, never the `aistack run`, `aistack airflow` or
`aistack agents serve` process that uses it, its agents or its Airflow. So those commands start
the very `aistack ollama serve` a user can start by hand, as a child on a free 127.0.0.1 port:

- `start()` runs it with `--port 0 --ready-fd N`: the child binds a free port, proves that it
  can generate (aistack.runtime.selftest) and writes `{"url": ...}` on the pipe, or
  `{"error": ...}` with the cause and the fix; a child that dies before either is explained
  from its exit status and log.
- A watcher thread waits on the child. An exit nobody asked for is recorded as the cause
  ("the model runtime exited with signal 11 (SIGSEGV); see LOG"), published for the URL
  (`exit_cause()`, which the agents' Ollama backend puts into a failed task's message), and
  reported to `on_exit` callbacks, so a run can end at once instead of retrying into a dead
  server. With `restart=True` (long-lived commands) it is started again on the same port.
- `stop()` sends SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from aistack.runtime.config import MAX_BODY_ENV, RuntimeConfig

log = logging.getLogger("aistack.runtime")

START_TIMEOUT = 240.0  # the first start proves generation (model load + a few tokens)
STOP_GRACE = 10.0
RESTART_DELAYS = (0.5, 2.0, 5.0)  # between restarts of a runtime that keeps dying; then it stays down

_causes: dict[str, str] = {}
_causes_lock = threading.Lock()


def exit_cause(url: str) -> str | None:
    """Why the supervised runtime at `url` is gone, when it died unasked; None otherwise."""
    with _causes_lock:
        return _causes.get(url.rstrip("/"))


def _publish(url: str, cause: str | None) -> None:
    with _causes_lock:
        if cause is None:
            _causes.pop(url.rstrip("/"), None)
        else:
            _causes[url.rstrip("/")] = cause


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown"
        return f"signal {number} ({name})"
    return f"status {returncode}"


class RuntimeStartError(RuntimeError):
    """The runtime did not start; the message says why (and, for a crash, how to fix it)."""


class RuntimeProcess:
    """One supervised `aistack ollama serve` child; `url` is set once it serves."""

    def __init__(
        self,
        config: RuntimeConfig | None = None,
        log_path: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        restart: bool = False,
        selftest: bool = True,
    ) -> None:
        self.config = config or RuntimeConfig()
        self.host, self.port = host, port
        self.restart = restart
        self.selftest = selftest
        self.log_path = log_path
        self.url: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.on_exit: list[Callable[[str], None]] = []
        self._stopping = threading.Event()
        self._log: IO[bytes] | None = None
        self._watcher: threading.Thread | None = None

    # -- the command line -------------------------------------------------------------------

    def command(self, ready_fd: int) -> list[str]:
        config = self.config
        substitutions = config.substitution_map()
        argv = [
            sys.executable,
            "-m",
            "aistack.cli",
            "ollama",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--ready-fd",
            str(ready_fd),
            "--store",
            str(config.store_path()),
            "--base-models",
            ",".join(f"{k}={v}" for k, v in substitutions.items()),
        ]
        if config.n_threads:
            argv += ["--threads", str(config.n_threads)]
        if config.n_ctx:
            argv += ["--context", str(config.n_ctx)]
        if config.keep_alive is not None:
            argv += ["--keep-alive", str(config.keep_alive)]
        if config.num_parallel is not None:
            argv += ["--parallel", str(config.num_parallel)]
        if not self.selftest:
            argv.append("--no-selftest")
        return argv

    def environment(self) -> dict[str, str] | None:
        """The child's environment: ours (None), plus the settings `serve` takes only from it."""
        if self.config.max_body is None:
            return None
        return {**os.environ, MAX_BODY_ENV: str(self.config.max_body)}

    # -- start, watch, stop -----------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> RuntimeProcess:
        if self._log is None and self.log_path is not None:  # without a log, the child shares our stderr
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")
        self._spawn(timeout)
        self._watcher = threading.Thread(target=self._watch, name="aistack-runtime-watch", daemon=True)
        self._watcher.start()
        return self

    def _spawn(self, timeout: float) -> None:
        read_fd, write_fd = os.pipe()
        try:
            self.process = subprocess.Popen(
                self.command(write_fd),
                stdin=subprocess.DEVNULL,
                stdout=self._log if self._log is not None else 2,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                pass_fds=(write_fd,),
                start_new_session=True,  # Ctrl-C reaches the parent, which stops it
            )
        finally:
            os.close(write_fd)
        try:
            message = _read_line(read_fd, timeout, self.process)
        finally:
            os.close(read_fd)
        if message is None:
            returncode = self.process.poll()
            self._kill()
            where = f"; see {self.log_path}" if self.log_path else ""
            if returncode is None:
                raise RuntimeStartError(f"the model runtime did not start within {timeout:.0f}s{where}")
            raise RuntimeStartError(f"the model runtime exited with {describe_exit(returncode)} while starting{where}")
        if "error" in message:
            self._kill()
            raise RuntimeStartError(str(message["error"]))
        self.url = str(message["url"])
        self.port = int(self.url.rsplit(":", 1)[1])
        _publish(self.url, None)
        log.info("embedded model runtime (pid %d) listening on %s", self.process.pid, self.url)

    def _watch(self) -> None:
        delays = list(RESTART_DELAYS)
        while True:
            process = self.process
            assert process is not None
            returncode = process.wait()
            if self._stopping.is_set():
                return
            where = f"; see {self.log_path}" if self.log_path else ""
            cause = f"the model runtime exited with {describe_exit(returncode)}{where}"
            log.error("%s", cause)
            if self.url:
                _publish(self.url, cause)
            for callback in list(self.on_exit):
                with contextlib.suppress(Exception):
                    callback(cause)
            if not self.restart or not delays:
                return
            time.sleep(delays.pop(0))
            if self._stopping.is_set():
                return
            try:
                self._spawn(START_TIMEOUT)
                log.warning("the model runtime was restarted on %s", self.url)
            except RuntimeStartError as exc:
                log.error("the model runtime could not be restarted: %s", exc)
                return

    def stop(self, grace: float = STOP_GRACE) -> None:
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                log.warning("the model runtime did not stop within %.0fs: killing it", grace)
                self._kill()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(grace)
        if self.url:
            _publish(self.url, None)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait()

    def __enter__(self) -> RuntimeProcess:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_line(fd: int, timeout: float, process: subprocess.Popen[bytes]) -> dict[str, Any] | None:
    """The child's one JSON line on the ready pipe; None at end of file or after `timeout`."""
    deadline = time.monotonic() + timeout
    buffer = b""
    while b"\n" not in buffer:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not readable:
            if process.poll() is not None:
                return None
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        buffer += chunk
    try:
        value = json.loads(buffer.split(b"\n", 1)[0])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def report_ready(fd: int | None, **fields: Any) -> None:
    """The child's side of the ready pipe (see `aistack ollama serve --ready-fd`)."""
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, (json.dumps(fields) + "\n").encode())
        os.close(fd)
