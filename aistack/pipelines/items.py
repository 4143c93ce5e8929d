"""A forEach step's items: where they come from, how they are labelled, and how their results gather.

The items are computed when the run gets there (a task before the mapped step), never when the
DAG is parsed, so 1,000 items make one mapped task in the DAG and 1,000 task instances in the
run. An item is a small JSON object, `{"index", "label"}` plus its content: `text` or `data`
for items from the input or an artifact, `key` for an object of a storage listing (read by the
item's own task, so the list stays small in XCom).

Every walk is bounded: splitting is linear, a path into an artifact has at most 32 parts,
items beyond `maxItems` fail the listing before any item runs, and a label is one short line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from aistack.agents.usage import run_totals, status_usage
from aistack.documents.chunking import chunk_text
from aistack.documents.cleaning import DocumentError
from aistack.documents.selection import Window, select_documents
from aistack.documents.storage import DocumentRef
from aistack.resources.orchestration import ForEach, ItemsFromInput, ItemSplit, ItemWindow
from aistack.resources.types import MediaType

MAX_LABEL = 60
MAX_PATH_PARTS = 32
_PATH_PART = re.compile(r"([A-Za-z0-9_-]+)|\[([0-9]+)\]")


class ItemsError(ValueError):
    """The items cannot be listed: the message says which field and what to do."""


def label_of(value: Any) -> str:
    """A short, one-line label: the first line of a text, a title-like field of an object."""
    if isinstance(value, Mapping):
        for field in ("label", "name", "title", "id", "key"):
            if isinstance(value.get(field), (str, int)) and not isinstance(value.get(field), bool):
                return label_of(str(value[field]))
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    elif not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    line = next((line.strip() for line in value.splitlines() if line.strip()), "")
    return line if len(line) <= MAX_LABEL else line[: MAX_LABEL - 3] + "..."


def _item(index: int, value: Any) -> dict[str, Any]:
    content = {"text": value} if isinstance(value, str) else {"data": value}
    return {"index": index, "label": label_of(value), **content}


def split_input(text: str, rule: ItemsFromInput) -> list[Any]:
    """The run's input as a list, by the declared rule."""
    if rule.split is ItemSplit.JSON:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ItemsError(f"forEach.fromInput: the run's input is not JSON ({exc}): pass a JSON array, or set split to lines, paragraphs or separator") from None
        if not isinstance(value, list):
            raise ItemsError(f"forEach.fromInput: the run's input is a JSON {type(value).__name__}, not an array: pass a JSON array of items")
        return value
    if rule.split is ItemSplit.LINES:
        pieces = text.splitlines()
    elif rule.split is ItemSplit.PARAGRAPHS:
        pieces = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n"))
    else:
        assert rule.separator is not None
        pieces = text.split(rule.separator)
    return [piece.strip() for piece in pieces if piece.strip()]


def parse_path(path: str) -> list[str | int]:
    """`documents`, `result.items[0]`: object fields and list indexes, at most MAX_PATH_PARTS."""
    parts: list[str | int] = []
    for segment in path.split("."):
        position = 0
        while position < len(segment):
            match = _PATH_PART.match(segment, position)
            if match is None:
                raise ItemsError(f"forEach.fromArtifact.path: cannot read {path!r} at {segment[position:]!r}: write fields and [index], such as result.items[0]")
            parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
            position = match.end()
    if len(parts) > MAX_PATH_PARTS:
        raise ItemsError(f"forEach.fromArtifact.path has {len(parts)} parts; at most {MAX_PATH_PARTS}")
    return parts


def at_path(value: Any, path: str | None) -> Any:
    """The value `path` names inside `value` (the value itself without a path)."""
    current = value
    walked: list[str | int] = []
    for part in parse_path(path) if path else ():
        if isinstance(part, int) and isinstance(current, list) and part < len(current):
            current = current[part]
        elif isinstance(part, str) and isinstance(current, dict) and part in current:
            current = current[part]
        else:
            where = ".".join(str(p) for p in walked) or "the artifact"
            raise ItemsError(f"forEach.fromArtifact.path: {where} has no {part!r}: check the path against the artifact's JSON")
        walked.append(part)
    return current


def artifact_items(result: Mapping[str, Any] | None, task_ref: str, artifact_name: str, path: str | None) -> list[Any]:
    """The array inside an upstream step's artifact (a JSON artifact, or a text one holding JSON)."""
    if not result:
        raise ItemsError(f"forEach.fromArtifact: step {task_ref!r} returned nothing (it did not run or did not complete)")
    artifact = next((a for a in result.get("artifacts", []) if a.get("name") == artifact_name), None)
    if artifact is None:
        raise ItemsError(f"forEach.fromArtifact: step {task_ref!r} returned no artifact {artifact_name!r}")
    value = artifact.get("data") if "data" in artifact else artifact.get("text")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ItemsError(f"forEach.fromArtifact: artifact {artifact_name!r} of {task_ref!r} is not JSON: declare it with type application/json") from None
    found = at_path(value, path)
    if not isinstance(found, list):
        raise ItemsError(f"forEach.fromArtifact: {path or 'the artifact'} is a {type(found).__name__}, not an array: point path at the array of items")
    return found


