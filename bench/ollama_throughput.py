"""Throughput of the embedded Ollama runtime against llama-cpp-python called directly.

Run by hand (not a test):

    .venv/bin/python bench/ollama_throughput.py [--reps 5] [--num-predict 128] [--threads 2]

Same model (the bundled smollm2:135m), same chat messages, same settings (greedy: temperature
0, seed 42, Ollama's repeat_penalty 1.1 over the last 64 tokens), same number of tokens. Each
repetition runs the three paths back to back, so background load hits them alike:

- direct: `Llama.create_chat_completion` in this process;
- http: the official `ollama.Client.chat` (non-streaming) against `aistack ollama serve`,
  started here as a separate process on a free port (or `--url` for a running server);
- http-stream: the same with stream=True, every NDJSON chunk parsed by the client.

The server runs in its own process because llama.cpp's CPU backend keeps one OpenMP thread
team per calling thread: a direct model driven from this process's main thread and the
server's model thread taking turns in one process slow each other down (82 -> 30 tokens/s
measured), which would measure that artefact rather than the HTTP path.

With `--other-python PY` it compares two llama.cpp builds instead: this venv's (the Makefile's
portable build: AVX2, no AVX-512, no AMX) and the one PY imports (e.g. a venv where
llama-cpp-python was built with CMAKE_ARGS=-DGGML_NATIVE=ON), each in a fresh child process,
alternating, on the same model and prompt: prompt evaluation and generation tokens per second,
and the ratio portable / other.

Tokens per second = generated tokens / wall time of the whole call (prompt evaluation
included) as the caller sees it. The target: the HTTP paths keep at least 90% of direct.
Median and best of the repetitions are printed; on a shared machine the best is the figure
least disturbed by other processes.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MESSAGES = [
    {"role": "system", "content": "You are a storyteller who writes long, detailed stories."},
    {"role": "user", "content": "Write a long story about a lighthouse keeper who finds a map in a bottle."},
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions per path (default: 5)")
    parser.add_argument("--num-predict", type=int, default=128, help="tokens per request (default: 128)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default: 2)")
    parser.add_argument("--url", default=None, help="benchmark this server instead of starting one")
    parser.add_argument("--other-python", default=None, help="compare this venv's llama.cpp build with the one this Python imports")
    args = parser.parse_args()
    if args.other_python:
        return compare_builds(args)

    import ollama
    from llama_cpp import Llama

    from aistack.runtime.basemodels import bundled_model
    from aistack.runtime.engine import DEFAULT_CONTEXT

    path = bundled_model("smollm2:135m").path()
    settings = {"temperature": 0.0, "seed": 42, "top_k": 40, "top_p": 0.9, "min_p": 0.0, "repeat_penalty": 1.1}
    options = settings | {"repeat_last_n": 64, "num_predict": args.num_predict, "num_ctx": DEFAULT_CONTEXT}
    direct_model = Llama(model_path=str(path), n_ctx=DEFAULT_CONTEXT, n_threads=args.threads, n_threads_batch=args.threads, verbose=False, last_n_tokens_size=64)

    def direct() -> tuple[int, float, str]:
        direct_model.reset()  # the server evaluates the whole prompt every time, too
        started = time.perf_counter()
        result = direct_model.create_chat_completion(
            messages=MESSAGES,
            max_tokens=args.num_predict,
            temperature=0.0,
            seed=42,
            top_k=40,
            top_p=0.9,
            min_p=0.0,
            repeat_penalty=1.1,
        )
        elapsed = time.perf_counter() - started
        return result["usage"]["completion_tokens"], elapsed, result["choices"][0]["message"]["content"]

    with tempfile.TemporaryDirectory() as home:
        server = None
        url = args.url
        if url is None:
            port = _free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "aistack.cli", "ollama", "serve", "--port", str(port), "--threads", str(args.threads), "--home", home],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url, server)
        try:
            client = ollama.Client(host=url, timeout=600)
            client.generate(model="smollm2:135m", keep_alive=-1)  # load once, as a warm server is

            def http() -> tuple[int, float, str]:
                started = time.perf_counter()
                response = client.chat(model="smollm2:135m", messages=MESSAGES, options=options)
                return response.eval_count, time.perf_counter() - started, response.message.content

            def http_stream() -> tuple[int, float, str]:
                started = time.perf_counter()
                parts, count = [], 0
                for chunk in client.chat(model="smollm2:135m", messages=MESSAGES, options=options, stream=True):
                    parts.append(chunk.message.content)
                    if chunk.done:
                        count = chunk.eval_count
                return count, time.perf_counter() - started, "".join(parts)

            paths = {"direct": direct, "http": http, "http-stream": http_stream}
            for run in paths.values():  # warm-up: first-call costs out of the figures
                run()
            rates: dict[str, list[float]] = {name: [] for name in paths}
            texts: dict[str, set[str]] = {name: set() for name in paths}
            counts: dict[str, set[int]] = {name: set() for name in paths}
            for rep in range(args.reps):
                for name, run in paths.items():
                    tokens, elapsed, text = run()
                    rates[name].append(tokens / elapsed)
                    texts[name].add(text)
                    counts[name].add(tokens)
                print(f"rep {rep + 1}: " + ", ".join(f"{n} {rates[n][-1]:.1f} tok/s" for n in paths), flush=True)
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)

    print()
    print(f"model smollm2:135m ({path.name}), {args.threads} threads, {args.num_predict} tokens, {args.reps} repetitions, greedy, seed 42")
    direct_median, direct_best = statistics.median(rates["direct"]), max(rates["direct"])
    for name in paths:
        median, best = statistics.median(rates[name]), max(rates[name])
        print(
            f"{name:12s} median {median:6.1f} tok/s, best {best:6.1f} (worst {min(rates[name]):5.1f}; "
            f"tokens {sorted(counts[name])})  ratio to direct: median {median / direct_median:.3f}, "
            f"best {best / direct_best:.3f}"
        )
    same = len(set().union(*texts.values())) == 1
    print(f"identical output on every path and repetition: {same}")
    return 0


BUILD_PROBE = """
import json, sys, time
import llama_cpp
path, threads, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
prompt = " ".join(["The lighthouse keeper found a map in a bottle and followed it along the coast."] * 30)
prompt_tokens = llm.tokenize(prompt.encode())
started = time.perf_counter()
llm.eval(prompt_tokens)
prompt_seconds = time.perf_counter() - started
llm.reset()
started = time.perf_counter()
out = llm.create_completion("Once upon a time, a lighthouse keeper", max_tokens=tokens, temperature=0.0, seed=42,
                            logit_bias={llm.token_eos(): -100.0})  # always the full number of tokens
