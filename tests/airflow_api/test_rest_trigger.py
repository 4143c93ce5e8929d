"""Triggering a generated pipeline DAG through Airflow's REST API, as a user's script would:
a real `airflow api-server` on 127.0.0.1, a JWT from /auth/token, POST a run with conf, read it back."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
DAG_ID = "aistack__default__question-answering"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def api_server(airflow_db, repo: Path, tmp_path: Path):
    airflow = str(Path(sys.executable).parent / "airflow")
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"alice": "s3cret"}))
    port = _free_port()
    env = {
        **os.environ,
        "AISTACK_ORCHESTRATIONS_PATH": str(repo / "examples"),
        "AISTACK_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "alice:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__SECRET_KEY": "rest-test-secret",
        "AIRFLOW__API_AUTH__JWT_SECRET": "rest-test-jwt-secret",
    }
    subprocess.run([airflow, "dags", "reserialize", "--bundle-name", "aistack"], env=env, check=True, capture_output=True, timeout=300)
    log = open(tmp_path / "api-server.log", "w")
    server = subprocess.Popen([airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "api-server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_trigger_a_generated_dag_with_conf_and_read_the_run_back(api_server):
    token = httpx.post(f"{api_server}/auth/token", json={"username": "alice", "password": "s3cret"}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    dag = httpx.get(f"{api_server}/api/v2/dags/{DAG_ID}", headers=headers)
    assert dag.status_code == 200 and "aistack" in [t["name"] for t in dag.json()["tags"]]

    created = httpx.post(
        f"{api_server}/api/v2/dags/{DAG_ID}/dagRuns",
        headers=headers,
        json={"logical_date": None, "conf": {"input": "Question: why is the sky blue?\n\nContext: Rayleigh scattering."}},
    )
    assert created.status_code == 200, created.text
    run_id = created.json()["dag_run_id"]

    run = httpx.get(f"{api_server}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", headers=headers).json()
    assert run["conf"]["input"].startswith("Question: why is the sky blue?")
    assert run["state"] in ("queued", "running")

    refused = httpx.post(f"{api_server}/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
    assert refused.status_code == 401, "the API needs the token"
