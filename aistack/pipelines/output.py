"""What a pipeline run publishes: its step results in every declared format, under run-specific keys.

Keys are `<prefix><namespace>/<name>/<run>/result.<ext>`, so runs never overwrite each other
and a rollback removes exactly one run's objects. Every object is written whole (a local file
is renamed into place; an S3 object is one PUT).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from aistack.agents.client import artifact_body
from aistack.agents.usage import describe, run_totals, status_usage
from aistack.files import write_atomic
from aistack.pipelines.plan import PipelinePlan
from aistack.resources.types import MediaType

COMPLETED = "TASK_STATE_COMPLETED"
EXTENSIONS = {MediaType.JSON: "json", MediaType.MARKDOWN: "md", MediaType.TEXT: "txt"}


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> str: ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is none."""
        ...

    def delete(self, key: str) -> None: ...


class UnsafeKey(ValueError):
    """A key that would leave the output root: refused before anything is written or removed."""


class LocalStorage:
    """A directory; the location returned is the file's path. Keys are checked to stay inside it,
    symbolic links included."""

    def __init__(self, root: Path, within: Path | None = None) -> None:
        self.root = root
        self.within = within or root

    def put(self, key: str, data: bytes, content_type: str) -> str:
        return str(write_atomic(self._inside(key), data))

    def get(self, key: str) -> bytes | None:
        path = self._inside(key)
        return path.read_bytes() if path.is_file() else None

    def delete(self, key: str) -> None:
        self._inside(key).unlink(missing_ok=True)

    def _inside(self, key: str) -> Path:
        within = self.within.resolve()
        path = (self.root / checked_key(key)).resolve()
        if not path.is_relative_to(within):
            raise UnsafeKey(f"{key!r} resolves to {path}, outside the output directory {within}")
        return path


def checked_key(key: str) -> str:
    """`key` when it is a relative key of plain parts (no '', '.' or '..' parts, no leading '/';
    a trailing '/' names a folder);
    every store uses it, so an S3 key is held to the same rule as a file path."""
    parts = (key[:-1] if key.endswith("/") else key).split("/")
    if key.startswith("/") or "\\" in key or "\0" in key or any(p in ("", ".", "..") for p in parts):
        raise UnsafeKey(f"refusing the object key {key!r}: it must be relative, without '.', '..' or empty parts")
    return key


def run_folder(plan: PipelinePlan, run_id: str) -> str:
    """`<prefix><namespace>/<name>/<run>/`, the run id in safe characters (a leading dot too is
    replaced, so an id of `..` cannot name a parent folder)."""
    safe_run = re.sub(r"^\.|[^A-Za-z0-9._-]", "-", run_id) or "-"
    return checked_key(f"{plan.prefix}{plan.namespace}/{plan.name}/{safe_run}/")


def render(plan: PipelinePlan, run_id: str, results: Mapping[str, Mapping[str, Any] | None], media: MediaType) -> bytes:
    """One document with every step: its state and artifacts (steps that did not complete say so)."""
    steps = {step.task_id: _step_document(results.get(step.task_id)) for step in plan.steps}
    if media is MediaType.JSON:
        usage = run_totals((result or {}).get("usage") for result in results.values())
        document = {"orchestration": f"{plan.namespace}/{plan.name}", "runId": run_id, "usage": usage, "steps": steps}
        return json.dumps(document, indent=2, ensure_ascii=False).encode()
    lines = [f"# {plan.name}", "", f"Run `{run_id}` of TaskOrchestration `{plan.namespace}/{plan.name}`.", ""]
    for name, step in steps.items():
        lines += [f"## {name} ({step['state']})", ""]
        if step.get("usage"):
            lines += [f"_{describe(step['usage']).removeprefix('usage: ')}_", ""]
        for artifact in step["artifacts"]:
            body = artifact_body(artifact)
            fence = "```json" if "data" in artifact else "```"
            lines += [
                f"### {artifact['name']} ({artifact['mediaType']})",
                "",
                fence if media is MediaType.MARKDOWN else "",
                str(body),
                "```" if media is MediaType.MARKDOWN else "",
                "",
            ]
    return "\n".join(lines).encode()


def _step_document(result: Mapping[str, Any] | None) -> dict[str, Any]:
    """A step in the published results: its state and artifacts; a forEach step's items too."""
    completed = result is not None and bool(result) and result.get("state", COMPLETED) == COMPLETED
    document: dict[str, Any] = {"state": "completed" if completed else "not completed", "artifacts": (result or {}).get("artifacts", [])}
    if result and "items" in result:
        document["items"] = result["items"]
    if result and "cached" in result:
        document["cached"] = result["cached"]
    if result and result.get("usage"):
        document["usage"] = status_usage(result["usage"])
    return document


def publish(plan: PipelinePlan, run_id: str, results: Mapping[str, Mapping[str, Any] | None], storage: Storage) -> list[str]:
    folder = run_folder(plan, run_id)
    return [storage.put(f"{folder}result.{EXTENSIONS[media]}", render(plan, run_id, results, media), media.value) for media in plan.output_formats]


def published_keys(plan: PipelinePlan, run_id: str) -> list[str]:
    folder = run_folder(plan, run_id)
    return [f"{folder}result.{EXTENSIONS[media]}" for media in plan.output_formats]
