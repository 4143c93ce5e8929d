"""A cluster listing validates only the objects written since the last parse: the outcome of each
object (resource or errors) is kept by its uid and resourceVersion, which change with any write."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from aistack.pipelines import source
from aistack.resources import validation

REPO = Path(__file__).resolve().parents[2]


def _item(name: str, version: str, retries: int = 1) -> dict:
    document = next(d for d in yaml.safe_load_all((REPO / "examples" / "question-answering" / "task.yaml").read_text()) if d["kind"] == "TaskOrchestration")
    item = copy.deepcopy(document)
    item["metadata"].update(name=name, namespace="team-a", uid=f"uid-{name}", resourceVersion=version)
    item["spec"]["pipeline"][0]["retries"] = retries
    return item


def test_unchanged_objects_are_not_validated_again(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path))
    calls: list[str] = []
    real = validation.parse_resource

    def counted(data):
        calls.append(data["metadata"]["name"])
        return real(data)

    monkeypatch.setattr(validation, "parse_resource", counted)
    broken = _item("broken", "7")
    broken["spec"]["pipeline"][0]["agentRef"] = "Not A Name"
    nameless = _item("no-uid", "9")
    del nameless["metadata"]["uid"]
    items = [_item("first", "5"), _item("second", "6"), broken, nameless]

    first = source._from_items(items, "cluster", stale=False)
    assert sorted(calls) == ["broken", "first", "no-uid", "second"]
    assert [o.name for o in first.valid] == ["first", "second", "no-uid"]
    assert [(i.name, "agentRef" in str(i.errors[0])) for i in first.invalid] == [("broken", True)]

    calls.clear()
    again = source._from_items(items, "cluster", stale=False)
    assert calls == ["no-uid"], "only what has no uid and resourceVersion is validated again"
    assert [o.name for o in again.valid] == ["first", "second", "no-uid"] and [i.name for i in again.invalid] == ["broken"]

    calls.clear()
    items[1] = _item("second", "8", retries=3)  # written: a new resourceVersion
    changed = source._from_items(items, "cluster", stale=False)
    assert calls == ["second", "no-uid"]
    assert next(o for o in changed.valid if o.name == "second").spec.pipeline[0].retries == 3
