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

dag.test() runs task instances one after another in this process, so the pipeline's parallelism is
1 whatever maxParallel says; with `--parallel` above 1 the direct calls run in parallel and the
ratio includes what parallel workers would save (say so when reading it). The ratio of the
medians is the cost of the fan-out: listing the items, one mapped task instance per item
(its XCom, its status node), gathering the results and publishing them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

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
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="aistack-bench-fan-out-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AISTACK_HOME": str(home / "aistack"),
            "AISTACK_OUTPUT_DIR": str(home / "outputs"),
            "AISTACK_AGENT_TOKEN": "bench-token",
            "AISTACK_ORCHESTRATIONS_PATH": str(home / "pipelines"),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                [{"name": "aistack", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {"path": str(REPO / "dags")}}]
            ),
        }
    )
    import subprocess

    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True, capture_output=True)

    from aistack.agents.client import SyncAgentClient
    from aistack.agents.fakes import ScriptedModel
    from aistack.agents.runner import serve_agents
    from tests.plugins.support import example_agents, load_dags_from

    items = [f"Question number {index}: what is {index} plus one?" for index in range(args.items)]
    (home / "pipelines").mkdir()
    (home / "pipelines" / "task.yaml").write_text(PIPELINE.format(items=json.dumps(items), parallel=args.parallel))
    model = ScriptedModel(["The answer is one more."], token_delay=args.delay)
    agents = [pair for pair in example_agents(REPO) if pair[0].name == "chat-agent"]
    with serve_agents(agents, backends=lambda agent, definition: model, registry=True) as running:
        url = running[0].url
        dag = load_dags_from(home / "pipelines")["aistack__default__fan-out"]

        def pipeline() -> float:
            started = time.perf_counter()
            run = dag.test()
            elapsed = time.perf_counter() - started
            assert run.state == "success", run.state
            return elapsed

        def direct() -> float:
            def call(item: str) -> None:
                client = SyncAgentClient(url, token="bench-token", namespace="default")
                try:
                    result = client.stream("Answer briefly.", inputs=[{"name": "item", "mediaType": "text/plain", "text": item}])
                    assert result.succeeded
                finally:
                    client.close()

            started = time.perf_counter()
            with ThreadPoolExecutor(args.parallel) as pool:
                list(pool.map(call, items))
            return time.perf_counter() - started

        pipeline()  # warm-up: the DAG's serialization, the first task's imports
        times: dict[str, list[float]] = {"pipeline": [], "direct": []}
        for _ in range(args.rounds):
            times["pipeline"].append(pipeline())
            times["direct"].append(direct())
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    print(f"{args.items} items, maxParallel {args.parallel}, fake model {args.delay * 1000:.0f} ms/token, {args.rounds} rounds (median seconds)")
    for kind, values in times.items():
        print(f"  {kind:9} {medians[kind]:8.2f}   ({', '.join(f'{v:.2f}' for v in values)})   {medians[kind] / args.items * 1000:7.1f} ms/item")
    print(f"  ratio     {medians['pipeline'] / medians['direct']:8.2f}x  (pipeline / direct)")
    print(f"  overhead  {(medians['pipeline'] - medians['direct']) / args.items * 1000:8.1f} ms per item")


if __name__ == "__main__":
    main()
