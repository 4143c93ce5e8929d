"""Parse time of the generator DAG file with 1, 100 and 1,000 TaskOrchestrations of 10 steps.

Run by hand: `.venv/bin/python bench/generator_parse.py`. Airflow and aistack are imported
first and not counted (the DAG processor has them loaded already). Each figure is the best of
three parses, as dags/task_orchestrations.py does them (`generator.parse`), split into loading
and validating the manifests and building the DAG objects:

- cold: no manifest cache (every file parsed and validated, then the cache written), as on the
  first parse after a deploy or a code change;
- warm: the caches filled, as on every later parse (Airflow re-parses the file every 30 s or so),
  so a changed manifest costs only its own validation, and the DAGs of unchanged ones are restored
  from the DAG cache (plugins/dag_cache.py) instead of built.

For scale, Airflow's own floors, with no aistack code: `empty`, the same number of DAGs of as
many chained EmptyOperators, built with the garbage collector on (as Airflow would) and paused
(as the generator builds); `shaped`, the same but shaped like the generator's DAGs: the same two
DAG params (Airflow deep-copies them into every task, once per __init__ in the operator's class
hierarchy) and an operator class with its own __init__, as any operator with arguments has,
with the steps chained and all of them upstream of the last task. The ratios compare figures
from this one run (the machine may be shared and noisy). Target: 1,000 in under 2 s.

Then, for 1,000: the pipeline features against plain pipelines; what the DAG processor does with
the file warm, in a fresh process as it does (the parse, then Airflow's serialization of every
DAG), with the DAGs kept out of the collector's sight and left to it; and a cluster listing.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aistack.pipelines.source import Snapshot

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

STEPS = 10
TASKS = STEPS + 1  # the steps and `publish`
COUNTS = (1, 100, 1000)
REPEATS = 3


def manifest(index: int, steps: int = STEPS) -> str:
    lines = [
        "apiVersion: ai.stack/v1alpha1",
        "kind: TaskOrchestration",
        f"metadata: {{name: pipeline-{index}}}",
        "spec:",
        '  input: {text: "Summarize this."}',
        "  pipeline:",
    ]
    for step in range(steps):
        after = f", dependsOn: [step-{step - 1}]" if step else ""
        source = f", inputFrom: [{{taskRef: step-{step - 1}, artifactName: out}}]" if step else ""
        lines.append(
            f"    - {{name: step-{step}, agentRef: agent-{step % 3}, timeout: 5m, retries: 1{after}{source}, artifacts: [{{name: out, type: application/json}}]}}"
        )
    return "\n".join(lines) + "\n"


def featured_manifest(index: int, steps: int = STEPS) -> str:
    """`manifest`, using the pipeline features: a daily schedule, a forEach step over the previous
    step's JSON artifact, a cached step, a reviewed step and one whose agent's questions a person
    answers (each adds tasks or fields to parse)."""
    lines = manifest(index, steps).splitlines()
    lines.insert(lines.index("  pipeline:"), '  schedule: {cron: "@daily"}')
    extras = {
        1: ", forEach: {fromArtifact: {taskRef: step-0, artifactName: out, path: items}, maxParallel: 4}",
        3: ", cache: {ttl: 24h}",
        5: ", review: {allowEdit: true}",
        7: ", inputRequired: {maxRounds: 2, timeout: 30m}",
    }
    for step, extra in extras.items():
        position = next(i for i, line in enumerate(lines) if line.startswith(f"    - {{name: step-{step},"))
        lines[position] = lines[position][:-1] + extra + "}"
    return "\n".join(lines) + "\n"


def airflow_floor(count: int, tasks: int = TASKS) -> float:
    """Seconds Airflow itself needs to build `count` DAGs of `tasks` chained EmptyOperators."""
    from datetime import datetime

    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    started = time.perf_counter()
    for index in range(count):
        with DAG(f"floor-{index}", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC)):
            previous = None
            for task in range(tasks):
                current = EmptyOperator(task_id=f"t{task}")
                if previous is not None:
                    previous >> current
                previous = current
    return time.perf_counter() - started


def shaped_floor(count: int, steps: int = STEPS) -> float:
    """Seconds Airflow itself needs to build `count` DAGs shaped like the generator's (see above)."""
    from datetime import datetime

    from airflow.sdk import DAG, BaseOperator, Param

    class Step(BaseOperator):
        def __init__(self, *, agent: str, **kwargs: object) -> None:
            super().__init__(**kwargs)
            self.agent = agent

    started = time.perf_counter()
    for index in range(count):
        params = {
            "input": Param("Summarize this.", type="string", title="Input", description="The text."),
            "generation": Param(1, type="integer", description="The resource generation."),
        }
        with DAG(f"shaped-{index}", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), params=params):
            tasks = [Step(task_id=f"step-{step}", agent="agent") for step in range(steps)]
            for upstream, downstream in zip(tasks, tasks[1:]):
                upstream >> downstream
            tasks >> Step(task_id="publish", agent="agent")
    return time.perf_counter() - started


