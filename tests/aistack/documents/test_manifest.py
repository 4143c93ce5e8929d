"""Selection windows, the idempotency key and the run manifest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aistack.documents.manifest import (
    Recipe,
    Window,
    build_manifest,
    is_current,
    manifest_key,
    output_keys,
    parse_record,
    select_documents,
)
from aistack.documents.storage import DocumentRef

UTC = UTC
T0 = datetime(2026, 3, 1, tzinfo=UTC)
RECIPE = Recipe(1024, 96, "approx-v2:4-letters", 1)
SHA = "ab" * 32
DIGEST = "2ea8ee6f83f9ca5fe8656300e39d02f775712b7869bfeb202e70d3f1ca9ebce4"


def ref(key: str, hours: float = 1) -> DocumentRef:
    return DocumentRef(key, f"/in/{key}", T0 + timedelta(hours=hours), 10)


# -- the key -------------------------------------------------------------------------------


def test_recipe_fingerprint_is_stable_and_changes_with_every_knob():
    assert RECIPE.fingerprint == Recipe(1024, 96, "approx-v2:4-letters", 1).fingerprint
    variants = [
        Recipe(512, 96, "approx-v2:4-letters", 1),
        Recipe(1024, 0, "approx-v2:4-letters", 1),
        Recipe(1024, 96, "other", 1),
        Recipe(1024, 96, "approx-v2:4-letters", 2),
        Recipe(1024, 96, "approx-v2:4-letters", 1, cleaning_version=99),
    ]
    assert len({RECIPE.fingerprint, *(v.fingerprint for v in variants)}) == 6


def test_output_keys_name_the_document_its_hash_the_model_digest_and_the_recipe():
    keys = output_keys("reports/q1.md", SHA, DIGEST, RECIPE)
    assert keys.json == f"summaries/reports/q1.md/{SHA[:16]}-2ea8ee6f83f9-{RECIPE.fingerprint}.json"
    assert keys.markdown == keys.json[:-5] + ".md"
    assert output_keys("reports/q1.md", SHA, "name:summarizer-model:1.0.0", RECIPE).json != keys.json
    assert output_keys("reports/q1.md", "cd" * 32, DIGEST, RECIPE).json != keys.json


def test_a_record_is_current_only_for_the_same_bytes_model_and_recipe():
    record = {"contentSha256": SHA, "modelDigest": DIGEST, "recipe": {"fingerprint": RECIPE.fingerprint}, "summary": "S"}
    assert is_current(record, SHA, DIGEST, RECIPE)
    assert not is_current(record, "cd" * 32, DIGEST, RECIPE)
    assert not is_current(record, SHA, "0" * 64, RECIPE)
    assert not is_current(record, SHA, DIGEST, Recipe(512, 96, "approx-v2:4-letters", 1))
    assert not is_current({**record, "summary": ""}, SHA, DIGEST, RECIPE)
    assert not is_current(None, SHA, DIGEST, RECIPE)


def test_damaged_records_read_as_missing():
    assert parse_record(None) is None
    assert parse_record(b"{not json") is None
    assert parse_record(b"\xff\xfe") is None
    assert parse_record(b"[1, 2]") is None
    assert parse_record(b'{"a": 1}') == {"a": 1}


# -- the window ----------------------------------------------------------------------------


def test_window_is_half_open():
    window = Window(T0, T0 + timedelta(days=1))
    assert window.contains(T0) and window.contains(T0 + timedelta(hours=23, minutes=59, seconds=59))
    assert not window.contains(T0 + timedelta(days=1)) and not window.contains(T0 - timedelta(microseconds=1))
    assert Window(None, None).contains(datetime(1970, 1, 1, tzinfo=UTC))


def test_the_run_window_is_the_data_interval_unless_params_say_otherwise():
    end = T0 + timedelta(days=1)
    assert Window.for_run(T0, end) == Window(T0, end)
    assert Window.for_run(T0, end, since="2026-02-01") == Window(datetime(2026, 2, 1, tzinfo=UTC), None)
    assert Window.for_run(T0, end, until="2026-02-01T12:00:00Z") == Window(None, datetime(2026, 2, 1, 12, tzinfo=UTC))
    assert Window.for_run(T0, end, since="2026-02-01T01:00:00+01:00", until="2026-02-02") == Window(
        datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC)
    )
    assert Window.for_run(T0, end, since="2026-02-01", all_documents=True) == Window(None, None)


def test_bad_windows_are_refused():
    with pytest.raises(ValueError, match="ISO 8601"):
        Window.for_run(T0, T0, since="yesterday")
    with pytest.raises(ValueError, match="empty window"):
        Window(T0, T0)


def test_selection_takes_the_window_ignores_unsupported_files_and_our_own_outputs():
    refs = [ref("b.md", 2), ref("a.txt", 3), ref("old.txt", -1), ref("late.txt", 24), ref("scan.pdf", 5), ref("out/summaries/a.txt/x.md", 4)]
    selected, ignored = select_documents(refs, Window(T0, T0 + timedelta(days=1)), exclude_prefix="out/")
    assert [r.key for r in selected] == ["a.txt", "b.md"]
    assert ignored == [{"key": "scan.pdf", "reason": "unsupported file type (only text, markdown and HTML documents)"}]


# -- the manifest --------------------------------------------------------------------------


def test_manifest_records_every_document_and_what_happened_to_it():
    documents = [ref("a.txt").to_json(), ref("b.txt").to_json(), ref("c.txt").to_json(), ref("d.txt").to_json()]
    outputs = {"json": "/out/x.json", "markdown": "/out/x.md"}
    manifest = build_manifest(
        dag_id="batch_summarization",
        run_id="manual__1",
        window={"since": "s", "until": "u"},
        source="/in",
        output="/out",
        identity={"agent": "summarizer-agent", "namespace": "default", "agentUrl": "http://a", "model": "m:1", "digest": DIGEST, "source": "ollama"},
        recipe={**RECIPE.to_json()},
        documents=documents,
        outcomes={
            "a.txt": {"key": "a.txt", "status": "summarized", "contentSha256": SHA, "outputs": outputs, "chunks": 2, "modelCalls": 3},
            "b.txt": {"key": "b.txt", "status": "skipped", "contentSha256": SHA, "outputs": outputs},
        },
        failures={"c.txt": {"key": "c.txt", "error": "not UTF-8 text", "contentSha256": "ee" * 32}},
        ignored=[{"key": "scan.pdf", "reason": "unsupported"}],
    )
    assert manifest["counts"] == {"documents": 4, "summarized": 1, "skipped": 1, "failed": 2, "ignored": 1}
    assert manifest["summarized"] == ["a.txt"] and manifest["skipped"] == ["b.txt"]
    assert manifest["failures"] == [{"key": "c.txt", "error": "not UTF-8 text"}, {"key": "d.txt", "error": "the document's task did not finish (see its log)"}]
    entries = {e["key"]: e for e in manifest["documents"]}
    assert entries["a.txt"]["chunks"] == 2 and entries["a.txt"]["outputs"] == outputs
    assert entries["c.txt"]["contentSha256"] == "ee" * 32 and entries["d.txt"]["contentSha256"] is None
    assert manifest["modelDigest"] == DIGEST and manifest["modelDigestSource"] == "ollama"


def test_manifest_keys_are_safe_object_names():
    assert manifest_key("scheduled__2026-03-01T00:00:00+00:00") == "manifests/scheduled__2026-03-01T00_00_00_00_00.json"
