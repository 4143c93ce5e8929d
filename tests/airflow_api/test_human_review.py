"""A person in the loop, in a real `airflow standalone`, answering through the REST API as a
person's script would (the UI's Required actions use the same endpoint): a step's review (approve,
edit, reject, a timeout), and an agent's questions (TASK_STATE_INPUT_REQUIRED) answered into the
same A2A task, within the bound on rounds. The agents are deterministic test doubles: a model that
echoes what it was sent (so the step after a review shows what it received), and an A2A agent that
asks two questions before it answers (tests/airflow_api/asking_agent.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aistack.agents.fakes import EchoModelBackend
from aistack.agents.registry import RegistryEntry, register
from aistack.agents.runner import serve_agents
from aistack.pipelines.plan import dag_id_for
from tests.airflow_api.asking_agent import asking_agent
from tests.kubeapi.support import eventually
from tests.plugins.support import example_agents
from tests.standalone import REPO, airflow_standalone, call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PIPELINES = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: reviewed}
spec:
  input: {text: "Draft a greeting for the team."}
  pipeline:
    - name: draft
      agentRef: chat-agent
      review: {subject: "Check the greeting", allowEdit: true}
      artifacts: [{name: greeting, type: text/plain}]
    - {name: send, agentRef: chat-agent, dependsOn: [draft], inputFrom: [{taskRef: draft, artifactName: greeting}], includeInput: false, prompt: Send it.}
    - {name: apologize, agentRef: chat-agent, dependsOn: [draft], condition: failure, prompt: "Say the greeting was rejected."}
---
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: unattended}
spec:
  input: {text: "Draft a note."}
  pipeline:
    - {name: draft, agentRef: chat-agent, review: {timeout: 1m, onTimeout: approve}}
    - {name: send, agentRef: chat-agent, dependsOn: [draft], prompt: Send it.}
---
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: trip}
spec:
  input: {text: "Plan a weekend trip."}
  pipeline:
    - name: plan
      agentRef: asking-agent
      inputRequired: {maxRounds: 2, timeout: 10m}
      artifacts: [{name: answer, type: text/plain}]
    - {name: confirm, agentRef: chat-agent, dependsOn: [plan], includeInput: false, prompt: Confirm it.}
---
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: short-trip}
spec:
  input: {text: "Plan a weekend trip."}
  pipeline:
    - {name: plan, agentRef: asking-agent, inputRequired: {maxRounds: 1}}
"""
LOG = Path()  # the standalone's log, set by the fixture
REVIEWED, UNATTENDED = dag_id_for("default", "reviewed"), dag_id_for("default", "unattended")
TRIP, SHORT_TRIP = dag_id_for("default", "trip"), dag_id_for("default", "short-trip")
QUESTIONS = ["Which city is the trip to?", "Which month?"]


