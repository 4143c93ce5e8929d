"""How the Airflow worker and `aistack run` talk: one JSON object per line.

Worker -> runner, on a pipe of its own (the worker's stdout and stderr are the log file):

    {"event": "migrating"}                                  first use: `airflow db migrate` runs
    {"event": "ready", "dag_id": ..., "airflow": "3.3.2", "warmup": 4.8, "migrated": false}
    {"event": "task", "task": "summarizer", "state": "running", "try": 1, "time": ..., "run_id": ...}
    {"event": "task", ..., "state": "failed" | "up_for_retry", "error": "..."}
    {"event": "finished", "state": "success", "run_id": ..., "tasks": [...], "results": {...},
     "outputs": [...], "rolled_back": [...], "started": ..., "ended": ...}
    {"event": "error", "message": "..."}                    the worker could not do its job

Runner -> worker, on the worker's stdin: one line `{"go": true, "conf": {...}}` starts the run;
end of file (or `{"go": false}`) makes the worker exit without running anything.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import IO, Any


def encode(event: str, **fields: Any) -> str:
    return json.dumps({"event": event, "time": time.time(), **fields}, default=str, ensure_ascii=False) + "\n"


def send(stream: IO[str], event: str, **fields: Any) -> None:
    stream.write(encode(event, **fields))
    stream.flush()


def read(stream: IO[str]) -> Iterator[dict[str, Any]]:
    """Events until end of file; a line that is not an event is skipped."""
    for line in stream:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "event" in item:
            yield item


class EventReader:
    """A worker's events as the runner receives them: read from its stream on a thread of their
    own into `events`, then None once the worker has closed its end (it exited)."""

    def __init__(self) -> None:
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def listen(self, stream: IO[str]) -> threading.Thread:
        def receive() -> None:
            with contextlib.suppress(OSError, ValueError), stream:
                for event in read(stream):
                    self.events.put(event)
            self.events.put(None)

        thread = threading.Thread(target=receive, name="aistack-run-events", daemon=True)
        thread.start()
        return thread

    def next_event(self) -> dict[str, Any] | None:
        """The next event; None once the worker has closed its end."""
        while True:
            try:
                return self.events.get(timeout=0.5)
            except queue.Empty:
                continue  # (a timeout keeps Ctrl-C responsive)
