"""spec.schedule in a real `airflow standalone`: the scheduler runs a cron-scheduled pipeline for
its data interval (catchup off: only the latest), its forEach.fromStorage items are the documents
modified in that interval, and a pipeline scheduled on the first one's asset runs when the first
one publishes. No agent is served: the items fail and are reported (onItemFailure continue),
which is enough to see what the scheduler and the listing did."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aistack.pipelines.plan import dag_id_for
from aistack.pipelines.submissions import parse_api_time
from tests.kubeapi.support import eventually
from tests.standalone import airflow_standalone, call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]

PIPELINES = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: every-minute}
spec:
  input: {text: "unused"}
  schedule: {cron: "* * * * *"}
  pipeline:
    - name: summarize
      agentRef: absent-agent
      includeInput: false
      retries: 0
      forEach: {fromStorage: {type: local, prefix: incoming/}, onItemFailure: continue}
---
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: after-it}
spec:
  input: {text: "the digest is ready"}
  schedule: {assets: ["aistack://taskorchestrations/default/every-minute"]}
  pipeline:
    - {name: note, agentRef: absent-agent, retries: 0}
"""
MINUTES = range(-3, 8)  # one document modified in each minute around the test's start


def _runs(api, dag_id: str) -> list[dict]:
    return call(api, "GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]


def test_the_scheduler_runs_each_interval_on_the_documents_of_that_interval(repo: Path, tmp_path: Path):
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "task.yaml").write_text(PIPELINES)
    incoming = tmp_path / "inputs" / "default" / "incoming"
    incoming.mkdir(parents=True)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for offset in MINUTES:
        path = incoming / f"minute{offset:+d}.txt"
        path.write_text(f"A document of minute {offset}.")
        stamp = (now + timedelta(minutes=offset, seconds=30)).timestamp()
        os.utime(path, (stamp, stamp))
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(repo / "dags" / "task_orchestrations.py", dags)
    env = {"AISTACK_ORCHESTRATIONS_PATH": str(folder), "AISTACK_INPUT_DIR": str(tmp_path / "inputs"), "AISTACK_OUTPUT_DIR": str(tmp_path / "outputs")}
    first, second = dag_id_for("default", "every-minute"), dag_id_for("default", "after-it")
    (tmp_path / "airflow").mkdir()
    with airflow_standalone(tmp_path / "airflow", dags, env) as api:
        scheduled = eventually(lambda: [r for r in _runs(api, first) if r["run_type"] == "scheduled"], timeout=240, interval=1)
        run = scheduled[0]
        start, end = parse_api_time(run["data_interval_start"]), parse_api_time(run["data_interval_end"])
        assert end - start == timedelta(minutes=1) and end <= datetime.now(UTC)
        assert end >= now - timedelta(minutes=1), "catchup is off: no interval before the latest one is run"
        eventually(lambda: next(r for r in _runs(api, first) if r["dag_run_id"] == run["dag_run_id"])["state"] == "success", timeout=180, interval=1)
        items = call(api, "GET", f"/dags/{first}/dagRuns/{run['dag_run_id']}/taskInstances/summarize__items/xcomEntries/return_value")["value"]
        expected = [f"minute{offset:+d}.txt" for offset in MINUTES if start <= now + timedelta(minutes=offset, seconds=30) < end]
        assert [item["key"] for item in items] == expected and len(expected) == 1
        triggered = eventually(lambda: [r for r in _runs(api, second) if r["run_type"] == "asset_triggered"], timeout=120, interval=1)
        assert triggered, "the pipeline scheduled on every-minute's asset ran after it published"