def timed_parse(count: int) -> tuple[float, float]:
    """(load+validate, build) seconds of one parse of the folder, as `generator.parse` does it."""
    from aistack.pipelines import source as orchestration_source

    snapshot, figures = timed(orchestration_source.load)
    assert len(snapshot.valid) == count and not snapshot.invalid
    return figures


def timed(load: Callable[[], Snapshot]) -> tuple[Snapshot, tuple[float, float]]:
    """The snapshot `load` gives and the (load, build) seconds of a parse of it, as
    `generator.parse` does one: the build includes the collector's return at the end (the DAGs
    are kept out of its sight)."""
    from aistack_airflow import generator

    with generator.collector_paused(keep=True):
        started = time.perf_counter()
        snapshot = load()
        loaded = time.perf_counter()
        dags = generator.generate(snapshot)
    built = time.perf_counter()
    assert len(dags) == len(snapshot.valid) + 1
    return snapshot, (loaded - started, built - loaded)


def processor_pass(count: int, keep: bool) -> tuple[float, float, float]:
    """(parse, serialize, process) seconds of what the DAG processor does with the file on a warm
    parse, in a fresh process as it does it: `generator.parse`, then Airflow's serialization of
    every DAG; `process` is the whole child, its start (imports) and its exit included. With
    keep=False the DAGs are left to the collector (as before `collector_paused(keep=True)`)."""
    command = [sys.executable, __file__, "--processor-pass", "keep" if keep else "leave"]
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    process = time.perf_counter() - started
    parse, serialize, dags = json.loads(done.stdout.splitlines()[-1])
    assert dags == count + 1
    return parse, serialize, process


def processor_child(keep: bool) -> None:
    """The child of `processor_pass`: Airflow and aistack imported first, not counted."""
    from airflow.serialization.serialized_objects import DagSerialization

    from aistack.pipelines import source as orchestration_source
    from aistack_airflow import generator

    gc.collect()
    started = time.perf_counter()
    with generator.collector_paused(keep=keep):
        dags = generator.generate(orchestration_source.load())
    parsed = time.perf_counter()
    for dag in dags.values():
        DagSerialization.to_dict(dag)
    print(json.dumps([parsed - started, time.perf_counter() - parsed, len(dags)]))


def best(measure: Callable[[], tuple[float, float]], before: Callable[[], None] = lambda: None) -> tuple[float, float]:
    samples = []
    for _ in range(REPEATS):
        before()
        samples.append(measure())
    return min(samples, key=sum)


def paused(build: Callable[[int], float], count: int) -> float:
    from aistack_airflow import generator

    with generator.collector_paused():
        return build(count)


