"""`aistack submit FILE --watch` in a cluster: the real command in a subprocess against the
Kubernetes API test server (tests/kubeapi). The Airflow side (the submission watcher and the run
writing the status) is played by a deterministic test double that patches the resource's status
as a run does; the Airflow path is tested against a real `airflow standalone` in
tests/aistack/local/test_standalone.py."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from kubernetes import client

from aistack.kube.client import ResourceClient, api_client
from aistack.resources import TaskOrchestration
from tests.aistack.local.support import COMMAND, REPO

TASK = REPO / "examples" / "question-answering" / "task.yaml"


def _submit(kubeconfig: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, "submit", *args, "--kubeconfig", str(kubeconfig), "--timeout", "30"], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _play_run(resources: ResourceClient, run_id: str, outcome: str, started: threading.Event) -> None:
    """What the watcher and a run write to the status, a step at a time (the double of Airflow):
    as the watcher does, only once the resource is new or its spec changed (a new generation)."""

    def generation() -> int:
        try:
            return int(resources.get_raw(TaskOrchestration, "question-answering", "default")["metadata"].get("generation", 1))
        except client.ApiException:
            return 0

    seen = generation()
    deadline = time.monotonic() + 30
    while generation() == seen and time.monotonic() < deadline:
        time.sleep(0.1)
    started.set()
    usage = {"model": "chat-model:1.0.0", "promptTokens": 98, "completionTokens": 9, "totalTokens": 107}
    patches = [
        {"phase": "Running", "runId": run_id, "nodes": {"answer": {"phase": "Running", "attempts": 1, "startedAt": "2026-12-03T06:00:01Z"}}},
        {"nodes": {"answer": {"phase": "Succeeded", "usage": usage}, "check-answer": {"phase": "Running", "attempts": 1, "startedAt": "2026-12-03T06:00:03Z"}}},
        {"nodes": {"check-answer": {"phase": outcome, **({"message": "the quality check did not pass"} if outcome == "Failed" else {})}}},
        {
            "phase": outcome,
            "progress": "2/2",
            "message": "every step completed" if outcome == "Succeeded" else "final steps that did not complete: check-answer",
            "usage": {"promptTokens": 250, "completionTokens": 60, "totalTokens": 310, "agentCalls": 2, "modelSeconds": 2.5},
            "outputs": ["s3://ai-results/qa/default/question-answering/r/result.json"],
        },
    ]
    for patch in patches:
        time.sleep(0.5)
        resources.patch_status(TaskOrchestration, "question-answering", "default", patch)


def test_submit_watch_applies_the_resource_and_follows_its_run_to_the_end(kube_api, kubectl, kubeconfig):
    kubectl("apply", "-f", str(REPO / "crds" / "taskorchestration_crd.yaml"))
    resources = ResourceClient(api_client(str(kubeconfig)))
    started = threading.Event()
    playing = threading.Thread(target=_play_run, args=(resources, "manual__1", "Succeeded", started))
    playing.start()
    done = _submit(kubeconfig, str(TASK), "--watch")
    playing.join()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "taskorchestration default/question-answering created"
    assert lines[1] == "run manual__1"
    assert any(line.startswith("answer") and "Succeeded" in line and "107 tokens" in line for line in lines), lines
    assert lines[-2:] == ["Succeeded  progress 2/2  310 tokens  every step completed", "  s3://ai-results/qa/default/question-answering/r/result.json"]

    again = _submit(kubeconfig, str(TASK), "--watch")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[0] == "taskorchestration default/question-answering unchanged"
    assert "run manual__1" in again.stdout, "nothing changed, no new run: the current one is shown"

    changed = TASK.read_text().replace('timeout: "2m"', 'timeout: "3m"')
    assert changed != TASK.read_text()
    edited = kubeconfig.parent / "task.yaml"
    edited.write_text(changed)
    started.clear()
    playing = threading.Thread(target=_play_run, args=(resources, "manual__2", "Failed", started))
    playing.start()
    failed = _submit(kubeconfig, str(edited), "--watch")
    playing.join()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert failed.stdout.splitlines()[0] == "taskorchestration default/question-answering configured"
    assert "run manual__2" in failed.stdout and "manual__1" not in failed.stdout, "the new run, not the one before"
    assert any("check-answer" in line and "the quality check did not pass" in line for line in failed.stdout.splitlines())


def test_an_invalid_file_submits_nothing(kube_api, kubectl, kubeconfig, tmp_path: Path):
    kubectl("apply", "-f", str(REPO / "crds" / "taskorchestration_crd.yaml"))
    bad = tmp_path / "task.yaml"
    bad.write_text(TASK.read_text().replace("dependsOn", "dependsOnn", 1))
    done = _submit(kubeconfig, str(bad), "--watch")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("aistack submit: nothing was submitted:") and "dependsOnn" in done.stderr
    assert "question-answering" not in kubectl("get", "taskorchestrations", "-A", "-o", "name").stdout
