"""forEach's items without Airflow: splitting the input, paths into artifacts, labels, listings,
chunks, the maxItems bound and gathering in item order."""

from datetime import UTC, datetime, timedelta

import pytest

from aistack.documents.storage import DocumentRef
from aistack.pipelines import items
from aistack.resources.orchestration import ForEach, ItemsFromInput, ItemWindow


def _split(text: str, **rule) -> list:
    return items.split_input(text, ItemsFromInput.model_validate(rule))


def test_the_input_splits_by_each_rule():
    assert _split('["a", {"name": "b"}, 3]') == ["a", {"name": "b"}, 3]
    assert _split("one\n\n two \n", split="lines") == ["one", "two"]
    assert _split("p one\nstill one\n \nP two", split="paragraphs") == ["p one\nstill one", "P two"]
    assert _split("a---b--- ---c", split="separator", separator="---") == ["a", "b", "c"]


@pytest.mark.parametrize(("text", "error"), [("not json", "is not JSON"), ('{"a": 1}', "a JSON dict, not an array")])
def test_input_that_is_no_json_array_says_what_to_pass(text, error):
    with pytest.raises(items.ItemsError, match=error):
        _split(text)


def test_a_path_walks_fields_and_indexes_and_names_what_is_missing():
    value = {"result": {"docs": [["x", "y"]]}}
    assert items.at_path(value, "result.docs[0]") == ["x", "y"]
    with pytest.raises(items.ItemsError, match="result.docs has no 3"):
        items.at_path(value, "result.docs[3]")
    with pytest.raises(items.ItemsError, match="at most 32"):
        items.parse_path(".".join(["a"] * 40))


def test_labels_are_one_short_line():
    assert items.label_of("  \nfirst line\nsecond") == "first line"
    assert items.label_of({"title": "T", "body": "..."}) == "T"
    assert len(items.label_of("x" * 500)) == items.MAX_LABEL


def test_more_items_than_max_items_fail_before_any_runs():
    with pytest.raises(items.ItemsError, match="3 items exceed forEach.maxItems"):
        items.numbered(["a", "b", "c"], ForEach.model_validate({"fromInput": {}, "maxItems": 2}))


def test_a_listing_takes_the_interval_when_given_and_leaves_out_other_types():
    day = datetime(2026, 11, 2, tzinfo=UTC)
    refs = [DocumentRef(key, f"file://{key}", day + timedelta(hours=h), 10) for key, h in (("b.txt", 1), ("a.md", 2), ("late.txt", 30), ("x.png", 3))]
    within, ignored = items.listing_items(refs, ItemWindow.DATA_INTERVAL, (day, day + timedelta(days=1)))
    assert [i["key"] for i in within] == ["a.md", "b.txt"] and [i["index"] for i in within] == [0, 1]
    assert ignored == [{"key": "x.png", "reason": "unsupported file type (only text, markdown and HTML documents)"}]
    every, _ = items.listing_items(refs, ItemWindow.DATA_INTERVAL, None)
    assert [i["key"] for i in every] == ["a.md", "b.txt", "late.txt"]


def test_chunks_cover_the_document_and_are_cut_the_same_way_twice():
    text = " ".join(f"Word{n}." for n in range(400))
    documents = [{"index": 0, "label": "doc.txt", "key": "doc.txt", "size": len(text)}, {"index": 1, "label": "b.txt", "key": "b.txt", "size": 5}]
    listed = items.chunked(documents, lambda d: text if d["key"] == "doc.txt" else "short", 64)
    chunks = [i for i in listed if i["key"] == "doc.txt"]
    assert len(chunks) > 3 and [i["index"] for i in listed] == list(range(len(listed)))
    assert chunks[0]["label"] == f"doc.txt (1/{len(chunks)})" and listed[-1]["label"] == "b.txt"
    pieces = [items.chunk_of(text, chunk, 64) for chunk in chunks]
    assert pieces[0].startswith("Word0.") and pieces[-1].endswith("Word399.")


def test_results_gather_in_item_order_whatever_order_they_finished_in():
    results = [
        {"item": {"index": 1, "label": "two"}, "state": "TASK_STATE_COMPLETED", "artifacts": [{"name": "s", "mediaType": "text/plain", "text": "second"}]},
        {"item": {"index": 0, "label": "one"}, "state": "TASK_STATE_COMPLETED", "artifacts": [{"name": "s", "mediaType": "text/plain", "text": "first"}]},
        {"item": {"index": 2, "label": "three"}, "state": "TASK_STATE_FAILED", "artifacts": []},
        None,
    ]
    gathered = items.gather(results)
    assert gathered["artifacts"] == [{"name": "s", "mediaType": "text/plain", "text": "## one\n\nfirst\n\n## two\n\nsecond"}]
    assert [(i["label"], i["state"]) for i in gathered["items"]] == [
        ("one", "TASK_STATE_COMPLETED"),
        ("two", "TASK_STATE_COMPLETED"),
        ("three", "TASK_STATE_FAILED"),
    ]
    assert gathered["state"] == "TASK_STATE_COMPLETED"
    as_json = items.gather([{"item": {"index": 0}, "artifacts": [{"name": "d", "mediaType": "application/json", "data": {"k": 1}}]}])
    assert as_json["artifacts"] == [{"name": "d", "mediaType": "application/json", "data": [{"k": 1}]}]
