"""A warm Airflow worker for the next `aistack run`: started when a run ends, used by the next one.

Airflow's start in a fresh worker (imports, the execution API's versioned routes) costs about 5 s
of CPU on 2 cores, most of what a local run spends beyond its model calls. So when a run ends,
the runner starts the next run's worker at once (`python -m aistack.local.worker --standby
SOCKET`); it migrates nothing new, imports Airflow, warms the execution API up and waits, for
AISTACK_RUN_STANDBY seconds (default 600; 0: no standby), on a Unix socket in the private Airflow
home. The next run connects and sends its job (`hello`: the worker's config, the environment a
fresh worker would get, the run's log file, and what the worker must be); the standby takes it
only when it is that worker: the same aistack and provider code, the same Python, the same
Airflow settings. Otherwise it says `refused` and exits, and the run starts a fresh worker, as
it does when there is no standby, or when another run took it first (a standby serves one run).
Taken, it closes the socket, sends its output to the run's log and does the job exactly as a
fresh worker (worker.py), with its events and commands on the connection instead of a pipe and
stdin; the run's end then starts the next standby. Each run still gets a fresh process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from aistack import pickles, settings
from aistack.local import protocol

SOCKET_NAME = "standby.sock"
CONNECT_SECONDS = 30.0  # a standby still warming up answers once it is warm
STOP_SECONDS = 10.0


def identity(env: Mapping[str, str]) -> dict[str, Any]:
    """What a worker for `env` is: its code, its Python, its Airflow settings."""
    airflow = {k: v for k, v in env.items() if k == "AIRFLOW_HOME" or k.startswith("AIRFLOW__")}
    return {"code": pickles.code_fingerprint(), "python": sys.executable, "airflow": airflow}


# -- the worker's side ----------------------------------------------------------------------


def wait(path: Path, prepare: Callable[[Any], bool], serve: Callable[..., int]) -> int:
    """Be the standby at `path`: warm up, wait for one run, do its job (worker.serve); 0 when
    another standby is up, nobody came in time, or the run needs another worker."""
    from aistack.local.worker import Events, run_guarded

    with open(path.with_suffix(".lock"), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # one standby at a time
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a standby that died: we hold the lock
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(str(path))
            server.listen(1)
            with open(os.devnull, "w") as nowhere:
                migrated = prepare(Events(nowhere))
            server.settimeout(settings.run_standby_seconds())
            try:
                connection, _ = server.accept()
            except TimeoutError:
                return 0
        finally:
            server.close()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        fcntl.flock(lock, fcntl.LOCK_UN)  # the run's end may start the next standby
    with connection, connection.makefile("r", encoding="utf-8") as commands, connection.makefile("w", encoding="utf-8") as stream:
        events = Events(stream)
        hello = json.loads(commands.readline() or "{}")
        mine = identity(os.environ)
        if hello.get("identity") != mine:
            differs = sorted(k for k in mine if (hello.get("identity") or {}).get(k) != mine[k])
            events("refused", reason=f"this standby has another {', '.join(differs) or 'job format'}")
            return 0
        _output_to(Path(hello["log"]))
        os.environ.clear()
        os.environ.update(hello["env"])
        events("accepted", pid=os.getpid())
        return run_guarded(events, lambda: serve(hello["config"], events, commands, migrated, time.time()))


def _output_to(log: Path) -> None:
    """From now on, what this process and Airflow print goes to the run's log file."""
    sys.stdout.flush()
    sys.stderr.flush()
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)


# -- the runner's side ----------------------------------------------------------------------


def start(home_root: Path, env: Mapping[str, str]) -> None:
    """Start the next run's standby worker, detached (it outlives this run, exits when idle)."""
    if settings.run_standby_seconds() <= 0:
        return
    log = open(home_root / "standby.log", "ab")
    with log:
        subprocess.Popen(
            [sys.executable, "-m", "aistack.local.worker", "--standby", str(home_root / SOCKET_NAME)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )


class StandbyWorker(protocol.EventReader):
    """A standby that took this run's job, as the runner sees it (the same surface as WorkerProcess)."""

    def __init__(self, connection: socket.socket, stream: IO[str], pid: int) -> None:
        super().__init__()
        self.connection, self.pid = connection, pid
        self.running = False
        self._reader = self.listen(stream)

    @classmethod
    def take(cls, home_root: Path, config: dict[str, Any], env: Mapping[str, str], log_path: Path) -> StandbyWorker | str:
        """The standby, if one is up and takes this job; otherwise why not (start a fresh worker)."""
        path = home_root / SOCKET_NAME
        if settings.run_standby_seconds() <= 0:
            return f"no standby ({settings.RUN_STANDBY}=0)"
        if not path.exists():
            return "no standby was waiting"
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(CONNECT_SECONDS)
        try:
            connection.connect(str(path))
            hello = {"config": config, "env": dict(env), "log": str(log_path), "identity": identity(env)}
            connection.sendall((json.dumps(hello) + "\n").encode())
            stream = connection.makefile("r", encoding="utf-8")
            answer = next(protocol.read(stream), None)
        except OSError as exc:  # gone, refusing connections, or too slow to warm up
            connection.close()
            return f"the standby did not answer ({exc})"
        if answer is None or answer.get("event") != "accepted":
            connection.close()
            return f"the standby refused: {answer.get('reason')}" if answer else "the standby went away"
        connection.settimeout(None)
        return cls(connection, stream, int(answer["pid"]))

    def go(self, conf: dict[str, Any] | None) -> None:
        self.connection.sendall((json.dumps({"go": True, "conf": conf}) + "\n").encode())
        self.running = True

    def _alive(self) -> bool:
        with contextlib.suppress(ChildProcessError):  # our own child (a runner used twice in one process): reap it
            if os.waitpid(self.pid, os.WNOHANG)[0] == self.pid:
                return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def exit_status(self) -> int | None:
        """Not this process's child: None while it runs, 0 once it is gone."""
        return None if self._alive() else 0

    def stop(self) -> None:
        """Close our end: before `go` it exits, during the run it marks the run failed and exits.
        Then wait for its end of the connection to close (it exited: a process this runner did not
        start may linger as a zombie, so its pid says little), then kill it."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
        self._reader.join(STOP_SECONDS)
        if self._reader.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.connection.close()
