"""Golden tests: each example and the seed's document-analysis become the expected pipeline plan."""

import hashlib
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aistack.pipelines.plan import MAX_DAG_ID, dag_id_for, parse_dag_id, plan
from aistack.resources import parse_resource
from aistack.resources.orchestration import FailureAction, StorageType
from aistack.resources.types import DNS_SUBDOMAIN_PATTERN

REPO = Path(__file__).resolve().parents[2]


def _plan(path: str):
    return plan(parse_resource(yaml.safe_load((REPO / path).read_text())))


def _shape(p):
    return {s.task_id: (s.agent_ref, s.upstream, s.trigger_rule, s.retries, s.execution_timeout) for s in p.steps}


def test_seed_document_analysis():
    p = _plan("tests/resources/seed/taskorchestration.yaml")
    assert p.dag_id == "aistack__default__document-analysis"
    assert _shape(p) == {
        "document-analyzer": ("analyzer-agent", (), "all_success", 2, timedelta(minutes=5)),
        "summarizer": ("summarizer-agent", ("document-analyzer",), "all_success", 3, None),
        "quality-check": ("qa-agent", ("summarizer",), "all_success", 3, None),
    }
    assert p.step("summarizer").inputs[0].artifact_name == "analysis-result"
    assert p.step("document-analyzer").takes_upstream_results and not p.step("summarizer").takes_upstream_results
    assert p.leaves == ("quality-check",)
    assert p.step("summarizer").max_retry_delay == timedelta(seconds=600)
    assert (p.storage, p.bucket, p.prefix) == (StorageType.S3, "ai-results", "outputs/")
    assert [f.value for f in p.output_formats] == ["application/json", "text/markdown"]
    assert p.failure_action is FailureAction.ROLLBACK
    assert p.streaming and p.events_endpoint == "http://callback-service/webhook"


def test_question_answering():
    p = _plan("examples/question-answering/task.yaml")
    assert _shape(p) == {
        "answer": ("chat-agent", (), "all_success", 1, timedelta(minutes=2)),
        "check-answer": ("qa-agent", ("answer",), "all_success", 1, None),
    }
    assert p.storage is StorageType.LOCAL and p.failure_action is FailureAction.ABORT
    assert p.tags == ("aistack", "default", "app.kubernetes.io/part-of=aistack-examples")


def test_multi_model_chat_fans_in_with_any_success():
    p = _plan("examples/multi-model-chat/task.yaml")
    assert _shape(p) == {
        "classify": ("classifier-agent", (), "all_success", 0, timedelta(minutes=1)),
        "reply": ("chat-agent", (), "all_success", 0, timedelta(minutes=2)),
        "merge": ("summarizer-agent", ("classify", "reply"), "one_success", 0, None),
    }
    assert [(r.task_ref, r.artifact_name) for r in p.step("merge").inputs] == [("classify", "label"), ("reply", "draft")]
    assert p.failure_action is FailureAction.CONTINUE and p.streaming and p.events_endpoint is None


def test_doc_describes_every_step():
    doc = _plan("tests/resources/seed/taskorchestration.yaml").doc_md
    assert ("| document-analyzer | analyzer-agent | start | success | the run's input | 2 | 5m | analysis-result (application/json) |") in doc
    assert ("| summarizer | summarizer-agent | document-analyzer | success | the run's input, analysis-result from document-analyzer | 3 | - | text |") in doc
    assert ("| quality-check | qa-agent | summarizer | success | the run's input, every artifact of summarizer | 3 | - | text |") in doc


def test_a_step_can_leave_out_the_runs_input_and_make_its_verdict_informational():
    orchestration = parse_resource(
        {
            "apiVersion": "ai.stack/v1alpha1",
            "kind": "TaskOrchestration",
            "metadata": {"name": "p"},
            "spec": {
                "input": {"text": "x"},
                "pipeline": [
                    {"name": "a", "agentRef": "agent"},
                    {"name": "b", "agentRef": "qa", "dependsOn": ["a"], "includeInput": False, "verdict": "informational"},
                ],
            },
        }
    )
    p = plan(orchestration)
    assert p.step("a").include_input and p.step("a").enforce_verdict
    assert not p.step("b").include_input and not p.step("b").enforce_verdict
    assert p.step("b").receives() == "a generic instruction, every artifact of a"


@pytest.mark.parametrize(("namespace", "name"), [("default", "a"), ("team-a", "x" * 253), ("n" * 63, "y" * 253)])
def test_dag_ids_are_valid_unique_and_bounded(namespace, name):
    dag_id = dag_id_for(namespace, name)
    assert len(dag_id) <= MAX_DAG_ID
    assert dag_id.startswith(f"aistack__{namespace}__")
    assert dag_id != dag_id_for(namespace, name[:-1] + "z")


AIRFLOW_DAG_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")


def test_a_name_that_looks_like_another_names_shortened_id_gets_its_own_dag():
    """Two valid names where one spells the other's shortened-and-hashed id used to share a DAG."""
    long_name = "a" * 253
    old_rule = "aistack__default__" + long_name[:163] + "-" + hashlib.sha256(f"default/{long_name}".encode()).hexdigest()[:12]
    lookalike = old_rule.removeprefix("aistack__default__")
    assert re.fullmatch(DNS_SUBDOMAIN_PATTERN, lookalike) and len(lookalike) <= 253
    assert dag_id_for("default", long_name) != dag_id_for("default", lookalike)


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("default", "bad name!"),
        ("default", "abc\n"),
        ("default", "?"),
        ("default", ""),
        ("", "x"),
        (".".join(["a" * 60] * 4)[:243], "summary"),
        ("default", "x" * 5000),
        ("team_a", "b__c"),
    ],
)
def test_every_pair_of_strings_has_a_valid_airflow_dag_id(namespace, name):
    dag_id = dag_id_for(namespace, name)
    assert AIRFLOW_DAG_ID.fullmatch(dag_id), dag_id
    assert parse_dag_id(dag_id) is None, "only Kubernetes names have reversible ids"


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=300), st.text(max_size=300)), min_size=2, max_size=6, unique=True))
def test_dag_ids_are_total_and_injective(pairs):
    ids = [dag_id_for(namespace, name) for namespace, name in pairs]
    assert all(AIRFLOW_DAG_ID.fullmatch(dag_id) for dag_id in ids)
    assert len(set(ids)) == len(ids)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True),
    st.from_regex(r"[a-z0-9]([-a-z0-9]{0,80}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,60}[a-z0-9])?){0,2}", fullmatch=True),
)
def test_kubernetes_names_that_fit_keep_their_readable_reversible_id(namespace, name):
    dag_id = dag_id_for(namespace, name)
    if len(f"aistack__{namespace}__{name}") <= MAX_DAG_ID:
        assert dag_id == f"aistack__{namespace}__{name}" and parse_dag_id(dag_id) == (namespace, name)
