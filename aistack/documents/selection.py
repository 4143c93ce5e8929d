"""Which objects of a listing are documents of a time window.

A window is half-open, `[since, until)` like Airflow's data intervals, so consecutive scheduled
runs partition time and an object modified once lands in exactly one run. Files of unsupported
types are returned apart with the reason, so a run can say what it ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from aistack.documents.cleaning import is_supported
from aistack.documents.storage import DocumentRef


@dataclass(frozen=True)
class Window:
    """Modification times `since <= t < until`; None on either side leaves it open."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise ValueError(f"empty window: since {self.since.isoformat()} is not before until {self.until.isoformat()}")

    def contains(self, moment: datetime) -> bool:
        return (self.since is None or self.since <= moment) and (self.until is None or moment < self.until)


def select_documents(refs: Iterable[DocumentRef], window: Window) -> tuple[list[DocumentRef], list[dict[str, str]]]:
    """The documents of the window, sorted by key, and the ignored files of the window with why."""
    selected: list[DocumentRef] = []
    ignored: list[dict[str, str]] = []
    for ref in refs:
        if not window.contains(ref.modified):
            continue
        if not is_supported(ref.key):
            ignored.append({"key": ref.key, "reason": "unsupported file type (only text, markdown and HTML documents)"})
            continue
        selected.append(ref)
    selected.sort(key=lambda r: r.key)
    ignored.sort(key=lambda item: item["key"])
    return selected, ignored