def cluster_listing(count: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(validate, build) seconds of a parse of a cluster listing of `count` pipelines (the source
    in a cluster: JSON from the API, no YAML to parse), first (empty caches) and again."""
    import yaml

    from aistack.pipelines import source

    items = []
    for index in range(count):
        item = yaml.safe_load(manifest(index))
        item["metadata"].update(uid=f"uid-{index}", resourceVersion=str(1000 + index))
        items.append(item)
    shutil.rmtree(source._validated_cache_file(None).parent, ignore_errors=True)
    (first, cold), (again, warm) = (timed(lambda: source._from_items(items, "cluster", stale=False)) for _ in ("cold", "warm"))
    assert len(first.valid) == len(again.valid) == count
    return cold, warm


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="aistack-bench-"))
    os.environ.setdefault("AIRFLOW_HOME", str(home / "airflow"))
    os.environ["AISTACK_HOME"] = str(home / "aistack")
    import airflow.sdk  # noqa: F401  (not counted)

    import aistack_airflow.generator  # noqa: F401  (not counted)

    print(f"{'':9}  {'------ cold (s) ------':>26}  {'------ warm (s) ------':>26}  {'---- Airflow floor (s) ----':>35}  {'------------ ratios ------------':>43}")
    print(
        f"{'pipelines':>9}  {'load':>8}{'build':>9}{'total':>9}  {'load':>8}{'build':>9}{'total':>9}  {'empty':>11}{'paused':>12}{'shaped':>12}"
        f"  {'cold/empty':>11}{'warm/empty':>11}{'/paused':>10}{'/shaped':>11}"
    )
    for count in COUNTS:
        folder = home / f"pipelines-{count}"
        folder.mkdir()
        for index in range(count):
            (folder / f"pipeline-{index}.yaml").write_text(manifest(index))
        os.environ["AISTACK_ORCHESTRATIONS_PATH"] = str(folder)
        cold = best(lambda count=count: timed_parse(count), before=lambda: shutil.rmtree(home / "aistack", ignore_errors=True))
        warm = best(lambda count=count: timed_parse(count))
        empty = min(airflow_floor(count) for _ in range(REPEATS))
        empty_paused = min(paused(airflow_floor, count) for _ in range(REPEATS))
        shaped = min(paused(shaped_floor, count) for _ in range(REPEATS))
        print(
            f"{count:>9}  {cold[0]:>8.3f}{cold[1]:>9.3f}{sum(cold):>9.3f}  {warm[0]:>8.3f}{warm[1]:>9.3f}{sum(warm):>9.3f}"
            f"  {empty:>11.3f}{empty_paused:>12.3f}{shaped:>12.3f}  {sum(cold) / empty:>10.2f}x{sum(warm) / empty:>10.2f}x"
            f"{sum(warm) / empty_paused:>9.2f}x{sum(warm) / shaped:>10.2f}x"
        )
    count = COUNTS[-1]
    for kind, make in (("plain", manifest), ("featured", featured_manifest)):
        folder = home / f"{kind}-{count}"
        folder.mkdir()
        for index in range(count):
            (folder / f"pipeline-{index}.yaml").write_text(make(index))
    figures = {}
    for kind in ("plain", "featured"):
        os.environ["AISTACK_ORCHESTRATIONS_PATH"] = str(home / f"{kind}-{count}")
        figures[kind] = (
            sum(best(lambda: timed_parse(count), before=lambda: shutil.rmtree(home / "aistack", ignore_errors=True))),
            sum(best(lambda: timed_parse(count))),
        )
    (plain_cold, plain_warm), (featured_cold, featured_warm) = figures["plain"], figures["featured"]
    print(
        f"\n{count} pipelines using schedule, forEach, cache, review and inputRequired against plain ones (target: within 20 %):"
        f" cold {featured_cold:.3f}s vs {plain_cold:.3f}s ({featured_cold / plain_cold:.2f}x),"
        f" warm {featured_warm:.3f}s vs {plain_warm:.3f}s ({featured_warm / plain_warm:.2f}x)"
    )
    os.environ["AISTACK_ORCHESTRATIONS_PATH"] = str(home / f"plain-{count}")
    passes = {keep: sorted((processor_pass(count, keep) for _ in range(REPEATS)), key=sum)[REPEATS // 2] for keep in (False, True)}
    (kept_parse, kept_serialize, kept_process), (left_parse, left_serialize, left_process) = passes[True], passes[False]
    print(
        f"{count} pipelines through the DAG processor, warm, in a fresh process (the parse, then Airflow serializes each DAG;"
        f" median of {REPEATS}): DAGs kept out of the collector's sight {kept_parse:.3f} + {kept_serialize:.3f}s, process"
        f" {kept_process:.3f}s; left to it {left_parse:.3f} + {left_serialize:.3f}s, process {left_process:.3f}s:"
        f" {(kept_parse + kept_serialize) / (left_parse + left_serialize):.2f}x, process {kept_process / left_process:.2f}x"
    )
    (validate_cold, build_cold), (validate_warm, build_warm) = cluster_listing(count)
    print(
        f"{count} pipelines listed from a cluster (no YAML to parse): cold {validate_cold + build_cold:.3f}s (validate"
        f" {validate_cold:.3f} + build {build_cold:.3f}), warm {validate_warm + build_warm:.3f}s (validate {validate_warm:.3f}"
        f" + build {build_warm:.3f}; the outcomes are kept by uid and resourceVersion)"
    )
    print(
        "cold: no cache; warm: cache filled; load: read+validate; empty: EmptyOperator DAGs, collector on (as Airflow"
        " builds); paused: the same, collector paused (as the generator builds); shaped: the generator's DAG shape"
        " and params, collector paused"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--processor-pass"]:
        processor_child(sys.argv[2] == "keep")
    else:
        main()
