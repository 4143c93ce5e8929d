"""`airflow standalone` (api-server, scheduler, DAG processor, triggerer; SQLite) for tests and
benchmarks that need Airflow's own scheduling: a private AIRFLOW_HOME, a DAG folder of the caller's
choosing, 127.0.0.1 on a free port, every component stopped at the end."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from aistack.local.standalone import stop_process_group

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def airflow_standalone(home: Path, dags: Path, env: Mapping[str, str] = (), timeout: float = 240) -> Iterator[httpx.Client]:
    """A REST API client (``/api/v2``, no login needed: every user is admin) once the API answers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    full_env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": base,
            "AIRFLOW__API__SECRET_KEY": "aistack-test-secret",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
            "AIRFLOW_CONN_AISTACK_AIRFLOW_API": base,  # the TaskOrchestration watcher's way back to the API
            "AISTACK_HOME": str(home / "aistack"),
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            **dict(env),
        }
    )
    log = open(home / "standalone.log", "wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "airflow"), "standalone"], env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    client = httpx.Client(base_url=f"{base}/api/v2", timeout=20)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/monitor/health").status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("airflow standalone did not start:\n" + (home / "standalone.log").read_text()[-4000:])
            time.sleep(0.5)
        yield client
    finally:
        client.close()
        stop_process_group(process)
        log.close()


def call(client: httpx.Client, method: str, path: str, timeout: float = 30, **kwargs) -> Any:
    """The JSON answer of a REST call, retried while Airflow answers 5xx: under `airflow standalone`
    SQLite is locked now and then by the scheduler or the DAG processor."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.request(method, path, **kwargs)
        if response.status_code < 500 or time.monotonic() > deadline:
            response.raise_for_status()
            return response.json()
        time.sleep(0.5)
