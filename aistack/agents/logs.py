"""Structured logs for agents: every task's lines carry the agent, task and context ids.

A pipeline run spans Airflow, several agents and Ollama; the A2A task and context ids are what
ties their logs together, so they are fields of the record (not words in the message). With
`configure(fmt="json")` each line is one JSON object (what log collectors in a cluster want);
the text format appends the same fields as key=value. Secrets are never passed to loggers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

FIELDS = ("agent", "task_id", "context_id", "operation", "transport", "outcome", "model", "tokens", "duration_ms", "state")


def task_logger(logger: logging.Logger, **fields: Any) -> logging.LoggerAdapter:
    """A logger whose records carry `fields` (e.g. agent, task_id, context_id)."""
    return _FieldsAdapter(logger, {k: v for k, v in fields.items() if v is not None})


class _FieldsAdapter(logging.LoggerAdapter):
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in FIELDS if getattr(record, name, None) is not None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return line


def configure(level: str | int = "INFO", fmt: str = "text", overrides: Mapping[str, str | int] | None = None) -> None:
    """Log to stderr in `fmt` (text or json) at `level`; quiet the SDK's per-request chatter."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, value in {"a2a": "WARNING", "httpx": "WARNING", "uvicorn.access": "WARNING", **(overrides or {})}.items():
        logging.getLogger(name).setLevel(value)
