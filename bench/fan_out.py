"""What a forEach step costs over making the same agent calls directly, at the same parallelism.

Run by hand (not a test):

    .venv/bin/python bench/fan_out.py [--items 100] [--parallel 1] [--delay 0.02] [--rounds 3]

One A2A agent is served in this process with a deterministic fake model that streams a short
answer with `--delay` seconds per token (a stand-in for the model, so the figures are about the
platform). Then, in each round:

1. pipeline: a generated DAG whose one step runs `forEach.fromInput` over a JSON list of
   `--items` items with `maxParallel: --parallel`, then `publish`, run with `dag.test()`;
2. direct: the same messages (the step's prompt and one item each) sent to the same agent with
   aistack's A2A client, `--parallel` at a time from a thread pool.

dag.test() runs task instances one after another in this process, so its parallelism is 1
whatever maxParallel says. With `--standalone`, the pipeline runs instead in a real `airflow
standalone` (scheduler, LocalExecutor with `--parallel` slots, one process per task instance, as
deployed), triggered through the REST API and timed from the trigger to the run's end, so the
items really run `--parallel` at a time, like the direct calls. The ratio of the medians is the
cost of the fan-out: listing the items, one mapped task instance per item (its process, its
XCom, its status node), gathering the results and publishing them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.in_process import private_home  # noqa: E402

PIPELINE = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {{name: fan-out}}
spec:
  input: {{text: '{items}'}}
  pipeline:
    - name: each
      agentRef: chat-agent
      prompt: Answer briefly.
      forEach: {{fromInput: {{split: json}}, maxParallel: {parallel}, maxItems: 10000}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds per token of the fake model (5 tokens an answer)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--standalone", action="store_true", help="run the pipeline in a real airflow standalone (parallel task processes)")
    args = parser.parse_args()

    home = private_home("aistack-bench-fan-out-")

    from aistack.agents.fakes import ScriptedModel
    from aistack.agents.runner import serve_agents
    from tests.plugins.support import example_agents

    items = [f"Question number {index}: what is {index} plus one?" for index in range(args.items)]
    (home / "pipelines").mkdir()
    (home / "pipelines" / "task.yaml").write_text(PIPELINE.format(items=json.dumps(items), parallel=args.parallel))
    model = ScriptedModel(["The answer is one more."], token_delay=args.delay)
    agents = [pair for pair in example_agents(REPO) if pair[0].name == "chat-agent"]
    with serve_agents(agents, backends=lambda agent, definition: model, registry=True) as running:
        url = running[0].url
        with contextlib.ExitStack() as stack:
            pipeline = stack.enter_context(standalone_pipeline(home, args.parallel)) if args.standalone else in_process_pipeline(home)
            medians, times = measure(args, pipeline, lambda: direct(url, items, args.parallel))
    mode = f"airflow standalone, LocalExecutor with {args.parallel} slots" if args.standalone else "dag.test(), in process, one item at a time"
    print(f"{args.items} items, maxParallel {args.parallel} ({mode}), fake model {args.delay * 1000:.0f} ms/token, {args.rounds} rounds (median seconds)")
    for kind, values in times.items():
        print(f"  {kind:9} {medians[kind]:8.2f}   ({', '.join(f'{v:.2f}' for v in values)})   {medians[kind] / args.items * 1000:7.1f} ms/item")
    print(f"  ratio     {medians['pipeline'] / medians['direct']:8.2f}x  (pipeline / direct)")
    print(f"  overhead  {(medians['pipeline'] - medians['direct']) / args.items * 1000 * min(args.parallel, args.items):8.1f} ms per item and slot")


def in_process_pipeline(home: Path) -> Callable[[], float]:
    from tests.plugins.support import load_dags_from

    dag = load_dags_from(home / "pipelines")["aistack__default__fan-out"]

    def pipeline() -> float:
        started = time.perf_counter()
        run = dag.test()
        elapsed = time.perf_counter() - started
        assert run.state == "success", run.state
        return elapsed

    return pipeline


@contextlib.contextmanager
def standalone_pipeline(home: Path, parallel: int) -> Iterator[Callable[[], float]]:
    """A real airflow standalone with the generator's DAG file; each call triggers one run."""
    from tests.standalone import airflow_standalone, call

    dags = home / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "task_orchestrations.py", dags)
    (home / "standalone").mkdir()
    env = {key: os.environ[key] for key in ("AISTACK_HOME", "AISTACK_OUTPUT_DIR", "AISTACK_AGENT_TOKEN", "AISTACK_ORCHESTRATIONS_PATH")}
    env |= {"AIRFLOW__CORE__PARALLELISM": str(parallel + 1), "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(parallel + 1)}
    with airflow_standalone(home / "standalone", dags, env) as api:
        dag_id = "aistack__default__fan-out"
        deadline = time.monotonic() + 180
        while not any(d["dag_id"] == dag_id for d in call(api, "GET", "/dags", params={"limit": 100})["dags"]):
            assert time.monotonic() < deadline, "the pipeline's DAG did not appear"
            time.sleep(1)
        call(api, "PATCH", f"/dags/{dag_id}", json={"is_paused": False})

        def pipeline() -> float:
            started = time.perf_counter()
            run_id = call(api, "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None})["dag_run_id"]
            while (state := call(api, "GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]) not in ("success", "failed"):
                time.sleep(0.2)
            assert state == "success", state
            return time.perf_counter() - started

        yield pipeline


def direct(url: str, items: list[str], parallel: int) -> float:
    """The same messages, straight to the agent, `parallel` at a time."""
    from aistack.agents.client import SyncAgentClient

    def call(item: str) -> None:
        client = SyncAgentClient(url, token="bench-token", namespace="default")
        try:
            result = client.stream("Answer briefly.", inputs=[{"name": "item", "mediaType": "text/plain", "text": item}])
            assert result.succeeded
        finally:
            client.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(call, items))
    return time.perf_counter() - started


def measure(args: argparse.Namespace, pipeline: Callable[[], float], direct_calls: Callable[[], float]) -> tuple[dict[str, float], dict[str, list[float]]]:
    pipeline()  # warm-up: the DAG's serialization, the first task's imports
    times: dict[str, list[float]] = {"pipeline": [], "direct": []}
    for _ in range(args.rounds):
        times["pipeline"].append(pipeline())
        times["direct"].append(direct_calls())
    return {kind: statistics.median(values) for kind, values in times.items()}, times


if __name__ == "__main__":
    main()
