"""What the seed pipeline answers on real documents: points, grounding, degenerate answers, verdicts.

Run by hand (not a test):

    .venv/bin/python bench/pipeline_quality.py [--documents examples/documents] [--example examples/summarization-pipeline]

Each document in the folder goes through `aistack run EXAMPLE --input-file DOCUMENT` (the real
CLI: Airflow, the agents over A2A, the embedded runtime with the bundled SmolLM2-135M, unless
OLLAMA_HOST points at a real Ollama), in a private AISTACK_HOME. A first run, not counted, warms
it up (Airflow's database, the model builds); every counted run is a warm run. Per document:

- wall time of the whole `aistack run`;
- the summary's points (the summarizer's `main_points`) and the share of them grounded in the
  document (aistack.agents.quality's lexical measure);
- degenerate answers in every step's JSON: empty required lists, repeated items, schema words as
  items, strings over 600 characters (aistack.agents.quality, with each agent's own schema);
- the quality check's verdict and its evidence.

Targets on the bundled model, 2 cores: no degenerate answers, at least 80% of points grounded,
each warm run under 30 s. A summary is also counted when the run failed on its verdict (the
summary is in the results either way).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_once(example: Path, document: Path, home: Path) -> tuple[float, int, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "AISTACK_"))}
    env.update(AISTACK_HOME=str(home), NO_COLOR="1")
    trace = home / f"trace-{time.monotonic_ns()}.json"
    command = [
        str(Path(sys.executable).with_name("aistack")),
        "run",
        str(example),
        "--input-file",
        str(document),
        "--output-dir",
        str(home / "out"),
        "--trace",
        str(trace),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    if not trace.exists():
        raise SystemExit(f"{document.name}: aistack run left no trace (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.returncode, json.loads(trace.read_text())


def results_of(trace: dict[str, Any]) -> dict[str, Any]:
    finished = [e for e in trace.get("events", []) if e.get("event") == "finished"]
    return finished[0].get("results", {}) if finished else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=Path, default=ROOT / "examples" / "documents")
    parser.add_argument("--example", type=Path, default=ROOT / "examples" / "summarization-pipeline")
    args = parser.parse_args()

    from aistack.agents.profile import AgentProfile
    from aistack.agents.quality import measure
    from aistack.local.project import load_project

    project = load_project([args.example])
    schemas = {agent.name: AgentProfile.from_resources(agent, definition).schema for agent, definition in project.agents}
    steps = {step.name: step.agent_ref for step in project.orchestration.spec.pipeline}
    documents = sorted(p for p in args.documents.iterdir() if p.is_file())
    totals: dict[str, list[float]] = {"seconds": [], "grounded": []}
    degenerate_runs = passed_runs = 0
    with tempfile.TemporaryDirectory(prefix="aistack-quality-") as tmp:
        home = Path(tmp)
        seconds, status, _ = run_once(args.example, documents[0], home)
        print(f"warm-up run (not counted): {seconds:.1f}s, exit {status}\n")
        for document in documents:
            source = document.read_text()
            seconds, status, trace = run_once(args.example, document, home)
            results = results_of(trace)
            totals["seconds"].append(seconds)
            print(f"== {document.name}: {seconds:.1f}s, exit {status}")
            degenerate: list[str] = []
            for step, agent in steps.items():
                for artifact in (results.get(step) or {}).get("artifacts", []):
                    if "data" in artifact and not artifact["data"].get("evidence"):
                        evidence = measure(artifact["data"], source, schemas.get(agent))
                        degenerate += [f"{step}: {item}" for item in evidence.degenerate]
            summary = next((a["data"] for a in (results.get("summarizer") or {}).get("artifacts", []) if "data" in a), {})
            points = summary.get("main_points") or []
            grounded = measure({"main_points": points}, source).grounded_share if points else 0.0
            totals["grounded"].append(grounded)
            print(f"   points ({len(points)}, {grounded:.0%} grounded):")
            for point in points:
                print(f"     - {point}")
            degenerate_runs += bool(degenerate)
            print(f"   degenerate answers: {'; '.join(degenerate) or 'none'}")
            verdict = next((a["data"] for a in (results.get("quality-check") or {}).get("artifacts", []) if "data" in a), None)
            if verdict is None:
                print("   verdict: none (the quality check did not answer)")
            else:
                evidence = verdict.get("evidence", {})
                passed_runs += verdict.get("passed") is True
                print(
                    f"   verdict: passed={verdict.get('passed')} score={verdict.get('score')} "
                    f"(model: {verdict.get('modelVerdict')}); evidence: {evidence.get('supported')}/{evidence.get('statements')} "
                    f"statements supported, problems: {'; '.join(evidence.get('problems') or []) or 'none'}"
                )
            print()
    runs = len(documents)
    print(
        f"{runs} documents: median warm run {statistics.median(totals['seconds']):.1f}s (max {max(totals['seconds']):.1f}s; "
        f"target < 30s), points grounded {statistics.mean(totals['grounded']):.0%} on average "
        f"(min {min(totals['grounded']):.0%}; target >= 80%), runs with degenerate answers {degenerate_runs}/{runs} "
        f"(target 0), verdicts passed {passed_runs}/{runs}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
