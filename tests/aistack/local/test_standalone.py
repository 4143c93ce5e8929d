"""`aistack airflow` end to end: the real CLI in a subprocess starts `airflow standalone` (scheduler,
DAG processor, triggerer, api-server) over the repository's dags/, with the embedded runtime and real
agents. A person triggers a run from the UI's form in a real browser and reads its results; a
pipeline triggered through the REST API with another input is run by the scheduler to completion;
the plugin's pages, `aistack get` and `aistack logs` show it; Ctrl-C stops everything.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from html import escape as html_escape
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import psutil
import pytest

from tests.aistack.local.support import COMMAND, REPO, clean_env
from tests.kubeapi.support import eventually
from tests.standalone import call, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EXAMPLE = REPO / "examples" / "question-answering"
CHROMIUM = "/usr/bin/chromium"
DAG_ID = "aistack__default__question-answering"


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory):
    """The running command, its announced URL and login, what it printed so far, and its folder
    (its AISTACK_HOME is `home` there): one `aistack airflow` for the tests below, in order."""
    port = free_port()
    tmp_path = tmp_path_factory.mktemp("aistack-airflow")
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
        yield process, found.group(1), found.group(2), found.group(3), lines, tmp_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


QUESTION = "Question: What colour is the sky on a clear day?\n\nContext: On a clear day the sky over the lake looks blue."


def test_a_person_triggers_a_run_from_the_form_and_reads_its_results_in_a_browser(airflow_ui):
    """Headless Chromium (Debian's), driven by Playwright as a person clicks: log in, trigger the
    pipeline from its form with a multi-line input, watch the TaskOrchestrations page until the run
    ends (it reloads itself), open the run's page and read the answer there."""
    from playwright.sync_api import sync_playwright

    process, base, user, password, lines, root = airflow_ui
    assert Path(CHROMIUM).is_file(), f"the UI test needs Debian's chromium at {CHROMIUM}: apt-get install chromium (make test installs it)"
    token = httpx.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=10).json()["access_token"]
    api = httpx.Client(base_url=f"{base}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=20)
    shots = root / "screenshots"
    shots.mkdir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", password)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/")

            page.goto(f"{base}/dags?tags=aistack")
            page.get_by_text(DAG_ID).first.wait_for()
            page.screenshot(path=shots / "airflow-dags.png")
            page.goto(f"{base}/dags/{DAG_ID}")
            page.get_by_role("button", name="Trigger").first.click()
            form = page.locator("textarea[name=element_input]")
            form.fill(QUESTION)
            page.screenshot(path=shots / "airflow-trigger-form.png")
            page.get_by_role("button", name="Trigger").last.click()
            page.wait_for_url(re.compile(r"/runs/[^/]+$"))
            run_id = unquote(page.url.rsplit("/runs/", 1)[1])
            assert call(api, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["conf"]["input"] == QUESTION, "the form kept every line"

            page.goto(f"{base}/plugin/taskorchestrations")
            row = page.frame_locator("iframe").locator("tr", has_text="question-answering")
            seen = []
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                shown = row.inner_text(timeout=10_000)
                state = call(api, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
                seen.append((shown.split("\t")[2] if "\t" in shown else shown, state))
                if "Succeeded" in shown:
                    break
                time.sleep(1)  # the page reloads itself while a run goes on: nothing is clicked
            assert "Succeeded" in shown and "2/2" in shown and "every step completed" in shown, seen
            assert all(state == "success" for phase, state in seen if "Succeeded" in phase), f"Succeeded only once the run ended: {seen}"
            assert any("Running" in phase or "Pending" in phase for phase, _ in seen), f"it said it was running: {seen}"
            page.screenshot(path=shots / "airflow-taskorchestrations.png")

            row.locator("a", has_text=run_id).click()
            page.wait_for_timeout(1000)
            results = next(f for f in page.frames if f.url.startswith(f"{base}/aistack/runs/"))
            text = results.inner_text("body")
            answer = call(api, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/answer/xcomEntries/return_value", params={"deserialize": True})["value"]
            assert answer["artifacts"][0]["text"].strip().splitlines()[0] in text, "the answer is on the run's page"
            assert "progress 2/2" in text and "Success" in text and "Passed" in text, text[:2000]
            assert f"{answer['usage']['promptTokens']} prompt + {answer['usage']['completionTokens']} completion tokens" in text
            page.screenshot(path=shots / "airflow-run-results.png")
            page.goto(f"{base}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}")
            page.wait_for_timeout(2000)
            page.screenshot(path=shots / "airflow-pipeline-run.png")
        finally:
            browser.close()
    if os.environ.get("AISTACK_SCREENSHOTS"):  # refresh the README's: AISTACK_SCREENSHOTS=docs/images
        for shot in shots.glob("*.png"):
            shutil.copy(shot, Path(os.environ["AISTACK_SCREENSHOTS"]) / shot.name)


def test_a_pipeline_triggered_with_another_input_runs_to_completion_in_standalone(airflow_ui):
    process, base, user, password, lines, tmp_path = airflow_ui
    assert base == f"http://127.0.0.1:{base.rsplit(':', 1)[1]}"
    assert httpx.get(f"{base}/aistack/orchestrations", timeout=10).status_code == 401, "the page needs a login"
    token = httpx.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=10).json()["access_token"]
    api = httpx.Client(base_url=f"{base}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=20)

    dags = {d["dag_id"]: d for d in call(api, "GET", "/dags", params={"limit": 100})["dags"]}
    assert not dags[DAG_ID]["is_paused"], "the generated pipeline is unpaused, ready to trigger"
    assert {"ollama_model_builds", "ollama_agents", "task_orchestration_watcher"} <= set(dags)
    assert dags["task_orchestration_watcher"]["is_paused"], "no cluster to watch with a folder source"

    question = "Question: What colour is grass?\n\nContext: The grass in the park is green."
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
    assert "Results written to: <code>" in results.text and "result.json</code>" in results.text, "where publish wrote them"
    assert httpx.get(f"{base}/aistack/runs/{DAG_ID}/no-such-run", headers={"Authorization": f"Bearer {token}"}, timeout=20).status_code == 404
    html = httpx.get(f"{base}/aistack/", cookies={"_token": token}, timeout=20)
    assert html.status_code == 200 and f"dags/{DAG_ID}" in html.text, "the UI session cookie opens the page"

    login = ["--url", base, "--user", user, "--password", password]
    env = clean_env(tmp_path / "home", tmp_path / "user")
    got = subprocess.run([*COMMAND, "get", "question-answering", *login], env=env, capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stdout + got.stderr
    assert got.stdout.startswith(f"default/question-answering  run {run_id}\n") and "✔ success  progress 2/2" in got.stdout
    answer_line = next(line for line in got.stdout.splitlines() if "✔ answer" in line)
    assert "chat-model:1.0.0" in answer_line and f"{answer['usage']['totalTokens']:,}" in answer_line, answer_line
    logs = subprocess.run([*COMMAND, "logs", "question-answering", "answer", *login], env=env, capture_output=True, text=True, timeout=60)
    assert logs.returncode == 0 and logs.stdout.startswith("==> answer (try 1) <==\n"), logs.stdout + logs.stderr
    assert "usage: " in logs.stdout and text.splitlines()[0][:60] in logs.stdout, "the step's log, with its answer and usage"

    submitted = subprocess.run(
        [*COMMAND, "submit", str(EXAMPLE / "task.yaml"), "--airflow", "--watch", "--input", "Question: Is ice cold?\n\nContext: Ice is cold.", *login],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    out = submitted.stdout.splitlines()
    assert out[0].startswith(f"triggered {DAG_ID}: {base}/aistack/runs/{DAG_ID}/") and out[1].startswith("run manual__")
    assert "answer                       success" in submitted.stdout and "✔ success  progress 2/2" in submitted.stdout, "followed to the end"

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
