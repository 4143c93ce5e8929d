"""What running a pipeline through `aistack run` costs over calling its models directly.

Run by hand (not a test):

    .venv/bin/python bench/pipeline_overhead.py [--rounds 3] [--example examples/summarization-pipeline]
                                                [--input-file examples/summarization-pipeline/document.md]

One embedded runtime (the bundled SmolLM2-135M, llama.cpp) is started in this process and stays
warm for the whole bench; `aistack run` finds it through OLLAMA_HOST, exactly as it would find a
real Ollama. A first `aistack run` warms everything up (Airflow database, model builds, the model
loaded). Then each round:

1. times one `aistack run` of the pipeline, as a user runs it (a fresh CLI process: validation,
   Airflow worker, agents, the DAG run, result printing, shutdown), with --trace, taking the warm
   Airflow worker the previous run left (aistack/local/standby.py), as a user's next run does;
2. times one more with AISTACK_RUN_STANDBY=0, which starts its Airflow worker afresh (a user's
   first run, or one more than 10 minutes after the last);
3. replays the model calls the first run's agents made (same model, messages, options and format,
   streamed, one after the other) straight to the same runtime with the official `ollama` client.

It reports the ratios of the wall times (target: at most 1.5x on the seed pipeline) and splits
the pipeline's time into: CLI start, this process's setup (runtime check, models, agents), waiting
for Airflow's start (the worker warms up in parallel; only what it takes beyond the setup counts),
the model calls, A2A (each step's time in its operator minus its model calls: agent card, message,
task events, artifact parsing), Airflow's task overhead (DAG run creation, scheduling, XCom, the
publish/rollback tasks) and the end (printing, stopping agents and worker). Sampling makes the
model's answers, and so their lengths, differ between the run and the replay: the token counts are
printed beside the times, and the ratio to the run's own model time is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def aistack_command() -> list[str]:
    script = Path(sys.executable).with_name("aistack")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "aistack.cli"]


def stop_standby(home: Path) -> None:
    """The warm worker the last run left, killed (the lock file holds its pid)."""
    import signal

    lock = home / "airflow" / "standby.lock"
    try:
        os.kill(int(lock.read_text().split()[0]), signal.SIGTERM)
    except (OSError, ValueError, IndexError):
        pass


def pipeline_run(args: argparse.Namespace, env: dict[str, str], trace: Path) -> tuple[float, dict[str, Any]]:
    command = [*aistack_command(), "run", str(args.example), "--trace", str(trace), "--output-dir", str(trace.parent / "out")]
    if args.input_file:
        command += ["--input-file", str(args.input_file)]
    launched, started = time.time(), time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"aistack run failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    record = json.loads(trace.read_text())
    record["launched"], record["exited"] = launched, launched + wall
    return wall, record


def replay(url: str, calls: list[dict[str, Any]]) -> tuple[float, list[tuple[float, int]]]:
    import ollama

    client = ollama.Client(host=url)
    each = []
    started = time.perf_counter()
    for call in calls:
        began = time.perf_counter()
        tokens = 0
        for part in client.chat(model=call["model"], messages=call["messages"], options=call["options"] or None, format=call["format"] or None, stream=True):
            if part.done:
                tokens = part.eval_count or 0
        each.append((time.perf_counter() - began, tokens))
    return time.perf_counter() - started, each


def breakdown(trace: dict[str, Any]) -> dict[str, float]:
    """The run's wall time (launch to exit) in consecutive parts, seconds; they add up to the wall time."""
    phases = trace["phases"]
    events = trace["events"]
    finished = next(e for e in events if e["event"] == "finished")
    model = sum(c["seconds"] for c in trace["model_calls"] if c.get("seconds") is not None)
    running: dict[str, float] = {}
    step_time = 0.0
    for event in events:
        if event["event"] != "task" or event["task"] in ("publish", "rollback"):
            continue
        if event["state"] == "running":
            running[event["task"]] = event["time"]
        elif event["task"] in running:
            step_time += event["time"] - running.pop(event["task"])
    setup_end = max(phases["agents_ready"], phases["worker_started"])
    airflow_ready = max(phases["airflow_ready"], setup_end)
    return {
        "CLI start (interpreter, imports, validation)": phases["worker_started"] - trace["launched"],
        "setup here (runtime check, models, agents)": setup_end - phases["worker_started"],
        "Airflow start, beyond the setup it overlaps": airflow_ready - setup_end,
        "go -> DAG.test() called": finished["started"] - airflow_ready,
        "model calls": model,
        "A2A (steps' operator time minus model calls)": step_time - model,
        "Airflow task overhead (DAG run minus steps)": (finished["ended"] - finished["started"]) - step_time,
        "end (printing, stopping agents and worker, exit)": trace["exited"] - finished["ended"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--example", type=Path, default=REPO / "examples" / "summarization-pipeline")
    parser.add_argument("--input-file", type=Path, default=REPO / "examples" / "summarization-pipeline" / "document.md")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--home", type=Path, default=None, help="AISTACK_HOME for the runs (default: a temporary one)")
    args = parser.parse_args()
    if args.input_file and not args.input_file.exists():
        args.input_file = None

    import logging

    from aistack.local.models import CONTEXT
    from aistack.runtime.config import RuntimeConfig
    from aistack.runtime.endpoint import embedded_server

    logging.basicConfig(level=logging.ERROR)  # the runtime's build messages are not the bench's output

    home = args.home or Path(tempfile.mkdtemp(prefix="aistack-bench-"))
    os.environ["AISTACK_HOME"] = str(home)
    print(f"AISTACK_HOME={home}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at start")
    with embedded_server(RuntimeConfig(n_ctx=CONTEXT)) as server:
        assert server.url is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
        env.update(OLLAMA_HOST=server.url, AISTACK_HOME=str(home), NO_COLOR="1")
        print(
            f"embedded runtime (in this process) at {server.url}; example {args.example.name}; "
            f"input {args.input_file.name if args.input_file else 'the orchestration’s own'}"
        )
        warm_wall, _ = pipeline_run(args, env, home / "warmup.json")
        print(f"warm-up run (database, model builds, model load): {warm_wall:.1f}s\n")
        rows = []
        fresh_rows = []
        try:
            for index in range(args.rounds):
                wall, trace = pipeline_run(args, env, home / f"round-{index}.json")
                assert trace["worker"] == "standby", trace["worker"]
                fresh_wall, fresh_trace = pipeline_run(args, {**env, "AISTACK_RUN_STANDBY": "0"}, home / f"round-{index}-fresh.json")
                calls = trace["model_calls"]
                direct, each = replay(server.url, calls)
                parts = breakdown(trace)
                model = parts["model calls"]
                rows.append((wall, direct, model, parts))
                fresh_rows.append((fresh_wall, breakdown(fresh_trace)))
                print(
                    f"round {index + 1}: aistack run {wall:.2f}s (fresh worker: {fresh_wall:.2f}s) | direct {direct:.2f}s for the same "
                    f"{len(calls)} model calls | ratio {wall / direct:.2f}x, fresh {fresh_wall / direct:.2f}x (to the run's own model time: {wall / model:.2f}x)"
                )
                for call, (seconds, tokens) in zip(calls, each):
                    print(f"    {call['agent']:<18} in the run {call['seconds']:6.2f}s {call['tokens']:4d} tokens | direct {seconds:6.2f}s {tokens:4d} tokens")
        finally:
            stop_standby(home)
        print()
        walls = [r[0] for r in rows]
        directs = [r[1] for r in rows]
        ratios = [r[0] / r[1] for r in rows]
        print(
            f"median over {len(rows)} rounds: aistack run {statistics.median(walls):.2f}s, direct model calls "
            f"{statistics.median(directs):.2f}s, ratio {statistics.median(ratios):.2f}x (target <= 1.5x)"
        )
        fresh = [r[0] for r in fresh_rows]
        print(
            f"with a fresh Airflow worker (AISTACK_RUN_STANDBY=0): aistack run {statistics.median(fresh):.2f}s, "
            f"ratio {statistics.median([f / d for f, d in zip(fresh, directs)]):.2f}x"
        )
        print(f"fastest of each (least disturbed by other load): aistack run {min(walls):.2f}s, direct {min(directs):.2f}s, ratio {min(walls) / min(directs):.2f}x")
        print("where the pipeline's time goes (median seconds; warm worker | fresh worker):")
        for key in rows[0][3]:
            values = [r[3][key] for r in rows]
            fresh_values = [r[1][key] for r in fresh_rows]
            print(f"    {key:<48} {statistics.median(values):6.2f} | {statistics.median(fresh_values):6.2f}")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
