"""What the aistack A2A layer costs: an aistack agent against a bare a2a-sdk agent, and streaming
through an agent against calling the model directly.

Run by hand (not a test):

    .venv/bin/python bench/a2a_latency.py [--requests 400] [--concurrency 16] [--seconds 3] [--ttft-reps 10]

1. SendMessage latency (p50, p99) and requests/s, JSON-RPC, one keep-alive connection per
   client worker, through:
   - aistack: an OllamaAgent served by aistack.agents with the instant fake model
     (EchoModelBackend) and everything on: bearer authentication, body limit, metrics, input
     checks, the observed task store, idempotency index;
   - bare: an a2a-sdk 1.x agent built from the same route factories and DefaultRequestHandler
     whose executor publishes the same events (Task, WORKING, one artifact, COMPLETED).
   Both run as separate processes (uvicorn, uvloop), so the client does not share their
   interpreter; batches alternate between them so background load hits both alike.
   Target: the aistack agent adds under 5 ms p50.
2. Streaming time to first token, with the bundled SmolLM2-135M in the embedded runtime (its
   own process, one llama.cpp thread): SendStreamingMessage through an aistack agent (first
   artifact chunk) against `ollama.AsyncClient.chat(stream=True)` straight to the runtime
   (first chunk with text). Skipped with --no-model or when llama-cpp-python is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TOKEN = "bench-token"

AGENT = {
    "apiVersion": "ai.stack/v1alpha1",
    "kind": "OllamaAgent",
    "metadata": {"name": "bench-agent"},
    "spec": {
        "modelDefinition": {"name": "bench-model", "version": "1.0.0"},
        "role": "chat",
        "agentCard": {"capabilities": ["chat"], "authentication": {"type": "bearer"}},
        "server": {"streaming": True, "pushNotifications": True},
    },
}
MODEL = {
    "apiVersion": "ai.stack/v1alpha1",
    "kind": "OllamaModelDefinition",
    "metadata": {"name": "bench-model"},
    "spec": {
        "from": "smollm2:135m",
        "build": {"system": "You are a helpful assistant.", "parameters": {"numPredict": 16, "temperature": 0.0, "seed": 1}, "tags": {"version": "1.0.0"}},
    },
}


# -- servers (each in its own process) ---------------------------------------------------------


def _serve(kind: str, ollama_url: str | None) -> None:
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with _server(kind, ollama_url) as url:
        print(f"READY {url}", flush=True)
        while not stop.wait(0.2):
            pass


@contextlib.contextmanager
def _server(kind: str, ollama_url: str | None):
    if kind == "embedded":
        from aistack.runtime.config import RuntimeConfig
        from aistack.runtime.endpoint import embedded_server

        with embedded_server(RuntimeConfig(n_ctx=1024, n_threads=1)) as server:
            yield server.url
        return
    if kind == "bare":
        with _bare_agent() as url:
            yield url
        return
    from aistack.agents.config import ServerOptions
    from aistack.agents.fakes import EchoModelBackend
    from aistack.agents.runner import ollama_backends, serve_agents
    from aistack.agents.tokens import TokenSource
    from aistack.resources import parse_resource

    pair = (parse_resource(AGENT), parse_resource(MODEL))
    backends = (lambda a, d: EchoModelBackend(d.model_name)) if kind == "aistack" else ollama_backends(ollama_url)
    with serve_agents([pair], backends=backends, options=ServerOptions(tokens=TokenSource(value=TOKEN))) as running:
        yield running[0].url


@contextlib.contextmanager
def _bare_agent():
    import socket
    import threading

    import uvicorn
    from a2a.server.agent_execution import AgentExecutor
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
    from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
    from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Part, Task, TaskState, TaskStatus
    from starlette.applications import Starlette

    class Echo(AgentExecutor):
        async def execute(self, context, queue):
            updater = TaskUpdater(queue, context.task_id, context.context_id)
            await queue.enqueue_event(
                Task(id=context.task_id, context_id=context.context_id, status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED), history=[context.message])
            )
            await updater.start_work()
            await updater.add_artifact([Part(text="echo: " + context.get_user_input())], name="output", last_chunk=True)
            await updater.complete()

        async def cancel(self, context, queue):
            await TaskUpdater(queue, context.task_id, context.context_id).cancel()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    card = AgentCard(
        name="bare",
        description="bare a2a-sdk echo agent",
        version="1.0.0",
        supported_interfaces=[AgentInterface(url=url + "/", protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="Echo", description="Echo", tags=["echo"])],
    )
    handler = DefaultRequestHandler(Echo(), InMemoryTaskStore(), card)
    app = Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/"), *create_rest_routes(handler)])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


class Process:
    """A server of kind `kind` in a child process; `url` once it is ready."""

    def __init__(self, kind: str, ollama_url: str | None = None, home: str | None = None):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        if home:
            env["AISTACK_HOME"] = home
        args = [sys.executable, __file__, "--serve", kind] + (["--ollama-url", ollama_url] if ollama_url else [])
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.process.kill()
            raise RuntimeError(f"the {kind} server did not start: {line!r}")
        self.url = line.split()[1]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


# -- measurements ---------------------------------------------------------------------------------


async def _client(url: str, token: str | None):
    import httpx
    from a2a.client import A2ACardResolver, ClientConfig, ClientFactory

    headers = {"A2A-Version": "1.0", **({"Authorization": f"Bearer {token}"} if token else {})}
    http = httpx.AsyncClient(headers=headers, timeout=60, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
    card = await A2ACardResolver(http, url).get_agent_card()
    return http, ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)


def _request(text: str = "hello"):
    from a2a.types import Message, Part, Role, SendMessageRequest

    return SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=[Part(text=text)]))


async def _send(client) -> float:
    started = time.perf_counter()
    async for response in client.send_message(_request()):
        assert response.task.status.state == 3, response  # TASK_STATE_COMPLETED
    return time.perf_counter() - started


async def latency(targets: dict[str, tuple[str, str | None]], requests: int, batch: int = 50) -> dict[str, list[float]]:
    clients = {name: await _client(url, token) for name, (url, token) in targets.items()}
    samples: dict[str, list[float]] = {name: [] for name in targets}
    for _, client in clients.values():
        for _ in range(30):  # warm-up
            await _send(client)
    while any(len(s) < requests for s in samples.values()):
        for name, (_, client) in clients.items():
            for _ in range(min(batch, requests - len(samples[name]))):
                samples[name].append(await _send(client))
    for http, _ in clients.values():
        await http.aclose()
    return samples


async def throughput(url: str, token: str | None, concurrency: int, seconds: float) -> float:
    http, client = await _client(url, token)
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await _send(client)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await http.aclose()
    return done / elapsed


async def ttft(agent_url: str, ollama_url: str, reps: int) -> dict[str, list[float]]:
    import ollama

    http, _ = await _client(agent_url, TOKEN)
    from a2a.client import A2ACardResolver, ClientConfig, ClientFactory

    card = await A2ACardResolver(http, agent_url).get_agent_card()
    streaming = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card)
    direct = ollama.AsyncClient(host=ollama_url)
    prompt = "Name three colours."
    results: dict[str, list[float]] = {"agent": [], "direct": []}

    async def through_agent() -> float | None:
        started = time.perf_counter()
        first = None
        async for event in streaming.send_message(_request(prompt)):
            if first is None and event.HasField("artifact_update") and event.artifact_update.artifact.parts[0].text:
                first = time.perf_counter() - started
        return first

    async def straight() -> float | None:
        started = time.perf_counter()
        first = None
        async for chunk in await direct.chat(model="bench-model:1.0.0", messages=[{"role": "user", "content": prompt}], stream=True):
            if first is None and chunk.message.content:
                first = time.perf_counter() - started
        return first

    for rep in range(reps + 1):
        order = [("agent", through_agent), ("direct", straight)]
        for name, measure in order if rep % 2 else reversed(order):  # alternate who goes first
            value = await measure()
            if rep:  # the first round loads the model
                results[name].append(value)
    await http.aclose()
    return results


def _ms(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000, statistics.fmean(ordered) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="SendMessage calls per agent for latency (default: 400)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients for requests/s (default: 16)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per requests/s run (default: 3)")
    parser.add_argument("--ttft-reps", type=int, default=10, help="streaming repetitions with the model (default: 10)")
    parser.add_argument("--no-model", action="store_true", help="skip the time-to-first-token part")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--ollama-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.ollama_url)
        return 0

    print(f"A2A latency benchmark (python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})")
    aistack, bare = Process("aistack"), Process("bare")
    try:
        samples = asyncio.run(latency({"aistack": (aistack.url, TOKEN), "bare a2a-sdk": (bare.url, None)}, args.requests))
        rates = {"aistack": [], "bare a2a-sdk": []}
        for _ in range(2):
            rates["bare a2a-sdk"].append(asyncio.run(throughput(bare.url, None, args.concurrency, args.seconds)))
            rates["aistack"].append(asyncio.run(throughput(aistack.url, TOKEN, args.concurrency, args.seconds)))
    finally:
        aistack.stop()
        bare.stop()

    print(
        f"\nSendMessage (JSON-RPC, instant model), {args.requests} sequential calls each; "
        f"requests/s with {args.concurrency} concurrent clients, best of 2 x {args.seconds:.0f}s"
    )
    print(f"{'agent':14} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'req/s':>8}")
    figures = {}
    for name in ("bare a2a-sdk", "aistack"):
        p50, p99, mean = _ms(samples[name])
        figures[name] = (p50, p99, mean, max(rates[name]))
        print(f"{name:14} {p50:8.2f} {p99:8.2f} {mean:8.2f} {max(rates[name]):8.0f}")
    (bp50, bp99, _, brps), (ap50, ap99, _, arps) = figures["bare a2a-sdk"], figures["aistack"]
    overhead = ap50 - bp50
    print(f"aistack / bare: p50 x{ap50 / bp50:.2f}, p99 x{ap99 / bp99:.2f}, req/s x{arps / brps:.2f}")
    print(f"added p50 latency: {overhead:+.2f} ms (target < 5 ms: {'met' if overhead < 5 else 'NOT met'})")

    if args.no_model:
        return 0
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        print("\nstreaming TTFT skipped: llama-cpp-python is not installed")
        return 0
    import ollama

    with tempfile.TemporaryDirectory(prefix="a2a-bench-") as home:
        runtime = Process("embedded", home=home)
        agent = None
        try:
            from aistack.models.provision import ensure_models
            from aistack.resources import parse_resource

            ensure_models(ollama.Client(host=runtime.url), [parse_resource(MODEL)], report=lambda _: None)
            agent = Process("aistack-ollama", runtime.url, home=home)
            results = asyncio.run(ttft(agent.url, runtime.url, args.ttft_reps))
        finally:
            if agent is not None:
                agent.stop()
            runtime.stop()
    print(f"\nStreaming time to first token, smollm2:135m in the embedded runtime (1 thread), {args.ttft_reps} reps")
    print(f"{'path':30} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, label in (("direct", "ollama client -> runtime"), ("agent", "A2A stream -> agent -> runtime")):
        p50, p99, mean = _ms(results[name])
        print(f"{label:30} {p50:8.2f} {p99:8.2f} {mean:8.2f}")
    d50, a50 = _ms(results["direct"])[0], _ms(results["agent"])[0]
    print(f"agent / direct: p50 x{a50 / d50:.2f} ({a50 - d50:+.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
