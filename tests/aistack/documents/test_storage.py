"""Stores: a local folder, and S3 through a real S3 endpoint (moto in server mode)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aistack.documents.selection import Window, select_documents
from aistack.documents.storage import LocalStore, Location, S3Store, open_store, safe_key

from .support import BUCKET, moto_s3, s3_client

UTC = UTC


def test_local_listing_is_recursive_and_skips_hidden_and_temporary_files(tmp_path: Path):
    for name in ("b.txt", "a/z.md", "a/b/c.html", ".hidden.txt", ".git/config", "draft.txt~", "up.part", "x.tmp"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    moment = datetime(2026, 3, 1, 12, tzinfo=UTC)
    os.utime(tmp_path / "b.txt", (moment.timestamp(), moment.timestamp()))
    refs = {r.key: r for r in LocalStore(tmp_path).list()}
    assert sorted(refs) == ["a/b/c.html", "a/z.md", "b.txt"]
    b = refs["b.txt"]
    assert b.modified == moment and b.modified.tzinfo is not None and b.size == 1 and b.uri == str(tmp_path / "b.txt")
    assert list(LocalStore(tmp_path / "missing").list()) == []


def test_local_writes_are_atomic_and_leave_no_temporary_files(tmp_path: Path, monkeypatch):
    store = LocalStore(tmp_path)
    assert store.write("out/x.json", b"one") == str(tmp_path / "out" / "x.json")
    assert store.read("out/x.json") == b"one" and store.read_optional("out/none.json") is None
    store.write("out/x.json", b"two")
    assert store.read("out/x.json") == b"two"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.write("out/x.json", b"three")
    assert store.read("out/x.json") == b"two", "a failed write leaves the old object whole"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.json"], "and no temporary file"


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a//b", "a/../../b", ""])
def test_keys_stay_inside_the_store(key):
    with pytest.raises(ValueError):
        safe_key(key)


def test_locations(tmp_path: Path):
    s3 = Location.parse("s3://bucket/in/docs/")
    assert (s3.kind, s3.bucket, s3.prefix, str(s3)) == ("s3", "bucket", "in/docs", "s3://bucket/in/docs")
    assert Location.parse("s3://bucket").prefix == ""
    local = Location.parse(str(tmp_path))
    assert local.kind == "local" and local.path == tmp_path
    assert local.relative_prefix(Location.parse(str(tmp_path / "out" / "sum"))) == "out/sum/"
    assert local.relative_prefix(Location.parse("/elsewhere")) is None
    assert Location.parse("s3://b/in").relative_prefix(Location.parse("s3://b/in/out")) == "out/"
    assert Location.parse("s3://b").relative_prefix(Location.parse("s3://b/out")) == "out/"
    assert Location.parse("s3://b/in").relative_prefix(Location.parse("s3://b/inbox")) is None
    assert Location.parse("s3://b/in").relative_prefix(Location.parse("s3://c/in/out")) is None
    for bad in ("s3://", "gs://bucket/x"):
        with pytest.raises(ValueError):
            Location.parse(bad)
    with pytest.raises(ValueError, match="S3 client"):
        open_store("s3://bucket/x")


@pytest.fixture(scope="module")
def s3():
    with moto_s3() as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_s3_store_lists_reads_and_writes_under_its_prefix(s3):
    before = datetime.now(UTC) - timedelta(seconds=2)
    for key in ("in/a.txt", "in/sub/b.md", "in/.hidden", "in/folder/", "other/c.txt"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"text")
    after = datetime.now(UTC) + timedelta(seconds=2)
    store = open_store(f"s3://{BUCKET}/in/", lambda: s3)
    assert isinstance(store, S3Store)
    refs = sorted(store.list(), key=lambda r: r.key)
    assert [(r.key, r.uri, r.size) for r in refs] == [("a.txt", f"s3://{BUCKET}/in/a.txt", 4), ("sub/b.md", f"s3://{BUCKET}/in/sub/b.md", 4)]
    assert all(before <= r.modified <= after and r.modified.tzinfo is not None for r in refs)
    assert store.read("sub/b.md") == b"text" and store.read_optional("nothing.txt") is None
    assert store.write("out/x.json", b"{}", "application/json") == f"s3://{BUCKET}/in/out/x.json"
    head = s3.head_object(Bucket=BUCKET, Key="in/out/x.json")
    assert head["ContentType"] == "application/json" and head["ContentLength"] == 2


def test_s3_last_modified_decides_the_window(s3):
    store = S3Store(s3, BUCKET, "window")
    s3.put_object(Bucket=BUCKET, Key="window/now.txt", Body=b"x")
    modified = next(iter(store.list())).modified
    inside, _ = select_documents(store.list(), Window(modified, modified + timedelta(seconds=1)))
    before, _ = select_documents(store.list(), Window(modified - timedelta(days=1), modified))
    assert [r.key for r in inside] == ["now.txt"] and before == []