def _trigger(api, dag_id: str) -> str:
    return call(api, "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None})["dag_run_id"]


def _pending(api, dag_id: str, run_id: str, task: str = "draft__review", parks: int = 1) -> dict | None:
    """The open request, once its task waits for it (state awaiting_input) and the scheduler has
    seen the parked process end (its executor event, in the standalone log, once per park).
    Answered before that, Airflow 3.3's scheduler takes the late "success" of the parked process
    for a task changed externally and fails the resumed one (a race a person cannot win, a script
    can: the event came up to 6 s after the park here)."""
    details = call(api, "GET", f"/dags/{dag_id}/dagRuns/{run_id}/hitlDetails")["hitl_details"]
    pending = next((d for d in details if d["task_instance"]["task_id"] == task and d.get("response_received") is False), None)
    if pending is None or _tasks(api, dag_id, run_id).get(task) != "awaiting_input":
        return None
    ended = f"Received executor event with state success for task instance TaskInstanceKey(dag_id='{dag_id}', task_id='{task}', run_id='{run_id}'"
    return pending if LOG.read_text(errors="replace").count(ended) >= parks else None


def _ended(api, dag_id: str, run_id: str) -> str | None:
    state = call(api, "GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
    return state if state in ("success", "failed") else None


def _tasks(api, dag_id: str, run_id: str) -> dict[str, str]:
    return {t["task_id"]: t["state"] for t in call(api, "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]}


def _xcom(api, dag_id: str, run_id: str, task: str, key: str = "return_value"):
    return call(api, "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}/xcomEntries/{key}", params={"deserialize": True})["value"]


def _answer(api, dag_id: str, run_id: str, option: str, fields: dict | None = None, task: str = "draft__review") -> None:
    call(api, "PATCH", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}/-1/hitlDetails", json={"chosen_options": [option], "params_input": fields or {}})


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """One `airflow standalone` over the pipelines above, with their agents; yields the API client
    and the asking agent's executor (what it received)."""
    tmp_path = tmp_path_factory.mktemp("hitl")
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "task.yaml").write_text(PIPELINES)
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "task_orchestrations.py", dags)
    (tmp_path / "airflow").mkdir()
    home = tmp_path / "aistack"
    env = {
        "AISTACK_HOME": str(home),
        "AISTACK_AGENT_TOKEN": "review-test-token",
        "AISTACK_ORCHESTRATIONS_PATH": str(folder),
        "AISTACK_OUTPUT_DIR": str(tmp_path / "outputs"),
        "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",  # the sweep that applies a review's timeout
    }
    agents = [pair for pair in example_agents(REPO) if pair[0].name == "chat-agent"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AISTACK_HOME", str(home))
        patch.setenv("AISTACK_AGENT_TOKEN", "review-test-token")
        with serve_agents(agents, backends=lambda agent, definition: EchoModelBackend(), registry=True), asking_agent("asking-agent", QUESTIONS) as (url, asker):
            register([RegistryEntry("default", "asking-agent", url, f"{url}/.well-known/agent-card.json", "none")])
            with airflow_standalone(tmp_path / "airflow", dags, env) as api:
                global LOG
                LOG = tmp_path / "airflow" / "standalone.log"
                wanted = {REVIEWED, UNATTENDED, TRIP, SHORT_TRIP}
                eventually(lambda: wanted <= {d["dag_id"] for d in call(api, "GET", "/dags", params={"limit": 100})["dags"]}, timeout=180, interval=1)
                yield api, asker


def test_a_reviewer_approves_edits_or_rejects_and_a_timeout_decides_alone(airflow):
    api, _ = airflow
    timed_out = _trigger(api, UNATTENDED)  # started first: its minute runs while the others are answered

    approved = _trigger(api, REVIEWED)
    request = eventually(lambda: _pending(api, REVIEWED, approved), timeout=120, interval=1)
    assert request["subject"] == "Check the greeting" and request["options"] == ["Approve", "Reject"]
    assert "Draft a greeting for the team." in request["body"], "the artifact under review is shown"
    assert request["params"]["greeting"]["value"].startswith("echo:"), "the edit field opens with the agent's text"
    _answer(api, REVIEWED, approved, "Approve", {"greeting": request["params"]["greeting"]["value"]})
    assert eventually(lambda: _ended(api, REVIEWED, approved), timeout=120, interval=1) == "success"
    assert _tasks(api, REVIEWED, approved)["apologize"] == "skipped"
    assert _xcom(api, REVIEWED, approved, "draft__review")["review"]["decision"].startswith("approved by")

    edited = _trigger(api, REVIEWED)
    request = eventually(lambda: _pending(api, REVIEWED, edited), timeout=120, interval=1)
    _answer(api, REVIEWED, edited, "Approve", {"greeting": "Hello, team: the reviewer wrote this."})
    assert eventually(lambda: _ended(api, REVIEWED, edited), timeout=120, interval=1) == "success"
    sent = _xcom(api, REVIEWED, edited, "send")["artifacts"][0]["text"]
    assert "Hello, team: the reviewer wrote this." in sent and "Draft a greeting" not in sent, "the next step got the edited text"
    reviewer = call(api, "GET", f"/dags/{REVIEWED}/dagRuns/{edited}/taskInstances/draft__review/-1/hitlDetails")["responded_by_user"]["name"]
    assert _xcom(api, REVIEWED, edited, "draft__review")["review"] == {"decision": f"edited by {reviewer}", "edited": ["greeting"]}

    rejected = _trigger(api, REVIEWED)
    eventually(lambda: _pending(api, REVIEWED, rejected), timeout=120, interval=1)
    _answer(api, REVIEWED, rejected, "Reject", {"greeting": ""})
    assert eventually(lambda: _ended(api, REVIEWED, rejected), timeout=120, interval=1) == "failed"
    states = _tasks(api, REVIEWED, rejected)
    assert (states["draft"], states["draft__review"], states["send"], states["apologize"]) == ("success", "failed", "upstream_failed", "success")

    assert eventually(lambda: _ended(api, UNATTENDED, timed_out), timeout=180, interval=2) == "success"
    assert _xcom(api, UNATTENDED, timed_out, "draft__review")["review"]["decision"] == "timed out: approved"
    assert _tasks(api, UNATTENDED, timed_out)["send"] == "success"


def test_an_agents_questions_are_answered_by_a_person_into_the_same_a2a_task(airflow):
    api, asker = airflow
    run = _trigger(api, TRIP)
    first = eventually(lambda: _pending(api, TRIP, run, "plan"), timeout=120, interval=1)
    assert first["subject"] == "asking-agent asks a question (step plan)" and first["options"] == ["Send answer", "Give up"]
    assert QUESTIONS[0] in first["body"] and "question 1 of at most 2" in first["body"], "the person sees the agent's question"
    assert "answer" in first["params"]
    _answer(api, TRIP, run, "Send answer", {"answer": "Lisbon"}, task="plan")
    eventually(lambda: _pending(api, TRIP, run, "plan", parks=2), timeout=120, interval=1)
    assert _xcom(api, TRIP, run, "plan", "agent_question")["question"] == QUESTIONS[1], "the newest question is in XCom"
    _answer(api, TRIP, run, "Send answer", {"answer": "May"}, task="plan")
    assert eventually(lambda: _ended(api, TRIP, run), timeout=120, interval=1) == "success"
    result = _xcom(api, TRIP, run, "plan")
    assert result["state"] == "TASK_STATE_COMPLETED" and result["artifacts"][0]["text"] == "Lisbon; May"
    task = [r for r in asker.received if r.task_id == result["taskId"]]
    assert [r.text for r in task][1:] == ["Lisbon", "May"], "both answers went to the agent's task"
    assert {r.context_id for r in task} == {result["contextId"]}, "in the same context"
    assert "Lisbon; May" in _xcom(api, TRIP, run, "confirm")["artifacts"][0]["text"], "the next step got the completed answer"

    bounded = _trigger(api, SHORT_TRIP)
    eventually(lambda: _pending(api, SHORT_TRIP, bounded, "plan"), timeout=120, interval=1)
    _answer(api, SHORT_TRIP, bounded, "Send answer", {"answer": "Porto"}, task="plan")
    assert eventually(lambda: _ended(api, SHORT_TRIP, bounded), timeout=120, interval=1) == "failed", "a second question is over its bound of 1"
    assert _tasks(api, SHORT_TRIP, bounded)["plan"] == "failed"
