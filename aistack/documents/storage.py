"""Where documents come from and summaries go: a local folder or an S3 prefix.

A location is `s3://bucket/prefix` or a folder path. Both stores list every object under their
root (keys relative to it, "/"-separated, hidden and temporary files left out), read objects
whole and write them atomically:

- `LocalStore` writes a temporary file in the target's folder, fsyncs it and renames it over
  the target (a reader sees the old object or the new one, never half of one);
- `S3Store` writes with one PutObject, which S3 applies whole or not at all.

`S3Store` takes any boto3-style S3 client (`list_objects_v2` paginator, `get_object`,
`put_object`): the Airflow DAG passes the amazon provider's `S3Hook(...).get_conn()`, so the
connection (credentials, region, endpoint_url) is Airflow's, while this module has no Airflow
import. Modification times are timezone-aware UTC: a file's mtime, an object's LastModified.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from aistack.files import write_atomic

TEMPORARY_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")


@dataclass(frozen=True)
class DocumentRef:
    key: str  # relative to the store's root, "/"-separated
    uri: str
    modified: datetime  # aware, UTC
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "uri": self.uri, "modified": self.modified.isoformat(), "size": self.size}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DocumentRef:
        return cls(data["key"], data["uri"], datetime.fromisoformat(data["modified"]), int(data["size"]))


def is_listed(key: str) -> bool:
    """Hidden files and folders (a part starting with ".") and temporary files are not documents."""
    parts = PurePosixPath(key).parts
    return bool(parts) and not any(part.startswith(".") for part in parts) and not key.endswith(TEMPORARY_SUFFIXES)


def safe_key(key: str) -> str:
    """`key` if it stays inside a store's root; ValueError otherwise."""
    path = PurePosixPath(key)
    if not key or key.startswith("/") or any(part in ("..", "") for part in key.split("/")) or path.is_absolute():
        raise ValueError(f"invalid object key {key!r}: it must be relative, without '..' or empty parts")
    return key


class Store(Protocol):
    uri: str

    def list(self) -> Iterator[DocumentRef]: ...

    def read(self, key: str) -> bytes: ...

    def read_optional(self, key: str) -> bytes | None: ...

    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str: ...

    def uri_of(self, key: str) -> str: ...


class LocalStore:
    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().absolute()
        self.uri = str(self.root)

    def uri_of(self, key: str) -> str:
        return str(self.root / safe_key(key))

    def list(self) -> Iterator[DocumentRef]:
        if not self.root.is_dir():
            return
        for folder, folders, files in os.walk(self.root):
            folders[:] = sorted(name for name in folders if not name.startswith("."))
            for name in sorted(files):
                path = Path(folder) / name
                key = path.relative_to(self.root).as_posix()
                if not is_listed(key):
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:  # removed while listing
                    continue
                if not path.is_file():
                    continue
                modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
                yield DocumentRef(key, str(path), modified, stat.st_size)

    def read(self, key: str) -> bytes:
        return (self.root / safe_key(key)).read_bytes()

    def read_optional(self, key: str) -> bytes | None:
        try:
            return self.read(key)
        except FileNotFoundError:
            return None

    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        return str(write_atomic(self.root / safe_key(key), data))


def _client_error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3Store:
    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.uri = f"s3://{bucket}/{self.prefix}"

    def object_key(self, key: str) -> str:
        return self.prefix + safe_key(key)

    def uri_of(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def list(self) -> Iterator[DocumentRef]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                full = item["Key"]
                key = full[len(self.prefix) :]
                if full.endswith("/") or not is_listed(key):
                    continue
                modified = item["LastModified"]
                if modified.tzinfo is None:
                    modified = modified.replace(tzinfo=UTC)
                yield DocumentRef(key, f"s3://{self.bucket}/{full}", modified.astimezone(UTC), int(item.get("Size", 0)))

    def read(self, key: str) -> bytes:
        response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        return response["Body"].read()

    def read_optional(self, key: str) -> bytes | None:
        try:
            return self.read(key)
        except Exception as exc:
            if _client_error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data, ContentType=content_type)
        return self.uri_of(key)


@dataclass(frozen=True)
class Location:
    """A parsed location: `kind` "s3" (bucket, prefix) or "local" (path)."""

    kind: str
    bucket: str = ""
    prefix: str = ""
    path: Path | None = None

    @classmethod
    def parse(cls, location: str) -> Location:
        text = location.strip()
        if text.startswith("s3://"):
            bucket, _, prefix = text[5:].partition("/")
            if not bucket:
                raise ValueError(f"invalid S3 location {location!r}: write s3://bucket/prefix")
            return cls("s3", bucket=bucket, prefix=prefix.strip("/"))
        if "://" in text:
            raise ValueError(f"unsupported location {location!r}: use s3://bucket/prefix or a folder path")
        return cls("local", path=Path(text).expanduser().absolute())

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.kind == "s3" else str(self.path)

    def relative_prefix(self, inner: Location) -> str | None:
        """The key prefix under which `inner` lies inside this location, or None when it is elsewhere."""
        if self.kind != inner.kind:
            return None
        if self.kind == "s3":
            if self.bucket != inner.bucket:
                return None
            outer = self.prefix + "/" if self.prefix else ""
            target = inner.prefix + "/" if inner.prefix else ""
            return target[len(outer) :] if target.startswith(outer) else None
        assert self.path is not None and inner.path is not None
        try:
            relative = inner.path.relative_to(self.path).as_posix()
        except ValueError:
            return None
        return "" if relative == "." else relative + "/"


def open_store(location: Location | str, s3_client: Callable[[], Any] | None = None) -> Store:
    """The store of a location; S3 needs `s3_client`, a function that returns a boto3 S3 client."""
    parsed = Location.parse(location) if isinstance(location, str) else location
    if parsed.kind == "s3":
        if s3_client is None:
            raise ValueError(f"{parsed} is an S3 location: an S3 client is needed")
        return S3Store(s3_client(), parsed.bucket, parsed.prefix)
    assert parsed.path is not None
    return LocalStore(parsed.path)