seconds = time.perf_counter() - started
print(json.dumps({"prompt_rate": len(prompt_tokens) / prompt_seconds, "rate": out["usage"]["completion_tokens"] / seconds,
                  "info": llama_cpp.llama_print_system_info().decode().strip()}))
"""


def compare_builds(args: argparse.Namespace) -> int:
    import json

    from aistack.runtime.basemodels import bundled_model

    path = str(bundled_model("smollm2:135m").path())
    pythons = {"portable (this venv)": sys.executable, f"other ({args.other_python})": args.other_python}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in pythons}
    for rep in range(args.reps):
        for name, python in pythons.items():
            done = subprocess.run(
                [python, "-c", BUILD_PROBE, path, str(args.threads), str(args.num_predict)], capture_output=True, text=True, check=True, timeout=600
            )
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(
            f"rep {rep + 1}: " + ", ".join(f"{n}: prompt {results[n][-1]['prompt_rate']:.0f} tok/s, generation {results[n][-1]['rate']:.1f} tok/s" for n in pythons),
            flush=True,
        )
    print()
    medians = {}
    for name in pythons:
        prompt = statistics.median(r["prompt_rate"] for r in results[name])
        generation = statistics.median(r["rate"] for r in results[name])
        medians[name] = (prompt, generation)
        print(f"{name}: median prompt {prompt:.0f} tok/s, generation {generation:.1f} tok/s\n    {results[name][0]['info']}")
    (portable_prompt, portable_gen), (other_prompt, other_gen) = medians.values()
    print(
        f"portable / other: prompt evaluation {portable_prompt / other_prompt:.2f}, generation {portable_gen / other_gen:.2f} "
        f"({args.reps} repetitions, {args.threads} threads, {args.num_predict} tokens)"
    )
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    from aistack.runtime.endpoint import probe

    deadline = time.monotonic() + timeout
    while probe(url, timeout=1.0) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"aistack ollama serve did not come up on {url}")
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
