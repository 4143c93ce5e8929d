"""What the embedded runtime's slots (OLLAMA_NUM_PARALLEL) change, measured through the official client.

Run by hand (not a test):

    .venv/bin/python bench/runtime_slots.py [--slots 1,2] [--reps 3] [--threads 2]

For each slot count an `aistack ollama serve --parallel N` is started as its own process on a free
port (the bundled smollm2:135m, AISTACK_OLLAMA_THREADS threads in all, split between the slots)
and warmed up with as many overlapping chats as it has slots. Then, in each repetition, the
configurations take turns, so background load hits them alike:

- alone: one chat of --tokens tokens, tokens per second as the caller sees it;
- together: 4 chats of --tokens tokens started at once, all their tokens over the wall time;
- behind: a short chat (8 tokens) sent while a long one (4 x --tokens) is generating: the short
  one's wall time, which is the latency a quick pipeline step sees behind a long summary.

Greedy decoding, a fixed seed, a different question per chat (no prompt cache shared between
them). Medians of the repetitions, and ratios to the first slot count of the same run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import ollama  # noqa: E402

from aistack.runtime.config import RuntimeConfig  # noqa: E402
from aistack.runtime.endpoint import embedded_server  # noqa: E402

TOGETHER = 4


def chat(client: ollama.Client, question: int, tokens: int) -> tuple[float, int]:
    started = time.perf_counter()
    reply = client.chat(
        model="smollm2",
        messages=[{"role": "user", "content": f"Write a long story about ship number {question} and its crew of {question + 3}."}],
        options={"temperature": 0, "seed": 42, "num_predict": tokens},
    )
    return time.perf_counter() - started, reply.eval_count or 0


def alone(client: ollama.Client, tokens: int, question: int) -> float:
    seconds, count = chat(client, question, tokens)
    return count / seconds


def together(client: ollama.Client, tokens: int, question: int) -> float:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(TOGETHER) as pool:
        results = list(pool.map(lambda i: chat(client, question + i, tokens), range(TOGETHER)))
    return sum(count for _, count in results) / (time.perf_counter() - started)


def behind(client: ollama.Client, tokens: int, question: int) -> float:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        long = pool.submit(chat, client, question, 4 * tokens)
        time.sleep(0.5)  # the long one is generating
        seconds, _ = chat(client, question + 1, 8)
        long.result()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", default="1,2")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    slots = [int(s) for s in args.slots.split(",")]
    measures = {"alone": alone, "together": together, "behind": behind}
    figures: dict[int, dict[str, list[float]]] = {n: {m: [] for m in measures} for n in slots}
    with tempfile.TemporaryDirectory(prefix="aistack-bench-slots-") as home, ExitStack() as stack:
        clients = {}
        for n in slots:
            config = RuntimeConfig(store=Path(home) / f"ollama-{n}", substitutions={}, n_threads=args.threads, num_parallel=n)
            server = stack.enter_context(embedded_server(config, log_path=Path(home) / f"runtime-{n}.log"))
            clients[n] = ollama.Client(host=server.url, timeout=600)
            with concurrent.futures.ThreadPoolExecutor(n) as pool:  # every slot loads the model once
                list(pool.map(lambda i, c=clients[n]: chat(c, 1000 + i, 4), range(n)))
        question = 0
        for rep in range(args.reps):
            for name, measure in measures.items():
                for n in slots:
                    question += 10
                    figures[n][name].append(measure(clients[n], args.tokens, question))
            print(f"repetition {rep + 1}/{args.reps} done", file=sys.stderr)
    base = slots[0]
    print(f"{args.threads} llama.cpp threads in all; medians of {args.reps} repetitions; ratios to {base} slot(s)\n")
    print(f"{'slots':>5} {'alone tok/s':>12} {'4 together tok/s':>17} {'short behind long':>18}")
    for n in slots:
        row = {m: statistics.median(v) for m, v in figures[n].items()}
        ref = {m: statistics.median(v) for m, v in figures[base].items()}
        print(
            f"{n:>5} {row['alone']:>7.1f} {row['alone'] / ref['alone']:4.2f}x {row['together']:>12.1f} {row['together'] / ref['together']:4.2f}x"
            f" {row['behind']:>12.2f}s {row['behind'] / ref['behind']:4.2f}x"
        )


if __name__ == "__main__":
    main()
