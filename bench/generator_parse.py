"""Parse time of the generator DAG file with 1, 100 and 1,000 TaskOrchestrations of 10 steps.

Run by hand: `.venv/bin/python bench/generator_parse.py`. Airflow and aistack are imported
first and not counted (the DAG processor has them loaded already); each figure is the best of
three parses of dags/task_orchestrations.py from a folder of generated manifests, split into
loading+validating the manifests and building the DAG objects. For scale, the same number of
DAGs and tasks built from Airflow's EmptyOperator (Airflow's own floor for DAG construction) is
measured in the same run. Target: 1,000 in under 2 s.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]


def manifest(index: int, steps: int = 10) -> str:
    lines = [
        "apiVersion: ai.stack/v1alpha1", "kind: TaskOrchestration", f"metadata: {{name: pipeline-{index}}}",
        "spec:", "  input: {text: \"Summarize this.\"}", "  pipeline:",
    ]
    for step in range(steps):
        after = f", dependsOn: [step-{step - 1}]" if step else ""
        source = f", inputFrom: [{{taskRef: step-{step - 1}, artifactName: out}}]" if step else ""
        lines.append(f"    - {{name: step-{step}, agentRef: agent-{step % 3}, timeout: 5m, retries: 1{after}{source},"
                     " artifacts: [{name: out, type: application/json}]}")
    return "\n".join(lines) + "\n"


def airflow_floor(count: int, tasks: int = 12) -> float:
    """Seconds Airflow itself needs to build `count` DAGs of `tasks` chained EmptyOperators."""
    from datetime import datetime, timezone

    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    started = time.perf_counter()
    for index in range(count):
        with DAG(f"floor-{index}", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):
            previous = None
            for task in range(tasks):
                current = EmptyOperator(task_id=f"t{task}")
                if previous is not None:
                    previous >> current
                previous = current
    return time.perf_counter() - started


def main() -> None:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="aistack-bench-"))
    import airflow.sdk  # noqa: F401  (not counted)

    from aistack import orchestration_source
    from aistack_plugin import generator

    print(f"{'resources':>9}  {'load+validate s':>15}  {'build DAGs s':>12}  {'total s':>8}  {'ms/resource':>11}  {'Airflow floor s':>15}")
    for count in (1, 100, 1000):
        folder = Path(tempfile.mkdtemp(prefix=f"aistack-bench-{count}-"))
        for index in range(count):
            (folder / f"pipeline-{index}.yaml").write_text(manifest(index))
        os.environ["AISTACK_ORCHESTRATIONS_PATH"] = str(folder)
        best = None
        for _ in range(3):
            started = time.perf_counter()
            snapshot = orchestration_source.load()
            loaded = time.perf_counter()
            dags = generator.generate(snapshot)
            built = time.perf_counter()
            assert len(dags) == count + 1 and not snapshot.invalid
            sample = (loaded - started, built - loaded, built - started)
            best = sample if best is None or sample[2] < best[2] else best
        # The DAG file itself, as the DAG processor imports it (fresh module each time).
        sys.modules.pop("dags.task_orchestrations", None)
        started = time.perf_counter()
        importlib.import_module("dags.task_orchestrations")
        file_time = time.perf_counter() - started
        load, build, total = best
        floor = airflow_floor(count)
        print(f"{count:>9}  {load:>15.3f}  {build:>12.3f}  {total:>8.3f}  {1000 * total / count:>11.2f}  {floor:>15.3f}"
              f"   (DAG file import {file_time:.3f} s; build / floor x{build / floor:.2f})")


if __name__ == "__main__":
    main()
