"""Loaded llama.cpp models: one instance per base GGUF, shared by every model built on it.

Models built on one base differ only in system prompt, template, parameters and messages,
so they share one `Llama`. All llama.cpp work of the engine runs on one worker thread, which
is the request queue: loading, generation and unloading run there in arrival order, so
parallel clients wait their turn instead of crashing llama.cpp. One thread for every
instance, not one each: llama.cpp's CPU backend uses an OpenMP thread team per calling
thread, and two teams taking turns on the same cores measured 82 -> 30 tokens/s on the
2-core reference machine. The event loop never blocks on the model; it receives events
through an asyncio queue, and when the consumer goes away (client disconnect) a cancel flag
stops the generation after the current token.

`keep_alive` follows Ollama: after a request the instance stays loaded for that long
(default 5 minutes, OLLAMA_KEEP_ALIVE overrides), forever when negative, and is unloaded
right after the request when 0. Embeddings use a second instance of the same GGUF opened in
llama.cpp's embedding mode.
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

Work = Callable[[Any, int, threading.Event], Iterator[Any]]

_END = object()


@dataclass(frozen=True)
class LoadedModel:
    """One row of /api/ps."""

    name: str
    digest: str
    path: Path
    size: int
    expires_at: datetime | None
    context_length: int


class Instance:
    def __init__(self, path: Path, embedding: bool, n_threads: int, n_ctx: int, executor: ThreadPoolExecutor):
        self.path = path
        self.embedding = embedding
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.llm: Any = None
        self.executor = executor  # the engine's single model thread
        self.expires_at: float | None = None  # time.monotonic(); None = never
        self.expires_wall: datetime | None = None
        self.models: dict[str, str] = {}  # model name -> digest, used since the load
        self._uses = 0
        self._timer: threading.Timer | None = None
        self.chat_tokens: tuple[str, str] | None = None

    # Everything below runs on the engine's model thread.

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
        self.llm = llama_cpp.Llama(
            model_path=str(self.path),
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            verbose=False,
            **kwargs,
        )
        elapsed = time.perf_counter_ns() - started
        log.info(
            "loaded %s%s in %.2fs (n_ctx=%d, n_threads=%d)", self.path.name, " for embeddings" if self.embedding else "", elapsed / 1e9, self.n_ctx, self.n_threads
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
        self.chat_tokens = None
        log.info("unloaded %s%s", self.path.name, " (embeddings)" if self.embedding else "")

    def after_use(self, keep_alive: float) -> None:
        self._uses += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if keep_alive == 0:
            self.unload()
            return
        if keep_alive < 0:
            self.expires_at = self.expires_wall = None
            return
        self.expires_at = time.monotonic() + keep_alive
        self.expires_wall = datetime.now(UTC) + timedelta(seconds=keep_alive)
        uses = self._uses
        self._timer = threading.Timer(keep_alive, self._expire, args=(uses,))
        self._timer.daemon = True
        self._timer.start()

    def _expire(self, uses: int) -> None:
        def check() -> None:
            if uses == self._uses and self.expires_at is not None and time.monotonic() >= self.expires_at:
                self.unload()

        with contextlib.suppress(RuntimeError):  # executor shut down
            self.executor.submit(check)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with contextlib.suppress(RuntimeError):
            self.executor.submit(self.unload)


class Engine:
    def __init__(
        self,
        n_threads: int | None = None,
        n_ctx: int | None = None,
        default_keep_alive: float | None = None,
    ):
        self.n_threads = n_threads or settings.ollama_threads(DEFAULT_THREADS)
        self.n_ctx = n_ctx
        if default_keep_alive is None:
            default_keep_alive = parse_keep_alive(os.environ.get("OLLAMA_KEEP_ALIVE"), DEFAULT_KEEP_ALIVE)
        self.default_keep_alive = default_keep_alive
        self._instances: dict[tuple[str, bool], Instance] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aistack-llama")
        self._lock = threading.Lock()
        self._cancels: set[threading.Event] = set()
        self._closed = False

    def _instance(self, path: Path, embedding: bool) -> Instance:
        key = (str(path), embedding)
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine is shut down")
            instance = self._instances.get(key)
            if instance is None:
                if embedding:
                    n_ctx = EMBEDDING_CONTEXT
                else:
                    trained = gguf.read_info(path).context_length or DEFAULT_CONTEXT
                    n_ctx = self.n_ctx or min(DEFAULT_CONTEXT, trained)
                instance = Instance(path, embedding, self.n_threads, n_ctx, self._executor)
                self._instances[key] = instance
            return instance

    async def run(
        self,
        path: Path,
        work: Work,
        *,
        keep_alive: float,
        model: tuple[str, str] | None = None,
        embedding: bool = False,
    ) -> AsyncGenerator[Any, None]:
        """Run `work(llm, load_duration_ns, cancel)` on the model thread; yield its events.

        Exceptions raised by `work` are re-raised here. Closing this iterator early (the
        client disconnected) sets `cancel`; a job still waiting in the queue then never starts.
        """
        instance = self._instance(path, embedding)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def job() -> None:
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
            except BaseException as e:  # handed to the consumer
                put(e)
            finally:
                try:
                    instance.after_use(keep_alive)
                finally:
                    put(_END)

        self._cancels.add(cancel)
        try:
            instance.executor.submit(job)
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

    async def unload(self, path: Path) -> bool:
        """Unload the base's instances now (a request with keep_alive 0 and nothing to do)."""
        found = False
        for embedding in (False, True):
            instance = self._instances.get((str(path), embedding))
            if instance is not None and instance.llm is not None:
                found = True
                await asyncio.wrap_future(instance.executor.submit(instance.unload))
        return found

    def forget(self, name: str) -> None:
        """Drop a deleted model from /api/ps (its base stays loaded for the other models)."""
        for instance in list(self._instances.values()):
            instance.models.pop(name, None)

    def loaded(self) -> list[LoadedModel]:
        rows = []
        for instance in list(self._instances.values()):
            if instance.llm is None:
                continue
            size = instance.path.stat().st_size
            for name, digest in list(instance.models.items()):
                rows.append(LoadedModel(name, digest, instance.path, size, instance.expires_wall, instance.n_ctx))
        return rows

    def close(self) -> None:
        with self._lock:
            self._closed = True
            instances = list(self._instances.values())
        for cancel in list(self._cancels):
            cancel.set()
        for instance in instances:
            instance.close()
        self._executor.shutdown(wait=True, cancel_futures=True)
