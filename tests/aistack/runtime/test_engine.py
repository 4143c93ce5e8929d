"""The engine's slots (OLLAMA_NUM_PARALLEL), on the bundled GGUF loaded by llama.cpp in this process,
and once through a server with two slots.

Each test's `work` blocks on events the other request sets, so what can run at once is seen from
the requests themselves, not from timings: with one slot such a pair could never meet.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import ollama
import pytest

from aistack.runtime import gguf
from aistack.runtime.basemodels import resolve_base
from aistack.runtime.config import NUM_PARALLEL_ENV, RuntimeConfig
from aistack.runtime.endpoint import embedded_server
from aistack.runtime.engine import Engine, available_memory, instance_bytes
from tests.aistack.runtime.support import FAST

WAIT = 60  # seconds a request waits for the other one before the test fails


@pytest.fixture(scope="module")
def gguf_path():
    base = resolve_base("smollm2:135m")
    assert base is not None
    return base.path


def generating(started: threading.Event | None = None, proceed: threading.Event | None = None, tokens: int = 4):
    """Work that says it started, waits for `proceed`, then really generates and yields its text."""

    def work(llm: Any, load_ns: int, cancel: threading.Event) -> Iterator[str]:
        if started is not None:
            started.set()
        if proceed is not None and not proceed.wait(WAIT):
            raise TimeoutError("the other request never came")
        out = llm.create_completion("The capital of France is", max_tokens=tokens, temperature=0)
        yield out["choices"][0]["text"]

    return work


async def collect(engine: Engine, path, work, name: str = "smollm2:135m") -> list[str]:
    return [event async for event in engine.run(path, work, keep_alive=-1, model=(name, "sha256:x"))]


def loads(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("loaded ")]


def test_two_slots_serve_two_requests_at_once(gguf_path, caplog):
    caplog.set_level(logging.INFO, logger="aistack.runtime")
    engine = Engine(num_parallel=2, n_threads=2, n_ctx=512, memory=lambda: 1 << 40)
    first_started, second_started = threading.Event(), threading.Event()

    async def both():
        # each waits until the other has started: possible only if both hold a slot at once
        return await asyncio.gather(
            collect(engine, gguf_path, generating(first_started, second_started)),
            collect(engine, gguf_path, generating(second_started, first_started), name="other:latest"),
        )

    try:
        first, second = asyncio.run(both())
        assert first == second and first[0].strip(), "both slots generate the same greedy answer"
        assert sorted(m.rsplit(" in ", 1)[0] for m in loads(caplog)) == [
            "loaded SmolLM2-135M-Instruct.Q4_1.gguf on slot 0",
            "loaded SmolLM2-135M-Instruct.Q4_1.gguf on slot 1",
        ]
        assert all("n_threads=1" in m for m in loads(caplog)), "the slots split the 2 threads"
        rows = engine.loaded()
        assert sorted(r.name for r in rows) == ["other:latest", "smollm2:135m"], "one /api/ps row per model"
    finally:
        engine.close()


def test_requests_one_after_another_stay_on_the_warm_slot(gguf_path, caplog):
    caplog.set_level(logging.INFO, logger="aistack.runtime")
    engine = Engine(num_parallel=2, n_threads=2, n_ctx=512, memory=lambda: 1 << 40)
    try:
        for _ in range(3):
            asyncio.run(collect(engine, gguf_path, generating()))
        assert len(loads(caplog)) == 1 and "on slot 0" in loads(caplog)[0]
    finally:
        engine.close()


def test_without_memory_for_another_copy_the_second_request_waits_for_the_loaded_slot(gguf_path, caplog):
    caplog.set_level(logging.INFO, logger="aistack.runtime")
    engine = Engine(num_parallel=2, n_threads=2, n_ctx=512, memory=lambda: 0)
    first_started, release_first = threading.Event(), threading.Event()
    order: list[str] = []

    def second_work(llm: Any, load_ns: int, cancel: threading.Event) -> Iterator[str]:
        order.append("second")
        yield from generating()(llm, load_ns, cancel)

    async def scenario():
        first = asyncio.create_task(collect(engine, gguf_path, generating(first_started, release_first)))
        await asyncio.to_thread(first_started.wait, WAIT)
        second = asyncio.create_task(collect(engine, gguf_path, second_work))
        await asyncio.sleep(1.5)  # the free slot 1 could have taken it by now, had memory allowed
        order.append("first released")
        release_first.set()
        return await first, await second

    try:
        first, second = asyncio.run(scenario())
        assert order == ["first released", "second"]
        assert first == second
        assert len(loads(caplog)) == 1, "no second copy of the base was loaded"
    finally:
        engine.close()


def test_a_request_closed_while_waiting_for_a_slot_never_runs(gguf_path):
    engine = Engine(num_parallel=1, n_ctx=512)
    first_started, release_first = threading.Event(), threading.Event()
    ran: list[str] = []

    def never(llm: Any, load_ns: int, cancel: threading.Event) -> Iterator[str]:
        ran.append("waiting request")
        yield "x"

    async def scenario():
        first = asyncio.create_task(collect(engine, gguf_path, generating(first_started, release_first)))
        await asyncio.to_thread(first_started.wait, WAIT)
        waiting = engine.run(gguf_path, never, keep_alive=-1)
        pending = asyncio.create_task(anext(waiting))
        await asyncio.sleep(0.2)
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pending
        await waiting.aclose()  # the client went away
        release_first.set()
        return await first

    try:
        assert asyncio.run(scenario())[0].strip()
        engine.close()
        assert ran == []
    finally:
        engine.close()


def test_the_estimate_of_another_slot_covers_its_cache_and_not_the_weights(gguf_path):
    info = gguf.read_info(gguf_path)
    kv_cache = 2 * 8192 * 30 * 3 * 64 * 2  # SmolLM2-135M: 30 layers, 3 KV heads of 64, f16 K and V
    assert kv_cache < instance_bytes(info, 8192) < kv_cache + info.size, "the cache, not another copy of the weights"
    assert instance_bytes(info, 512) < info.size
    assert (available_memory() or 0) > 0


def test_the_number_of_slots_comes_from_ollama_num_parallel(monkeypatch):
    monkeypatch.delenv(NUM_PARALLEL_ENV, raising=False)
    assert RuntimeConfig().parallel_slots() == 1
    monkeypatch.setenv(NUM_PARALLEL_ENV, "3")
    assert RuntimeConfig().parallel_slots() == 3
    assert RuntimeConfig(num_parallel=2).parallel_slots() == 2
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(NUM_PARALLEL_ENV, bad)
        with pytest.raises(ValueError, match=f"OLLAMA_NUM_PARALLEL='{bad}': write a positive number of requests"):
            RuntimeConfig().parallel_slots()
    with pytest.raises(ValueError, match="--parallel=0"):
        RuntimeConfig(num_parallel=0).parallel_slots()


def test_a_server_with_two_slots_answers_overlapping_chats_and_unloads_both(tmp_path):
    config = RuntimeConfig(store=tmp_path / "ollama", substitutions={}, num_parallel=2)
    log_path = tmp_path / "runtime.log"
    with embedded_server(config, log_path=log_path) as server:
        client = ollama.Client(host=server.url, timeout=120)

        def chat(i: int):
            return client.chat(model="smollm2", messages=[{"role": "user", "content": f"What is {i} + {i}?"}], options=FAST)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(chat, range(4)))
        assert all(a.done and a.message.content.strip() for a in answers)
        text = log_path.read_text()
        assert "on slot 0" in text and "on slot 1" in text, "the overlapping chats used both slots"
        assert [m.model for m in client.ps().models] == ["smollm2:135m"]
        assert client.chat(model="smollm2", messages=[], keep_alive=0).done_reason == "unload"
        assert client.ps().models == []
        assert log_path.read_text().count("unloaded SmolLM2") == 2
