"""Memoized steps (`cache.ttl`) through dag.test(): a second run of the same message reuses the
first run's result without calling the agent, downstream steps get the same artifacts, and a new
input or a rebuilt model (another digest, as the agent reports it on /readyz) calls it again. The
agents' models are deterministic fakes that count their calls."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from aistack.agents.fakes import ScriptedModel
from aistack.pipelines.cache import ModelBuild, StepCache, cache_key
from aistack.pipelines.output import LocalStorage

pytestmark = pytest.mark.slow

CACHED = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: cached}
spec:
  input: {text: "%s"}
  pipeline:
    - {name: answer, agentRef: chat-agent, cache: {ttl: 1h}, artifacts: [{name: answer, type: text/plain}]}
    - {name: check, agentRef: summarizer-agent, dependsOn: [answer], inputFrom: [{taskRef: answer, artifactName: answer}], includeInput: false}
"""
DAG_ID = "aistack__default__cached"


def _runs(outputs) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in (outputs / "default" / "cached").glob("*/result.json")), key=lambda r: r["runId"])


def test_a_second_run_reuses_the_result_and_a_new_input_or_model_build_does_not_fake_models(pipeline):
    run, fakes, outputs = pipeline
    fakes["chat-agent"] = answering = ScriptedModel(["Twenty-one hours."], build="sha256:" + "a" * 64)
    fakes["summarizer-agent"] = checking = ScriptedModel(['{"summary": "checked"}'])
    first = run(CACHED % "How long did they stay?", DAG_ID)
    second = run(CACHED % "How long did they stay?", DAG_ID)
    assert first.state == second.state == "success"
    assert len(answering.requests) == 1, "the second run did not call the agent"
    reused = next(r for r in _runs(outputs) if r["runId"] == second.run_id)["steps"]["answer"]
    assert reused["cached"]["fromRun"] == first.run_id
    assert reused["artifacts"] == [{"name": "answer", "mediaType": "text/plain", "text": "Twenty-one hours."}]
    assert len(checking.requests) == 2 and "Twenty-one hours." in str(checking.requests[1].messages), "downstream got the same artifact"

    run(CACHED % "How long did they stay on the Moon?", DAG_ID)
    assert len(answering.requests) == 2, "another input is another message"

    answering.build = "sha256:" + "b" * 64  # the model was rebuilt
    time.sleep(5.5)  # the agent learns its model's digest with each readiness check (every 5 s)
    rebuilt = run(CACHED % "How long did they stay?", DAG_ID)
    assert len(answering.requests) == 3, "a new model build misses the cache"
    assert "cached" not in next(r for r in _runs(outputs) if r["runId"] == rebuilt.run_id)["steps"]["answer"]


BUILD = ModelBuild("chat-model:1.0.0", "sha256:" + "c" * 64)


def _key(**changes) -> str:
    parts = {"namespace": "default", "agent": "chat-agent", "build": BUILD, "text": "Answer.", "inputs": [{"name": "input", "text": "x"}], "spec": {"artifacts": []}}
    return cache_key(**(parts | changes))


def test_the_key_covers_what_decides_the_answer():
    base = _key()
    assert base == _key()
    changed = [
        _key(namespace="team-b"),
        _key(agent="other-agent"),
        _key(build=ModelBuild("chat-model:1.0.0", "sha256:" + "d" * 64)),
        _key(text="Answer briefly."),
        _key(inputs=[{"name": "input", "text": "y"}]),
        _key(spec={"artifacts": [{"name": "a", "mediaType": "application/json"}]}),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_entries_expire_and_a_corrupt_one_is_a_miss(tmp_path):
    clock = [datetime(2026, 12, 1, tzinfo=UTC)]
    storage = LocalStorage(tmp_path)
    cache = StepCache(storage, "_cache/default/p/answer/", timedelta(hours=1), now=lambda: clock[0])
    cache.put("k", {"state": "TASK_STATE_COMPLETED", "artifacts": []}, "run-1", BUILD.digest)
    assert cache.get("k").run_id == "run-1"
    clock[0] += timedelta(minutes=59)
    assert cache.get("k") is not None
    clock[0] += timedelta(minutes=2)
    assert cache.get("k") is None, "older than the ttl"
    (tmp_path / "_cache/default/p/answer/bad.json").write_text("{not json")
    assert cache.get("bad") is None and cache.get("absent") is None
