"""`aistack get` and `aistack logs` over Airflow's REST API, against a deterministic test double of
the API (the real one is driven in tests/aistack/local/test_standalone.py): steps and their depth
from the DAG's tasks, a forEach step's items gathered, the tree as printed, logs try by try,
followed until the run ends."""

from __future__ import annotations

from typing import Any

import pytest

from aistack.pipelines.remote_run import RunNotFound, dag_steps, fetch_run, follow_logs
from aistack.pipelines.run_view import render_text

DAG = "aistack__team-a__digest"
TASKS = [
    {"task_id": "summarize__items", "downstream_task_ids": ["summarize"]},
    {"task_id": "summarize", "downstream_task_ids": ["facts", "publish"]},
    {"task_id": "facts", "downstream_task_ids": ["facts__review"]},
    {"task_id": "facts__review", "downstream_task_ids": ["notify", "publish"]},
    {"task_id": "notify", "downstream_task_ids": ["publish"]},
    {"task_id": "publish", "downstream_task_ids": []},
]
USAGE = {"model": "writer-model:1.0.0", "promptTokens": 100, "completionTokens": 20, "totalTokens": 120}


class FakeAirflowAPI:
    """The REST calls `aistack get` and `logs` make, answered from memory; logs grow as `tick()`s pass."""

    def __init__(self) -> None:
        self.run = {"dag_run_id": "manual__1", "state": "running", "start_date": "2026-12-03T06:00:00Z", "end_date": None}
        self.instances = [
            {
                "task_id": "summarize__items",
                "state": "success",
                "try_number": 1,
                "map_index": -1,
                "start_date": "2026-12-03T06:00:01Z",
                "end_date": "2026-12-03T06:00:02Z",
            },
            {"task_id": "summarize", "state": "success", "try_number": 1, "map_index": 0, "start_date": "2026-12-03T06:00:02Z", "end_date": "2026-12-03T06:00:05Z"},
            {"task_id": "summarize", "state": "success", "try_number": 2, "map_index": 1, "start_date": "2026-12-03T06:00:02Z", "end_date": "2026-12-03T06:00:07Z"},
            {"task_id": "facts", "state": "success", "try_number": 1, "map_index": -1, "start_date": "2026-12-03T06:00:07Z", "end_date": "2026-12-03T06:00:09Z"},
            {"task_id": "facts__review", "state": "running", "try_number": 1, "map_index": -1, "start_date": "2026-12-03T06:00:09Z", "end_date": None},
            {"task_id": "notify", "state": None, "try_number": 0, "map_index": -1, "start_date": None, "end_date": None},
        ]
        self.xcoms = {
            ("summarize", 0): {"state": "TASK_STATE_COMPLETED", "item": {"index": 0, "label": "a.md"}, "artifacts": [], "usage": USAGE},
            ("summarize", 1): {"state": "TASK_STATE_COMPLETED", "item": {"index": 1, "label": "b.md"}, "artifacts": [], "usage": USAGE},
            ("facts", -1): {"state": "TASK_STATE_COMPLETED", "artifacts": [], "usage": USAGE},
        }
        self.logs: dict[tuple[str, int, int], list[Any]] = {
            ("summarize__items", -1, 1): [{"timestamp": "2026-12-03T06:00:01.5Z", "level": "info", "event": "2 items"}],
            ("summarize", 0, 1): ["plain text line"],
            ("summarize", 1, 1): [{"level": "error", "event": "timed out"}],
            ("summarize", 1, 2): [{"level": "info", "event": "usage: 100 prompt + 20 completion tokens"}],
            ("facts", -1, 1): [{"level": "info", "event": "artifact facts"}],
            ("facts__review", -1, 1): [{"level": "info", "event": "Waiting for response"}],
        }
        self.read: list[tuple[str, int, int, str | None]] = []

    def tick(self, seconds: float) -> None:
        """The review is answered, notify runs, the run ends."""
        self.logs[("facts__review", -1, 1)].append({"level": "info", "event": "review of facts: approved by alice"})
        self.instances[4].update(state="success", end_date="2026-12-03T06:01:00Z")
        self.instances[5].update(state="success", try_number=1, start_date="2026-12-03T06:01:01Z", end_date="2026-12-03T06:01:02Z")
        self.logs[("notify", -1, 1)] = [{"level": "info", "event": "sent"}]
        self.run.update(state="success", end_date="2026-12-03T06:01:03Z")

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        return self.run if (dag_id, run_id) == (DAG, self.run["dag_run_id"]) else None

    def newest_run(self, dag_id: str) -> dict[str, Any] | None:
        return self.run if dag_id == DAG else None

    def tasks(self, dag_id: str) -> list[dict[str, Any]]:
        return TASKS

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return [dict(ti) for ti in self.instances]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        return self.xcoms.get((task_id, map_index))

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1, token: str | None = None):
        self.read.append((task_id, map_index, try_number, token))
        entries = self.logs.get((task_id, map_index, try_number), [])
        start = int(token or 0)
        state = next(ti["state"] for ti in self.instances if ti["task_id"] == task_id and ti["map_index"] == map_index)
        return entries[start:], (str(len(entries)) if state == "running" else None)


def test_steps_come_in_order_with_their_depth_and_own_tasks():
    steps, depth = dag_steps(TASKS)
    assert [(s.name, s.tasks) for s in steps] == [
        ("summarize", ("summarize__items", "summarize")),
        ("facts", ("facts", "facts__review")),
        ("notify", ("notify",)),
    ]
    assert depth == {"summarize": 0, "facts": 1, "notify": 2}
    with pytest.raises(ValueError, match="cycle: a, b"):
        dag_steps([{"task_id": "a", "downstream_task_ids": ["b"]}, {"task_id": "b", "downstream_task_ids": ["a"]}])


def test_get_shows_the_run_as_a_tree_with_tries_times_and_tokens():
    api = FakeAirflowAPI()
    run = fetch_run(api, DAG)
    text = render_text(run.view, run.depth)
    lines = text.splitlines()
    assert lines[0] == "team-a/digest  run manual__1"
    assert "● running  progress 1/3  360 tokens (300 prompt, 60 completion)" in lines[1], "items and facts: 3 calls"
    summarize, facts, notify = lines[4:7]
    assert summarize.split()[:5] == ["├─✔", "summarize", "success", "2", "6.0s"] and "240" in summarize and "2 items" in summarize
    assert facts.startswith("    ├─● facts") and "running" in facts, "the review still waits"
    assert notify.startswith("      └─◌ notify") and notify.split()[2] == "none"
    with pytest.raises(RunNotFound, match="no run nope of DAG"):
        fetch_run(api, DAG, "nope")


def test_logs_come_try_by_try_and_are_followed_until_the_run_ends():
    api = FakeAirflowAPI()
    printed = list(follow_logs(api, DAG))
    assert printed[:3] == ["==> summarize__items (try 1) <==", "06:00:01 info 2 items", "==> summarize[0] (try 1) <=="]
    assert "==> summarize[1] (try 2) <==" in printed and "error timed out" in printed and "plain text line" in printed
    assert not any("notify" in line for line in printed), "a task that has not started has no log yet"

    api = FakeAirflowAPI()
    followed = list(follow_logs(api, DAG, step="facts", follow=True, sleep=api.tick))
    assert followed == [
        "==> facts (try 1) <==",
        "info artifact facts",
        "==> facts__review (try 1) <==",
        "info Waiting for response",
        "info review of facts: approved by alice",
    ], "only the step's tasks, the review's new line read on from where it stopped"
    assert ("facts__review", -1, 1, "1") in api.read, "read on with the continuation token"
