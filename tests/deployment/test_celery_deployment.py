"""The watcher path and the failure cases on Airflow as deployed (PostgreSQL, Redis, the Celery
executor with two workers, every component its own process: tests/deployment/airflow.py).

Pipelines are submitted as a person does, with `kubectl apply` to the Kubernetes API test server;
the watcher DAG turns them into runs and the steps write their progress back to the resources.
The agents are deterministic fakes served from this process (conftest.py): what is tested is the
platform's scheduling, not the model."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest
import yaml

from aistack.pipelines.submissions import run_id_for
from tests.deployment.stack import Stack, watcher_armed
from tests.kubeapi.support import eventually
from tests.standalone import call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

API = "ai.stack/v1alpha1"
DONE = ("Succeeded", "Failed", "RolledBack")


def orchestration(name: str, steps: list[dict[str, Any]], text: str = "Say hello.") -> dict[str, Any]:
    return {"apiVersion": API, "kind": "TaskOrchestration", "metadata": {"name": name, "namespace": "default"}, "spec": {"input": {"text": text}, "pipeline": steps}}


def apply(stack: Stack, *resources: dict[str, Any]) -> None:
    stack.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(resources))


def resource(stack: Stack, name: str) -> dict[str, Any]:
    found = stack.kube.get_object(API, "TaskOrchestration", name, "default")
    assert found is not None, name
    return found


def finished(stack: Stack, names: list[str]) -> dict[str, dict[str, Any]] | None:
    statuses = {name: resource(stack, name).get("status") or {} for name in names}
    return statuses if all(s.get("phase") in DONE for s in statuses.values()) else None


def api(stack: Stack) -> Any:
    import httpx

    return httpx.Client(base_url=f"{stack.airflow.base_url}/api/v2", timeout=20)


def task_instances(client: Any, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    found = call(client, "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
    return {t["task_id"]: t for t in found}


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def worker_of(ti: dict[str, Any]) -> str:
    return ti["hostname"].split(".", 1)[0]


def test_twenty_pipelines_applied_at_once_each_run_exactly_once_with_a_consistent_status(stack: Stack):
    names = [f"burst-{i:02d}" for i in range(20)]
    apply(stack, *(orchestration(name, [{"name": "answer", "agentRef": "echo-agent"}], text=f"Question number {i}.") for i, name in enumerate(names)))

    statuses = eventually(lambda: finished(stack, names), timeout=300, interval=1)

    with api(stack) as client:
        for i, name in enumerate(names):
            status, uid = statuses[name], resource(stack, name)["metadata"]["uid"]
            dag_id = f"aistack__default__{name}"
            assert status["phase"] == "Succeeded", (name, status)
            assert status["runId"] == run_id_for(uid, 1) and status["dagId"] == dag_id
            assert status["observedGeneration"] == 1
            assert status["progress"] == "1/1" and status["nodes"]["answer"]["phase"] == "Succeeded", status
            runs = call(client, "GET", f"/dags/{dag_id}/dagRuns")["dag_runs"]
            assert [r["dag_run_id"] for r in runs] == [status["runId"]], f"{name} was run {len(runs)} times"
            # Each run answered its own question: no step saw another pipeline's input.
            (result,) = stack.outputs.glob(f"default/{name}/*/result.json")
            text = json.dumps(json.loads(result.read_text())["steps"]["answer"]["artifacts"])
            assert f"Question number {i}." in text
            assert not any(f"Question number {j}." in text for j in range(20) if j != i)
    echo = stack.models["echo-agent"]
    assert [echo.asked(f"Question number {i}.") for i in range(20)] == [1] * 20, "every pipeline's agent call was made once"


def test_parallel_branches_run_at_the_same_time_on_different_workers(stack: Stack):
    name = "branches"
    branches = [f"branch-{k}" for k in range(4)]
    steps = [{"name": "start", "agentRef": "echo-agent"}]
    steps += [{"name": b, "agentRef": "slow-agent", "dependsOn": ["start"], "prompt": f"Work on part {b}."} for b in branches]
    steps += [{"name": "join", "agentRef": "echo-agent", "dependsOn": branches}]
    apply(stack, orchestration(name, steps))

    status = eventually(lambda: finished(stack, [name]), timeout=240, interval=1)[name]

    assert status["phase"] == "Succeeded", status
    assert status["progress"] == "6/6"
    with api(stack) as client:
        tis = task_instances(client, status["dagId"], status["runId"])
    spans = [(ts(tis[b]["start_date"]), ts(tis[b]["end_date"])) for b in branches]
    assert max(start for start, _ in spans) < min(end for _, end in spans), f"the branches did not all run at once: {spans}"
    workers = {worker_of(tis[b]) for b in branches}
    assert workers == set(stack.airflow.workers), f"the branches ran on {workers} only"
    assert ts(tis["join"]["start_date"]) >= max(end for _, end in spans)


def test_a_worker_killed_in_the_middle_of_a_step_is_retried_elsewhere_and_reuses_the_agents_task(stack: Stack):
    name, text = "killed-worker", "The text of the killed worker's step."
    apply(stack, orchestration(name, [{"name": "long", "agentRef": "slow-agent", "retries": 2}], text=text))
    slow = stack.models["slow-agent"]
    asked = lambda: sum(any(text in str(m.get("content", "")) for m in r.messages) for r in list(slow.requests))  # noqa: E731
    dag_id = f"aistack__default__{name}"

    with api(stack) as client:

        def running_step() -> dict[str, Any] | None:
            run_id = (resource(stack, name).get("status") or {}).get("runId")  # written when the watcher triggered it
            ti = task_instances(client, dag_id, run_id).get("long") if run_id else None
            return ti if ti and ti["state"] == "running" and asked() else None

        first = eventually(running_step, timeout=120, interval=0.2)
        assert first["try_number"] == 1
        victim = worker_of(first)
        stack.airflow.kill(victim)
        try:
            status = eventually(lambda: finished(stack, [name]), timeout=240, interval=1)[name]
            last = task_instances(client, dag_id, first["dag_run_id"])["long"]
        finally:
            stack.airflow.start_component(victim)
            stack.airflow.wait_for_worker(victim, timeout=120)

    assert status["phase"] == "Succeeded", status
    assert last["try_number"] == 2 and worker_of(last) != victim, last
    assert status["nodes"]["long"]["attempts"] == 2
    assert asked() == 1, "the agent ran the step's task once, not once per try"


def test_submissions_made_while_the_triggerer_restarts_are_each_run_once(stack: Stack):
    names = [f"restart-{i}" for i in range(5)]
    with api(stack) as client:
        eventually(lambda: watcher_armed(client), timeout=120, interval=0.5)
        stack.airflow.kill("triggerer")
        apply(stack, *(orchestration(name, [{"name": "answer", "agentRef": "echo-agent"}], text=f"Asked during the restart, {name}.") for name in names))
        time.sleep(2)
        stack.airflow.start_component("triggerer")
        statuses = eventually(lambda: finished(stack, names), timeout=240, interval=1)
        for name in names:
            assert statuses[name]["phase"] == "Succeeded", statuses[name]
            runs = call(client, "GET", f"/dags/aistack__default__{name}/dagRuns")["dag_runs"]
            assert len(runs) == 1, f"{name} was run {len(runs)} times"
        eventually(lambda: watcher_armed(client), timeout=120, interval=0.5)
    echo = stack.models["echo-agent"]
    assert [echo.asked(f"Asked during the restart, {name}.") for name in names] == [1] * 5
