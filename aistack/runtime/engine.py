"""Loaded llama.cpp models, on OLLAMA_NUM_PARALLEL slots (default 1, as in Ollama).

A slot is one model thread with its own llama.cpp instances: one per base GGUF, shared by every
model built on that base (models on one base differ only in system prompt, template,
parameters and messages). A request runs on a free slot, preferring one that has its base loaded
already, so one request at a time always lands on the same warm instance and a second slot only
loads a base when requests for it overlap. Loading, generation and unloading of an instance run
on its slot in turn, so parallel clients wait for a slot instead of crashing llama.cpp.

The slots split the llama.cpp threads (AISTACK_OLLAMA_THREADS, default 2) between them, never
more in all: llama.cpp's CPU backend runs an OpenMP thread team per calling thread, and two
teams of 2 threads taking turns on 2 cores measured 82 -> 30 tokens/s. Giving a request that
runs alone every thread and splitting them again while others run (llama_set_n_threads between
tokens) was tried and measured slower than keeping one thread per slot (58-93 against 102-108
tokens/s alone, on 2 cores). What the slots change is in bench/runtime_slots.py: a short request
no longer waits behind a long one, and overlapping requests make more tokens per second in all;
a request alone decodes with its slot's share of the threads.

What a real Ollama does with OLLAMA_NUM_PARALLEL differs in one way: its runner keeps one
instance with num_ctx x N of KV cache and decodes the N sequences in one batch, so one read of
the weights serves every slot. Here each slot is its own llama.cpp context over the same
memory-mapped GGUF: the weights are in memory once (the page cache), each slot adds its own KV
cache and compute buffers. A second slot loads a base only when the memory the machine has
available covers that cost (`instance_bytes`); otherwise the request waits for the slot that has
it loaded.

`keep_alive` follows Ollama: after a request the instance stays loaded for that long (default
5 minutes, OLLAMA_KEEP_ALIVE overrides), forever when negative, and is unloaded right after the
request when 0. Embeddings use a second instance of the same GGUF opened in llama.cpp's
embedding mode. The event loop never blocks on the model; it receives events through an asyncio
queue, and when the consumer goes away (client disconnect) a cancel flag stops the generation
after the current token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aistack import settings
from aistack.runtime import gguf
from aistack.runtime.options import DEFAULT_KEEP_ALIVE, parse_keep_alive

log = logging.getLogger("aistack.runtime")

DEFAULT_THREADS = 2
DEFAULT_CONTEXT = 8192
EMBEDDING_CONTEXT = 2048
MEMORY_MARGIN = 256 * 1024 * 1024
"""Left free when a further slot loads a base: the runtime's own growth, the page cache's share."""

Work = Callable[[Any, int, threading.Event], Iterator[Any]]
Key = tuple[str, bool]  # (GGUF path, embedding mode)

_END = object()

_LOADING = threading.Lock()
"""Taken around every llama.cpp load: with verbose=False, llama-cpp-python points the process's
stdout and stderr at /dev/null while it loads and back afterwards, so two slots loading at once
restored each other's /dev/null and silenced the runtime's log for good (seen here). What other
threads print during a load still goes to /dev/null: llama-cpp-python's redirection is process-wide."""


@dataclass(frozen=True)
class LoadedModel:
    """One row of /api/ps."""

    name: str
    digest: str
    path: Path
    size: int
    expires_at: datetime | None
    context_length: int


