"""`aistack airflow` end to end: the real CLI in a subprocess starts `airflow standalone` (scheduler,
DAG processor, triggerer, api-server) over the repository's dags/, with the embedded runtime and real
agents. A pipeline triggered through the REST API with another input is run by the scheduler to
completion; the plugin's TaskOrchestrations page shows it; Ctrl-C stops everything.
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
from html import escape as html_escape
from pathlib import Path

import httpx
import psutil
import pytest

from tests.aistack.local.support import COMMAND, REPO, clean_env
from tests.kubeapi.support import eventually
from tests.standalone import call, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EXAMPLE = REPO / "examples" / "question-answering"
DAG_ID = "aistack__default__question-answering"


@pytest.fixture
def airflow_ui(tmp_path: Path):
    """The running command, its announced URL and login, and what it printed so far."""
    port = free_port()
    (tmp_path / "user").mkdir()
    process = subprocess.Popen(
        [*COMMAND, "airflow", str(EXAMPLE), "--port", str(port)],
        cwd=REPO,
        env=clean_env(tmp_path / "home", tmp_path / "user"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            found = re.search(r"Airflow UI\s+(\S+)\s+\(login: (\S+) / (\S+)\)", line)
            if found:
                break
        else:
            raise AssertionError("".join(lines))
        yield process, found.group(1), found.group(2), found.group(3), lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_pipeline_triggered_with_another_input_runs_to_completion_in_standalone(airflow_ui, tmp_path: Path):
    process, base, user, password, lines = airflow_ui
    assert base == f"http://127.0.0.1:{base.rsplit(':', 1)[1]}"
    assert httpx.get(f"{base}/aistack/orchestrations", timeout=10).status_code == 401, "the page needs a login"
    token = httpx.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=10).json()["access_token"]
    api = httpx.Client(base_url=f"{base}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=20)

    dags = {d["dag_id"]: d for d in call(api, "GET", "/dags", params={"limit": 100})["dags"]}
    assert not dags[DAG_ID]["is_paused"], "the generated pipeline is unpaused, ready to trigger"
    assert {"ollama_model_builds", "ollama_agents", "task_orchestration_watcher"} <= set(dags)
    assert dags["task_orchestration_watcher"]["is_paused"], "no cluster to watch with a folder source"

    question = "Question: What colour is the sky on a clear day?\n\nContext: On a clear day the sky is blue."
    run = call(api, "POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {"input": question}})
    run_id = run["dag_run_id"]

    def finished():
        state = call(api, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        return state if state in ("success", "failed") else None

    assert eventually(finished, timeout=300, interval=1) == "success", "the scheduler finished the run"
    tasks = {t["task_id"]: t["state"] for t in call(api, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]}
    assert tasks == {"answer": "success", "check-answer": "success", "publish": "success"}
    conf = call(api, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["conf"]
    assert conf == {"input": question}
    answer = call(api, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/answer/xcomEntries/return_value", params={"deserialize": True})["value"]
    assert answer, "the step's result is in XCom"
    listening = _listening(process.pid)
    assert listening and all(ip == "127.0.0.1" for ip, _ in listening), f"every server binds 127.0.0.1: {listening}"

    page = httpx.get(f"{base}/aistack/orchestrations", headers={"Authorization": f"Bearer {token}"}, timeout=20).json()
    row = next(o for o in page["orchestrations"] if o["dagId"] == DAG_ID)
    assert (row["phase"], row["runId"], row["progress"]) == ("Succeeded", run_id, "2/2")
    assert row["tokens"] > 0 and row["message"] == "every step completed"
    results = httpx.get(f"{base}/aistack/runs/{DAG_ID}/{run_id}", headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert results.status_code == 200 and "progress 2/2" in results.text and ">Success<" in results.text
    text = answer["artifacts"][0]["text"]
    assert html_escape(text.splitlines()[0]) in results.text, "the answer is on the run's page"
    assert "chat-model:1.0.0" in results.text and "completion tokens" in results.text
    assert httpx.get(f"{base}/aistack/runs/{DAG_ID}/no-such-run", headers={"Authorization": f"Bearer {token}"}, timeout=20).status_code == 404
    html = httpx.get(f"{base}/aistack/", cookies={"_token": token}, timeout=20)
    assert html.status_code == 200 and f"dags/{DAG_ID}" in html.text, "the UI session cookie opens the page"

    outputs = list((tmp_path / "home" / "outputs").rglob("*"))
    assert any(p.suffix == ".json" for p in outputs), "S3 output lands locally without AWS access"

    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=90)
    assert process.returncode == 0, "".join(lines) + rest
    assert "stopping" in rest
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/api/v2/monitor/health", timeout=2)


def _listening(pid: int) -> list[tuple[str, int]]:
    """The addresses the command and every process it started listen on."""
    root = psutil.Process(pid)
    sockets = []
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            sockets += [c.laddr for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    return sorted({(address.ip, address.port) for address in sockets})


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path):
    (tmp_path / "user").mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*COMMAND, "airflow", str(EXAMPLE), "--port", str(port)],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=clean_env(tmp_path / "home", tmp_path / "user"),
            timeout=120,
        )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr and "--port" in result.stderr
    assert not (tmp_path / "home" / "airflow-ui").exists(), "nothing was started or written"
    assert result.stdout == ""


def test_invalid_resources_are_listed_and_nothing_starts(tmp_path: Path):
    (tmp_path / "user").mkdir()
    folder = tmp_path / "pipelines"
    folder.mkdir()
    task = (EXAMPLE / "task.yaml").read_text().replace("dependsOn", "dependsOnn", 1)
    (folder / "task.yaml").write_text(task)
    result = subprocess.run(
        [*COMMAND, "airflow", str(folder), "--port", str(free_port())],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=clean_env(tmp_path / "home", tmp_path / "user"),
        timeout=120,
    )
    assert result.returncode == 2
    assert 'dependsOnn: unknown field (did you mean "dependsOn"?)' in result.stderr
    assert "nothing was started" in result.stderr
    assert not (tmp_path / "home" / "airflow-ui").exists()
