"""A2AAgentOperator in dag.test() against real A2A agent servers on 127.0.0.1.

The agents answer from deterministic fake model backends (ScriptedModel), since these tests
check the operator's protocol handling; test_against_the_embedded_model goes all the way to
a real model.
"""

import importlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from aistack.agents.client import AgentRequestError, SyncAgentClient
from aistack.agents.fakes import ScriptedModel, SwappableModel
from aistack.agents.runner import serve_agents
from aistack.agents.tokens import TOKENS_DIR_ENV
from aistack.resources import parse_resource
from aistack_airflow.operators.a2a import A2AAgentOperator

pytestmark = pytest.mark.slow
TOKEN = "operator-test-token"
NAMESPACE_TOKEN = "default-namespace-token"


def _pair(repo: Path):
    docs = list(yaml.safe_load_all((repo / "examples" / "question-answering" / "agents.yaml").read_text()))
    agent = parse_resource(docs[0])  # chat-agent: bearer auth, streaming, text answers
    model = parse_resource(yaml.safe_load((repo / "models" / "chat" / "model.yaml").read_text()))
    return agent, model


@pytest.fixture
def agent(repo: Path, monkeypatch, airflow_db):
    """Serve chat-agent with a scripted fake model; yields (url, a function that swaps the fake)."""
    monkeypatch.setenv("AISTACK_AGENT_TOKEN", TOKEN)
    backend = SwappableModel(ScriptedModel(["A2A lets agents call each other over HTTP.\nIt is an open protocol."]))

    def use(fake: ScriptedModel) -> None:
        backend.current = fake

    with serve_agents([_pair(repo)], backends=lambda a, d: backend) as running:
        monkeypatch.setenv("AISTACK_TEST_AGENT_URL", running[0].url)
        yield running[0].url, use


@pytest.fixture
def namespaced_agent(repo: Path, monkeypatch, airflow_db, tmp_path):
    """chat-agent accepting the shared token and the token of namespace `default` (the test DAGs'
    agent_namespace), which Airflow finds in its tokens directory too."""
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "default").write_text(NAMESPACE_TOKEN + "\n")
    monkeypatch.setenv("AISTACK_AGENT_TOKEN", TOKEN)
    monkeypatch.setenv(TOKENS_DIR_ENV, str(tokens))
    backend = ScriptedModel(["deferred answer arrives later"], token_delay=0.2)
    with serve_agents([_pair(repo)], backends=lambda a, d: backend) as running:
        monkeypatch.setenv("AISTACK_TEST_AGENT_URL", running[0].url)
        yield running[0].url


def run(dag_name: str):
    import tests.airflow_dags.a2a_dags as module

    dag = getattr(importlib.reload(module), dag_name)
    return dag.test()


def xcom(run, task_id: str, key: str = "return_value"):
    ti = run.get_task_instance(task_id)
    return ti.xcom_pull(task_ids=task_id, key=key)


def test_send_returns_artifacts_as_xcom_fake_model(agent):
    url, _ = agent
    dag_run = run("send")
    assert dag_run.state == "success"
    result = xcom(dag_run, "answer")
    assert result["state"] == "TASK_STATE_COMPLETED"
    assert result["artifacts"] == [{"name": "answer", "mediaType": "text/plain", "text": "A2A lets agents call each other over HTTP.\nIt is an open protocol."}]
    assert xcom(dag_run, "answer", "agent_card_url") == f"{url}/.well-known/agent-card.json"


def test_streaming_writes_tokens_to_the_task_log_fake_model(agent, capfd):
    dag_run = run("stream")
    assert dag_run.state == "success"
    out = capfd.readouterr().out
    assert "[answer] A2A lets agents call each other over HTTP." in out
    assert "[answer] It is an open protocol." in out
    assert xcom(dag_run, "answer")["artifacts"][0]["text"].endswith("It is an open protocol.")


def test_deferrable_waits_in_the_trigger_fake_model(agent, monkeypatch):
    from aistack_airflow.triggers.a2a import A2ATaskTrigger

    _, use = agent
    use(ScriptedModel(["deferred answer arrives later"], token_delay=0.5))
    polled = []
    original = A2ATaskTrigger.run

    def spy(self):
        polled.append(self.task_id)
        return original(self)

    monkeypatch.setattr(A2ATaskTrigger, "run", spy)
    dag_run = run("defer")
    assert dag_run.state == "success"
    assert xcom(dag_run, "answer")["artifacts"][0]["text"] == "deferred answer arrives later"
    assert polled == [xcom(dag_run, "answer", "a2a_task")["taskId"]], "the wait happened in the trigger"


def test_timeout_cancels_the_agent_task_fake_model(agent):
    url, use = agent
    slow = ScriptedModel([" ".join(["word"] * 200)], token_delay=0.1)
    use(slow)
    dag_run = run("timeout")
    assert dag_run.state == "failed"
    a2a_task = xcom(dag_run, "answer", "a2a_task")
    with SyncAgentClient(url, token=TOKEN) as client:
        assert client.get_task(a2a_task["taskId"]).state == "TASK_STATE_CANCELED"
    assert slow.closed_early == 1, "the model stream was closed when the task was cancelled"


def test_upstream_artifacts_reach_the_next_agent_fake_model(agent):
    _, use = agent
    fake = ScriptedModel(['{"facts": ["A2A is a protocol"]}', "summary of the facts"])
    use(fake)
    dag_run = run("chain")
    assert dag_run.state == "success"
    assert xcom(dag_run, "first")["artifacts"][0]["data"] == {"facts": ["A2A is a protocol"]}
    second_prompt = json.dumps([m for m in fake.requests[1].messages], default=str)
    assert "A2A is a protocol" in second_prompt


@pytest.mark.parametrize("dag_name", ["send", "defer"])
def test_steps_call_as_their_namespace_and_the_trigger_follows_fake_model(namespaced_agent, dag_name):
    dag_run = run(dag_name)
    assert dag_run.state == "success"  # deferrable: the trigger, too, called as the namespace that owns the task
    task_id = xcom(dag_run, "answer", "a2a_task")["taskId"]
    with SyncAgentClient(namespaced_agent, namespace="default") as owner:
        assert owner.get_task(task_id).state == "TASK_STATE_COMPLETED"
    with SyncAgentClient(namespaced_agent, token=TOKEN) as shared, pytest.raises(AgentRequestError, match="not found"):
        shared.get_task(task_id)  # a caller with the shared token does not see the namespace's task


def test_the_message_id_is_the_task_instances_and_its_messages():
    operator = A2AAgentOperator(task_id="answer", agent_url="http://127.0.0.1:9", text="Summarize.")
    context = {"ti": SimpleNamespace(dag_id="d", run_id="r", task_id="answer", map_index=-1)}
    upstream = [{"name": "facts", "mediaType": "text/plain", "text": "A2A is a protocol."}]
    same = operator._message_id(context, upstream)
    assert operator._message_id(context, [dict(upstream[0])]) == same  # a re-run of the attempt: the agent returns its task
    # An upstream step cleared and run again sends other inputs: a new message id, so the agent
    # starts a new task instead of refusing a message id re-sent with other content.
    assert operator._message_id(context, [{**upstream[0], "text": "A2A is an open protocol."}]) != same
    assert operator._message_id(context, upstream, attempt=2) != same
