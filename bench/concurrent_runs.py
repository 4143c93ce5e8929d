"""Many pipeline runs at once on Airflow as deployed (PostgreSQL, Redis, CeleryExecutor with the
workers of helm-values/airflow-celery.yaml, every component its own process: tests/deployment).

Run by hand from the repository root (fake: about 5 minutes; embedded: longer, the model is real):

    .venv/bin/python bench/concurrent_runs.py [--counts 1,10,50] [--model fake|embedded] [--keep]

For each N, N new TaskOrchestrations are applied in one `kubectl apply` to the Kubernetes API test
server; the watcher DAG turns them into runs. Each pipeline is two agent steps in a chain
(`answer`, then `check`) and publish. Measured, from just before kubectl starts:
  first step   p50/p95 of submission -> the run's first step running (its task's start_date), and
               of submission -> the run queued (the watcher's part: sensor, parse, trigger)
  runs/min     N over the time until the last run ended
  overhead     per task (the 3 of each run): (last task's end - first step start - the agents' model time) / 3
and the machine's CPU busy share meanwhile (/proc/stat). Each N starts once the watcher's watch is
open, after a warm-up of 2 runs. Each figure is also given as a ratio to N = 1 of the same run.

--model fake: agents answer from a deterministic stand-in that streams 12 tokens 20 ms apart
(0.24 s a call), so the platform is what is measured. --model embedded: agents call the embedded
llama.cpp runtime (SmolLM2-135M), started here, with OLLAMA_NUM_PARALLEL slots (default
here: 1, as the runtime's own default; --parallel sets it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aistack.agents.fakes import ScriptedModel  # noqa: E402
from tests.aistack.agents.support import model_definition, ollama_agent  # noqa: E402
from tests.deployment import services  # noqa: E402
from tests.deployment.stack import Stack, running_stack, watcher_armed  # noqa: E402
from tests.kubeapi.support import eventually  # noqa: E402

API = "ai.stack/v1alpha1"
DONE = ("Succeeded", "Failed", "RolledBack")
TASKS_PER_RUN = 3


def ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def pipeline(name: str, i: int) -> dict[str, Any]:
    steps = [
        {"name": "answer", "agentRef": "answer-agent", "prompt": "Answer the question in one sentence."},
        {"name": "check", "agentRef": "check-agent", "dependsOn": ["answer"], "prompt": "Say whether the answer answers the question."},
    ]
    text = f"Question {i}: what colour is the sky on a clear day?"
    return {"apiVersion": API, "kind": "TaskOrchestration", "metadata": {"name": name, "namespace": "default"}, "spec": {"input": {"text": text}, "pipeline": steps}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the machine so far (/proc/stat)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def measure(stack: Stack, api: httpx.Client, n: int, label: str = "") -> dict[str, float]:
    names = [f"{label or 'n'}{n}-{i:03d}" for i in range(n)]
    eventually(lambda: watcher_armed(api), timeout=120, interval=0.2)
    time.sleep(1.0)
    cpu0 = cpu_busy()
    t0 = time.time()
    stack.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([pipeline(name, i) for i, name in enumerate(names)]))

    def statuses() -> dict[str, dict[str, Any]] | None:
        found = {name: (stack.kube.get_object(API, "TaskOrchestration", name, "default") or {}).get("status") or {} for name in names}
        return found if all(s.get("phase") in DONE for s in found.values()) else None

    done = eventually(statuses, timeout=60 * 60, interval=1)
    failed = [name for name, s in done.items() if s["phase"] != "Succeeded"]
    if failed:
        sys.exit(f"runs failed: {failed[:5]} ({done[failed[0]]})")
    cpu1 = cpu_busy()
    first, queued, overheads, ends = [], [], [], []
    for status in done.values():
        run = api.get(f"/dags/{status['dagId']}/dagRuns/{status['runId']}").json()
        queued.append((ts(run["queued_at"]) or t0) - t0)
        tis = {t["task_id"]: t for t in api.get(f"/dags/{status['dagId']}/dagRuns/{status['runId']}/taskInstances").json()["task_instances"]}
        # The run's end: its last task's (the scheduler marks the run itself a little later).
        start, end = ts(tis["answer"]["start_date"]), max(ts(t["end_date"]) or 0.0 for t in tis.values())
        assert start is not None
        first.append(start - t0)
        ends.append(end)
        model = float((status.get("usage") or {}).get("modelSeconds") or 0.0)
        overheads.append((end - start - model) / TASKS_PER_RUN)
    wall = max(ends) - t0
    return {
        "queued_p50": statistics.median(queued),
        "queued_p95": percentile(queued, 0.95),
        "cpu": (cpu1[0] - cpu0[0]) / (cpu1[1] - cpu0[1]),
        "p50": statistics.median(first),
        "p95": percentile(first, 0.95),
        "runs_per_min": n / wall * 60,
        "overhead": statistics.median(overheads),
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,10,50")
    parser.add_argument("--model", choices=("fake", "embedded"), default="fake")
    parser.add_argument("--parallel", type=int, default=None, help="embedded: the runtime's slots (OLLAMA_NUM_PARALLEL)")
    parser.add_argument("--keep", action="store_true", help="keep the deployment's folder and logs")
    args = parser.parse_args()
    if services.missing():
        sys.exit("cannot set up the deployment: " + "; ".join(services.missing()))
    counts = [int(c) for c in args.counts.split(",")]
    root = Path(tempfile.mkdtemp(prefix="aistack-bench-concurrent-"))
    names = ("answer-agent", "check-agent")
    pairs = [(ollama_agent(name, streaming=False), model_definition()) for name in names]
    try:
        if args.model == "fake":
            reply = "The sky on a clear day is blue because air scatters blue light most."
            models = {name: ScriptedModel([reply], token_delay=0.02, model="stand-in:fake") for name in names}
            run_bench(root, pairs, counts, models=models)
        else:
            run_embedded(root, pairs, counts, args.parallel)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def run_embedded(root: Path, pairs: list[tuple[Any, Any]], counts: list[int], parallel: int | None) -> None:
    os.environ["AISTACK_HOME"] = str(root / "runtime-home")
    if parallel is not None:
        os.environ["OLLAMA_NUM_PARALLEL"] = str(parallel)
    os.environ.pop("OLLAMA_HOST", None)
    from aistack.local.models import ensure_models, model_runtime

    with model_runtime() as runtime:
        ensure_models(runtime, [pairs[0][1]])
        print(f"model runtime: {runtime.describe()}")
        run_bench(root, pairs, counts, ollama_host=runtime.url)


def run_bench(root: Path, pairs: list[tuple[Any, Any]], counts: list[int], **agents: Any) -> None:
    started = time.monotonic()
    with running_stack(root / "stack", pairs, **agents) as stack, httpx.Client(base_url=f"{stack.airflow.base_url}/api/v2", timeout=30) as api:
        print(
            f"deployment up in {time.monotonic() - started:.0f}s: {len(stack.airflow.workers)} Celery workers, "
            f"concurrency {stack.airflow.env.get('AIRFLOW__CELERY__WORKER_CONCURRENCY')}"
        )
        measure(stack, api, 2, label="warm-up")  # every worker has started a task once
        rows = {n: measure(stack, api, n) for n in counts}
    base = rows[counts[0]]
    print(f"\n{'N':>4} {'first step p50':>15} {'p95':>7} {'(run queued p50':>16} {'p95)':>7} {'runs/min':>9} {'overhead/task':>14} {'wall':>7} {'CPU busy':>9}")
    for n, row in rows.items():
        print(
            f"{n:>4} {row['p50']:14.2f}s {row['p95']:6.2f}s {row['queued_p50']:15.2f}s {row['queued_p95']:6.2f}s "
            f"{row['runs_per_min']:9.1f} {row['overhead']:13.2f}s {row['wall']:6.1f}s {row['cpu']:8.0%}"
        )
    print(f"\nratios to N={counts[0]}:")
    for n, row in rows.items():
        print(
            f"{n:>4}  first step p50 {row['p50'] / base['p50']:5.2f}x  p95 {row['p95'] / base['p95']:5.2f}x  "
            f"runs/min {row['runs_per_min'] / base['runs_per_min']:5.2f}x  overhead/task {row['overhead'] / base['overhead']:5.2f}x"
        )


if __name__ == "__main__":
    main()