def instance_bytes(info: gguf.GGUFInfo, n_ctx: int) -> int:
    """What one more llama.cpp context over an already mapped GGUF costs, estimated from its
    metadata: the f16 KV cache of n_ctx tokens plus the compute buffers of a 512-token batch (at
    least 32 MiB). The weights are not counted: every context maps the same file. Measured for
    SmolLM2-135M at 8192 tokens: 202 MiB more per further slot, estimated 212 MiB. Without the
    metadata, the size of the file (as if nothing were shared)."""
    arch, meta = info.architecture, info.metadata
    try:
        layers = int(meta[f"{arch}.block_count"])
        embedding = int(meta[f"{arch}.embedding_length"])
        heads = int(meta[f"{arch}.attention.head_count"])
        kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads))
        head_dim = int(meta.get(f"{arch}.attention.key_length", embedding // heads))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return info.size
    kv_cache = 2 * n_ctx * layers * kv_heads * head_dim * 2
    compute = max(32 * 1024 * 1024, 512 * 16 * embedding * 4)
    return kv_cache + compute


def available_memory() -> int | None:
    """Bytes the machine can still give without swapping (Linux's MemAvailable); None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


class Slot:
    """One model thread's share of the engine: its instances and the lock its jobs hold."""

    def __init__(self, index: int, n_threads: int):
        self.index = index
        self.n_threads = n_threads
        self.lock = threading.Lock()  # held by a job, an unload or an expiry using the instances
        self.busy = False  # taken by a job (guarded by the engine's lock)
        self.instances: dict[Key, Instance] = {}

    def loaded(self, key: Key) -> bool:
        instance = self.instances.get(key)
        return instance is not None and instance.llm is not None


class Instance:
    def __init__(self, path: Path, embedding: bool, n_ctx: int, slot: Slot):
        self.path = path
        self.embedding = embedding
        self.n_ctx = n_ctx
        self.slot = slot
        self.llm: Any = None
        self.expires_at: float | None = None  # time.monotonic(); None = never
        self.expires_wall: datetime | None = None
        self.models: dict[str, str] = {}  # model name -> digest, used since the load
        self._uses = 0
        self._timer: threading.Timer | None = None

    # Everything below runs with the slot's lock held.

    def ensure_loaded(self) -> int:
        """Load if needed; the load time in nanoseconds (0 when it was loaded already)."""
        if self.llm is not None:
            return 0
        import llama_cpp

        started = time.perf_counter_ns()
        kwargs: dict[str, Any] = {}
        if self.embedding:
            kwargs = {
                "embedding": True,
                "pooling_type": llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                "n_batch": self.n_ctx,
                "n_ubatch": self.n_ctx,
            }
        n_threads = self.slot.n_threads
        with _LOADING:  # and logged inside it, or another slot's load could send the line to /dev/null
            self.llm = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                verbose=False,
                **kwargs,
            )
            elapsed = time.perf_counter_ns() - started
            log.info(
                "loaded %s%s on slot %d in %.2fs (n_ctx=%d, n_threads=%d)",
                self.path.name,
                " for embeddings" if self.embedding else "",
                self.slot.index,
                elapsed / 1e9,
                self.n_ctx,
                n_threads,
            )
        return elapsed

    def unload(self) -> None:
        if self.llm is None:
            return
        with contextlib.suppress(Exception):
            self.llm.close()
        self.llm = None
        self.models.clear()
        self.expires_at = self.expires_wall = None
        log.info("unloaded %s%s from slot %d", self.path.name, " (embeddings)" if self.embedding else "", self.slot.index)

    def after_use(self, keep_alive: float) -> None:
        self._uses += 1
        self.cancel_timer()
        if keep_alive == 0:
            self.unload()
            return
        if keep_alive < 0:
            self.expires_at = self.expires_wall = None
            return
        self.expires_at = time.monotonic() + keep_alive
        self.expires_wall = datetime.now(UTC) + timedelta(seconds=keep_alive)
        self._timer = threading.Timer(keep_alive, self._expire, args=(self._uses,))
        self._timer.daemon = True
        self._timer.start()

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, uses: int) -> None:
        """On the timer's thread: unload unless a request came since (it waits for a running job)."""
        with self.slot.lock:
            if uses == self._uses and self.expires_at is not None and time.monotonic() >= self.expires_at:
                self.unload()

    def locked_unload(self) -> None:
        self.cancel_timer()
        with self.slot.lock:
            self.unload()


