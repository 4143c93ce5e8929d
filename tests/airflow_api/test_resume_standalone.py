"""`aistack resume` against a real `airflow standalone`: a two-step pipeline whose second step fails
on the first run (its agent's fake model fails until a flag file exists) is resumed from that step.
The first step is not run again, the second runs a second try, and publish writes both steps'
artifacts. The agents are served from this process (deterministic fakes, in the local agent
registry that the Airflow tasks read); the pipeline comes from a folder (AISTACK_ORCHESTRATIONS_PATH)."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest
import yaml

from aistack.agents.backend import ChatChunk, ChatRequest, ModelBackend, ModelError
from aistack.agents.fakes import EchoModelBackend, ScriptedModel
from aistack.agents.runner import serve_agents
from aistack.cli import main
from tests.aistack.agents.support import model_definition, ollama_agent
from tests.kubeapi.support import eventually
from tests.standalone import airflow_standalone, call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NAME = "resume-demo"
DAG_ID = f"aistack__default__{NAME}"


class FailsUntilFlag(ModelBackend):
    """Fake: fails every call with a ModelError until the ``flag`` file exists, then echoes."""

    model = "fails-until-flag:fake"

    def __init__(self, flag: Path) -> None:
        self.flag = flag
        self.calls = 0
        self.echo = EchoModelBackend()

    async def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        self.calls += 1
        if not self.flag.exists():
            raise ModelError(f"fake failure: {self.flag.name} does not exist yet")
        async for chunk in self.echo.chat(request):
            yield chunk

    async def check(self) -> None:
        return None


def pipeline() -> dict:
    return {
        "apiVersion": "ai.stack/v1alpha1",
        "kind": "TaskOrchestration",
        "metadata": {"name": NAME, "namespace": "default"},
        "spec": {
            "input": {"text": "Say hello."},
            "pipeline": [
                {"name": "first", "agentRef": "first-agent", "prompt": "Answer."},
                {"name": "second", "agentRef": "second-agent", "dependsOn": ["first"]},
            ],
        },
    }


def tasks(api, run_id: str) -> dict[str, dict]:
    return {t["task_id"]: t for t in call(api, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]}


def finished(api, run_id: str) -> str | None:
    state = call(api, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
    return state if state in ("success", "failed") else None


def test_a_failed_run_resumed_with_aistack_resume_repeats_only_the_failed_step(tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    dags, orchestrations, outputs = tmp_path / "dags", tmp_path / "orchestrations", tmp_path / "outputs"
    dags.mkdir()
    orchestrations.mkdir()
    shutil.copy(repo / "dags" / "task_orchestrations.py", dags)
    (orchestrations / "task.yaml").write_text(yaml.safe_dump(pipeline()))
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "aistack"))  # the registry the Airflow tasks read (tests/standalone.py)
    flag = tmp_path / "second-may-succeed"
    first, second = ScriptedModel(["The first answer."]), FailsUntilFlag(flag)
    backends = {"first-agent": first, "second-agent": second}
    agents = [(ollama_agent(name, streaming=False), model_definition()) for name in backends]
    env = {"AISTACK_ORCHESTRATIONS_PATH": str(orchestrations), "AISTACK_OUTPUT_DIR": str(outputs)}

    with serve_agents(agents, backends=lambda agent, definition: backends[agent.name], registry=True), airflow_standalone(tmp_path, dags, env) as api:
        eventually(lambda: call(api, "GET", "/dags", params={"dag_id_pattern": DAG_ID})["dags"], timeout=120, interval=0.5)
        run_id = call(api, "POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None})["dag_run_id"]
        assert eventually(lambda: finished(api, run_id), timeout=90, interval=0.5) == "failed"
        before = tasks(api, run_id)
        assert {t: (i["state"], i["try_number"]) for t, i in before.items()} == {"first": ("success", 1), "second": ("failed", 1), "publish": ("failed", 1)}

        flag.touch()
        base = str(api.base_url).removesuffix("/api/v2/")
        assert main(["resume", NAME, "--url", base]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert printed == [f"run {run_id} of {DAG_ID} resumed: cleared publish, second", f"{base}/dags/{DAG_ID}/runs/{run_id}"]
        assert main(["resume", NAME, run_id, "--url", base]) == 0, "the same command again finds its own resume"
        assert "was resumed already" in capsys.readouterr().out

        assert eventually(lambda: finished(api, run_id), timeout=90, interval=0.5) == "success"
        after = tasks(api, run_id)
        assert {t: (i["state"], i["try_number"]) for t, i in after.items()} == {"first": ("success", 1), "second": ("success", 2), "publish": ("success", 2)}
        assert after["first"]["end_date"] == before["first"]["end_date"], "the first step was not run again"
        assert main(["resume", NAME, run_id, "--url", base]) == 1
        assert "succeeded: nothing to resume" in capsys.readouterr().err

    assert len(first.requests) == 1, "the first agent saw its message once"
    assert second.calls == 2
    (result,) = outputs.glob(f"default/{NAME}/*/result.json")
    steps = json.loads(result.read_text())["steps"]
    assert {name: step["state"] for name, step in steps.items()} == {"first": "completed", "second": "completed"}
    assert "The first answer." in json.dumps(steps["first"]["artifacts"])
    assert "The first answer." in json.dumps(steps["second"]["artifacts"]), "the resumed step got the kept artifact of the first"
