"""What the traces cost: an A2A hop and a whole pipeline run with tracing on against off.

Run by hand (not a test):

    .venv/bin/python bench/observability_cost.py [--hops 300] [--runs 6] [--delay 0.02]

Tracing "on" is an OpenTelemetry SDK tracer provider with a batch span processor whose exporter
takes every span and drops it (what the process pays to record and hand spans over, without the
network); "off" is the default: no provider, so nothing is recorded, though the trace context is
still injected and extracted. The usage report (token counts, times, model and digest in the A2A
task's metadata) is part of both: it is always on.

1. A2A hop: SendMessage to an aistack agent served in this process (the fake instant model), the
   client's span, the agent's and the model call's spans all recorded by the one provider.
2. Whole run: dag.test() of a three-step pipeline against agents whose fake model streams five
   tokens an answer at --delay seconds each (a stand-in for a model, so the ratio is to a run's
   time, not only to the platform's).
Batches alternate between off and on, so background load hits both alike; medians are printed
with the ratio on/off. Target: tracing costs under 2 % of a run's time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.in_process import private_home  # noqa: E402

PIPELINE = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {name: traced}
spec:
  input: {text: "How long did the Apollo 11 crew stay on the Moon?"}
  pipeline:
    - {name: answer, agentRef: chat-agent}
    - {name: shorten, agentRef: chat-agent, dependsOn: [answer], prompt: "Say it in five words."}
    - {name: title, agentRef: chat-agent, dependsOn: [shorten], prompt: "Give it a title."}
"""


def tracing(on: bool) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from aistack import telemetry

    class Dropped(SpanExporter):
        def export(self, spans: Sequence[object]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    if not on:
        telemetry.use(None)
        return
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped()))
    telemetry.use(provider)


def alternate(rounds: int, measure: Callable[[], float]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"off": [], "on": []}
    for index in range(rounds * 2):
        mode = ("off", "on")[index % 2]
        tracing(mode == "on")
        times[mode].append(measure())
    tracing(False)
    return times


def report(title: str, times: dict[str, list[float]], unit: str, scale: float) -> float:
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    print(f"{title}: off {off * scale:.2f} {unit}, on {on * scale:.2f} {unit}, ratio {on / off:.3f}x ({(on - off) * scale:+.2f} {unit})")
    return on / off


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, default=300, help="SendMessage calls per batch (default: 300)")
    parser.add_argument("--batches", type=int, default=6, help="batches of hops per mode (default: 6)")
    parser.add_argument("--runs", type=int, default=6, help="pipeline runs per mode (default: 6)")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds per token of the run's fake model (default: 0.02)")
    args = parser.parse_args()

    home = private_home("aistack-bench-traces-")
    os.environ.pop("AISTACK_OTLP_ENDPOINT", None)

    from aistack.agents.client import SyncAgentClient
    from aistack.agents.fakes import EchoModelBackend, ScriptedModel
    from aistack.agents.runner import serve_agents
    from tests.plugins.support import example_agents, load_dags_from

    agents = [pair for pair in example_agents(REPO) if pair[0].name == "chat-agent"]
    with serve_agents(agents, backends=lambda agent, definition: EchoModelBackend()) as running:
        client = SyncAgentClient(running[0].url, token="bench-token")
        try:
            for _ in range(50):  # warm up: connection, first requests
                client.send("warm up")

            def hops() -> float:
                started = time.perf_counter()
                for index in range(args.hops):
                    client.send(f"hello {index}")
                return (time.perf_counter() - started) / args.hops

            hop = report("A2A hop (SendMessage, median per call)", alternate(args.batches, hops), "ms", 1000)
        finally:
            client.close()

    (home / "pipelines").mkdir()
    (home / "pipelines" / "task.yaml").write_text(PIPELINE)
    model = ScriptedModel(["They stayed twenty one hours."], token_delay=args.delay)
    with serve_agents(agents, backends=lambda agent, definition: model, registry=True):
        dag = load_dags_from(home / "pipelines")["aistack__default__traced"]
        dag.test()  # warm up

        def run() -> float:
            started = time.perf_counter()
            result = dag.test()
            assert result.state == "success", result.state
            return time.perf_counter() - started

        whole = report("whole run (3 steps, dag.test)", alternate(args.runs, run), "s", 1)
    print(json.dumps({"hop_ratio": round(hop, 4), "run_ratio": round(whole, 4), "target_run_ratio": 1.02}))


if __name__ == "__main__":
    main()