def listing_items(refs: Iterable[DocumentRef], window: ItemWindow, interval: tuple[datetime, datetime] | None) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Documents of a storage listing as items, in key order: those modified in `[start, end)` of
    the run's data interval (window dataInterval, when the run has one), or all; and the files
    left out for their type, with why."""
    since, until = interval if window is ItemWindow.DATA_INTERVAL and interval is not None else (None, None)
    selected, ignored = select_documents(refs, Window(since, until))
    items = [{"index": index, "label": label_of(ref.key), "key": ref.key, "size": ref.size} for index, ref in enumerate(selected)]
    return items, ignored


def chunk_overlap(max_tokens: int) -> int:
    """The overlap of consecutive chunks: a tenth of the budget, so a sentence cut at a boundary
    is whole in one of them."""
    return max_tokens // 10


def chunked(documents: Sequence[Mapping[str, Any]], text_of: Callable[[Mapping[str, Any]], str], max_tokens: int) -> list[dict[str, Any]]:
    """Each document item as one item per chunk of at most `max_tokens` (labelled `key (i/n)`),
    renumbered. A document that cannot be read stays one item: its own task fails and says why."""
    items: list[dict[str, Any]] = []
    for document in documents:
        try:
            count = len(chunk_text(text_of(document), max_tokens, chunk_overlap(max_tokens)))
        except DocumentError:
            count = 1
        for chunk in range(count):
            label = document["label"] if count == 1 else label_of(f"{document['key']} ({chunk + 1}/{count})")
            items.append({**document, "index": len(items), "label": label, **({"chunk": chunk} if count > 1 else {})})
    return items


def chunk_of(text: str, item: Mapping[str, Any], max_tokens: int) -> str:
    """The text of a chunk item (the same cuts as when the items were listed)."""
    if "chunk" not in item:
        return text
    return chunk_text(text, max_tokens, chunk_overlap(max_tokens))[item["chunk"]].text


def numbered(values: Sequence[Any], for_each: ForEach) -> list[dict[str, Any]]:
    """Values as items, checked against maxItems."""
    items = [_item(index, value) for index, value in enumerate(values)]
    return bounded(items, for_each)


def bounded(items: list[dict[str, Any]], for_each: ForEach) -> list[dict[str, Any]]:
    if len(items) > for_each.max_items:
        raise ItemsError(f"{len(items):,} items exceed forEach.maxItems ({for_each.max_items:,}): raise maxItems (up to 10,000) or split the work")
    return items


def item_part(item: Mapping[str, Any], text: str | None = None, media: MediaType = MediaType.TEXT) -> dict[str, Any]:
    """The message part an item's task sends: the item itself (its text or data), labelled."""
    name = f"item-{item['index']}"
    if text is not None:
        return {"name": name, "mediaType": media.value, "text": text}
    if "text" in item:
        return {"name": name, "mediaType": MediaType.TEXT.value, "text": item["text"]}
    return {"name": name, "mediaType": MediaType.JSON.value, "data": item.get("data")}


def step_result(value: Any) -> dict[str, Any] | None:
    """A step's result from its XCom: a plain step's own, or a forEach step's items gathered.
    Airflow returns a mapped task's only XCom as is, not in a list: an item's result is known by
    its `item` entry."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return gather([value]) if "item" in value else dict(value)
    return gather(list(value))


def gather(results: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The results of a forEach step's items as one step result, in item order.

    Each artifact name becomes one artifact: JSON ones a JSON array of the items' values, text
    ones the items' texts as sections headed by their labels. Items that failed (continue) or
    did not run contribute nothing and are listed under `items` with their state."""
    done = [r for r in results if r]
    ordered = sorted(done, key=lambda r: (r.get("item") or {}).get("index", 0))
    by_name: dict[str, list[tuple[Mapping[str, Any], Mapping[str, Any]]]] = {}
    for result in ordered:
        for artifact in result.get("artifacts") or ():
            by_name.setdefault(artifact["name"], []).append((result.get("item") or {}, artifact))
    artifacts = []
    for name, pairs in by_name.items():
        media = pairs[0][1].get("mediaType", MediaType.TEXT.value)
        if media == MediaType.JSON.value:
            artifacts.append({"name": name, "mediaType": media, "data": [artifact.get("data") for _, artifact in pairs]})
        else:
            sections = [f"## {_heading(item)}\n\n{artifact.get('text', '')}".strip() for item, artifact in pairs]
            artifacts.append({"name": name, "mediaType": media, "text": "\n\n".join(sections)})
    items = [
        {
            **(r.get("item") or {}),
            "state": r.get("state", "TASK_STATE_COMPLETED"),
            **({"cached": r["cached"]["fromRun"]} if r.get("cached") else {}),
            **({"usage": status_usage(r["usage"])} if r.get("usage") else {}),
        }
        for r in ordered
    ]
    failed = [i for i in items if i["state"] != "TASK_STATE_COMPLETED"]
    state = "TASK_STATE_COMPLETED" if ordered and len(failed) < len(ordered) else "TASK_STATE_FAILED"
    gathered: dict[str, Any] = {"state": state, "artifacts": artifacts, "items": [{k: v for k, v in i.items() if k in ITEM_FIELDS} for i in items]}
    if any(r.get("usage") for r in ordered):
        gathered["usage"] = run_totals(r.get("usage") for r in ordered)
    return gathered


ITEM_FIELDS = ("index", "label", "state", "cached", "usage")


def _heading(item: Mapping[str, Any]) -> str:
    return str(item.get("label") or f"item {item.get('index', 0)}")