class Engine:
    def __init__(
        self,
        n_threads: int | None = None,
        n_ctx: int | None = None,
        default_keep_alive: float | None = None,
        num_parallel: int = 1,
        memory: Callable[[], int | None] = available_memory,
    ):
        self.n_threads = n_threads or settings.ollama_threads(DEFAULT_THREADS)
        self.n_ctx = n_ctx
        if default_keep_alive is None:
            default_keep_alive = parse_keep_alive(os.environ.get("OLLAMA_KEEP_ALIVE"), DEFAULT_KEEP_ALIVE)
        self.default_keep_alive = default_keep_alive
        if num_parallel < 1:
            raise ValueError(f"num_parallel must be at least 1, not {num_parallel}")
        self.num_parallel = num_parallel
        share, extra = divmod(self.n_threads, num_parallel)
        self._slots = [Slot(i, max(1, share + (1 if i < extra else 0))) for i in range(num_parallel)]
        self._memory = memory
        self._contexts: dict[Key, int] = {}
        self._executor = ThreadPoolExecutor(max_workers=num_parallel, thread_name_prefix="aistack-llama")
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._cancels: set[threading.Event] = set()
        self._closed = False

    def _context(self, key: Key) -> int:
        """n_ctx of the base's instances; called with the engine's lock held."""
        n_ctx = self._contexts.get(key)
        if n_ctx is None:
            path, embedding = key
            if embedding:
                n_ctx = EMBEDDING_CONTEXT
            else:
                trained = gguf.read_info(path).context_length or DEFAULT_CONTEXT
                n_ctx = self.n_ctx or min(DEFAULT_CONTEXT, trained)
            self._contexts[key] = n_ctx
        return n_ctx

    def _room_for_another(self, key: Key) -> bool:
        """Whether a further slot may load this base: the machine has its cost to spare."""
        available = self._memory()
        if available is None:
            return True
        need = instance_bytes(gguf.read_info(key[0]), self._context(key))
        return available >= need + MEMORY_MARGIN

    def _take_slot(self, key: Key, cancel: threading.Event) -> tuple[Slot, Instance] | None:
        """Wait for a slot for this base (None when cancelled or closed); mark it busy."""
        with self._freed:
            while True:
                if cancel.is_set() or self._closed:
                    return None
                free = [slot for slot in self._slots if not slot.busy]
                warm = [slot for slot in free if slot.loaded(key)]
                chosen: Slot | None = warm[0] if warm else None
                if chosen is None and free:
                    elsewhere = any(slot.loaded(key) for slot in self._slots)
                    if not elsewhere or self._room_for_another(key):
                        chosen = min(free, key=lambda slot: sum(i.llm is not None for i in slot.instances.values()))
                if chosen is not None:
                    chosen.busy = True
                    instance = chosen.instances.get(key)
                    if instance is None:
                        instance = Instance(Path(key[0]), key[1], self._context(key), chosen)
                        chosen.instances[key] = instance
                    return chosen, instance
                self._freed.wait(timeout=1.0)  # cancel is checked again at least every second

    def _release(self, slot: Slot) -> None:
        with self._freed:
            slot.busy = False
            self._freed.notify_all()

    async def run(
        self,
        path: Path,
        work: Work,
        *,
        keep_alive: float,
        model: tuple[str, str] | None = None,
        embedding: bool = False,
    ) -> AsyncGenerator[Any, None]:
        """Run `work(llm, load_duration_ns, cancel)` on a slot; yield its events.

        Exceptions raised by `work` are re-raised here. Closing this iterator early (the
        client disconnected) sets `cancel`; a job still waiting for a slot then never starts.
        """
        key: Key = (str(path), embedding)
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine is shut down")
            self._context(key)  # a GGUF that cannot be read fails here, not on the model thread
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def job() -> None:
            taken = None
            try:
                taken = self._take_slot(key, cancel)
                if taken is None:
                    return
                slot, instance = taken
                with slot.lock:
                    try:
                        if cancel.is_set():
                            return
                        load_ns = instance.ensure_loaded()
                        if model is not None:
                            instance.models[model[0]] = model[1]
                        for event in work(instance.llm, load_ns, cancel):
                            put(event)
                            if cancel.is_set():
                                break
                    finally:
                        instance.after_use(keep_alive)
            except BaseException as e:  # handed to the consumer
                put(e)
            finally:
                if taken is not None:
                    self._release(taken[0])
                put(_END)

        self._cancels.add(cancel)
        try:
            self._executor.submit(job)
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()
            self._cancels.discard(cancel)

    def keep_alive(self, value: Any) -> float:
        return parse_keep_alive(value, self.default_keep_alive)

    def _instances(self, key: Key | None = None) -> list[Instance]:
        with self._lock:
            return [instance for slot in self._slots for k, instance in slot.instances.items() if key is None or k == key]

    async def unload(self, path: Path) -> bool:
        """Unload the base's instances on every slot now (a request with keep_alive 0 and nothing
        to do); each waits for its slot's running request."""
        found = False
        for embedding in (False, True):
            for instance in self._instances((str(path), embedding)):
                if instance.llm is not None:
                    found = True
                    await asyncio.to_thread(instance.locked_unload)
        return found

    def forget(self, name: str) -> None:
        """Drop a deleted model from /api/ps (its base stays loaded for the other models)."""
        for instance in self._instances():
            instance.models.pop(name, None)

    def loaded(self) -> list[LoadedModel]:
        """One row per model, however many slots have its base loaded; it expires with the last."""
        rows: dict[str, LoadedModel] = {}
        for instance in self._instances():
            if instance.llm is None:
                continue
            size = instance.path.stat().st_size
            for name, digest in list(instance.models.items()):
                row = LoadedModel(name, digest, instance.path, size, instance.expires_wall, instance.n_ctx)
                earlier = rows.get(name)
                if earlier is not None and (earlier.expires_at is None or (row.expires_at is not None and row.expires_at < earlier.expires_at)):
                    continue
                rows[name] = row
        return list(rows.values())

    def close(self) -> None:
        with self._freed:
            self._closed = True
            self._freed.notify_all()
        for cancel in list(self._cancels):
            cancel.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        for instance in self._instances():
            instance.locked_unload()
