"""The embedded runtime's model store on disk, laid out like Ollama's.

    <root>/manifests/<host>/<namespace>/<model>/<tag>   one JSON manifest per model name
    <root>/blobs/sha256-<hex>                           content-addressed layers and configs
    <root>/gguf-digests.json                            sha256 of base GGUF files, by path/size/mtime

A manifest lists the model's layers (base weights, template, system, params, messages,
license) by digest plus a config blob; the model's digest is the sha256 of the canonical
manifest bytes, so an unchanged definition gives the same digest after any number of creates
and restarts, and any change gives a new one. The base weights are referenced, not copied:
the model layer carries the GGUF's digest and the config names the base (`smollm2:135m` or a
.gguf path), which is looked up again at load time. Every write goes to a temporary file in
the same folder and is renamed into place, so a crash never leaves a half-written manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aistack.files import write_atomic
from aistack.runtime import gguf
from aistack.runtime.names import ModelName, parse_name

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_MEDIA_TYPES = {
    "model": "application/vnd.ollama.image.model",
    "template": "application/vnd.ollama.image.template",
    "system": "application/vnd.ollama.image.system",
    "params": "application/vnd.ollama.image.params",
    "messages": "application/vnd.ollama.image.messages",
    "license": "application/vnd.ollama.image.license",
}
_KIND_BY_MEDIA_TYPE = {v: k for k, v in LAYER_MEDIA_TYPES.items()}


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ModelSpec:
    """What a model is: a base GGUF plus the prompt-side settings that differ between models."""

    base: str  # `smollm2:135m`, or the absolute path of a .gguf
    base_digest: str
    base_size: int
    requested_from: str  # what `from` said, before substitution (inherited through parents)
    substituted_from: str | None = None  # the cluster base model AISTACK_BASE_MODELS replaced
    parent: str | None = None  # the created model this one was built from, if any
    system: str | None = None
    template: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    messages: tuple[Mapping[str, str], ...] = ()
    license: tuple[str, ...] = ()

    @property
    def substitution(self) -> str | None:
        return f"{self.substituted_from} -> {self.base}" if self.substituted_from else None


@dataclass(frozen=True)
class ModelRecord:
    name: str
    digest: str  # sha256:<hex> of the manifest
    modified_at: datetime
    size: int
    spec: ModelSpec
    bundled_base: bool = False  # a bundled base model shown as a model, not a created one

    @property
    def short_digest(self) -> str:
        return self.digest.removeprefix("sha256:")


@dataclass(frozen=True)
class Manifest:
    data: dict[str, Any]
    blobs: dict[str, bytes]  # digest -> content for the small layers and the config

    @property
    def raw(self) -> bytes:
        return canonical_json(self.data)

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    def layer_statuses(self, store: ModelStore) -> list[str]:
        """Ollama's create progress lines: one per layer, existing or new."""
        lines = []
        for layer in self.data["layers"]:
            digest = layer["digest"]
            exists = layer["mediaType"] == LAYER_MEDIA_TYPES["model"] or store.has_blob(digest)
            lines.append(f"{'using existing' if exists else 'creating new'} layer {digest}")
        return lines


def build_manifest(spec: ModelSpec, details: Mapping[str, Any]) -> Manifest:
    """The manifest (and the blobs it references) for a spec; `details` describes the base GGUF."""
    blobs: dict[str, bytes] = {}
    layers: list[dict[str, Any]] = [{"mediaType": LAYER_MEDIA_TYPES["model"], "digest": spec.base_digest, "size": spec.base_size}]

    def add(kind: str, content: bytes) -> None:
        digest = sha256_digest(content)
        blobs[digest] = content
        layers.append({"mediaType": LAYER_MEDIA_TYPES[kind], "digest": digest, "size": len(content)})

    if spec.template is not None:
        add("template", spec.template.encode())
    if spec.system is not None:
        add("system", spec.system.encode())
    if spec.parameters:
        add("params", canonical_json(dict(spec.parameters)))
    if spec.messages:
        add("messages", canonical_json([dict(m) for m in spec.messages]))
    for text in spec.license:
        add("license", text.encode())
    config = {
        "model_format": "gguf",
        "model_family": details.get("family"),
        "model_families": [details.get("family")],
        "model_type": details.get("parameter_size"),
        "file_type": details.get("quantization_level"),
        "aistack": {
            "base_model": spec.base,
            "requested_from": spec.requested_from,
            "substituted_from": spec.substituted_from,
            "parent_model": spec.parent,
        },
    }
    config_bytes = canonical_json(config)
    config_digest = sha256_digest(config_bytes)
    blobs[config_digest] = config_bytes
    data = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": len(config_bytes)},
        "layers": layers,
    }
    return Manifest(data=data, blobs=blobs)


class StoreError(RuntimeError):
    pass


class ModelStore:
    """Manifests and blobs under `root`; safe to use from several threads of one process."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.manifests = self.root / "manifests"
        self.blobs = self.root / "blobs"
        self._lock = threading.RLock()
        self._digest_cache_path = self.root / "gguf-digests.json"

    # -- files ---------------------------------------------------------------------------

    def _blob_path(self, digest: str) -> Path:
        algorithm, _, hex_digest = digest.partition(":")
        if algorithm != "sha256" or len(hex_digest) != 64 or not all(c in "0123456789abcdef" for c in hex_digest):
            raise StoreError(f"invalid digest {digest!r}")
        return self.blobs / f"sha256-{hex_digest}"

    def _manifest_path(self, name: ModelName) -> Path:
        return self.manifests.joinpath(*name.parts)

    def has_blob(self, digest: str) -> bool:
        return self._blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        try:
            return self._blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"blob {digest} is missing from {self.blobs}") from None

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        write_atomic(path, data)

    # -- base GGUF digests -----------------------------------------------------------------

    def gguf_digest(self, path: Path) -> str:
        """sha256 of a base GGUF, computed once per (path, size, mtime) and remembered on disk."""
        path = path.resolve()
        stat = path.stat()
        key = str(path)
        with self._lock:
            cache = self._read_digest_cache()
            entry = cache.get(key)
            if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
                return entry["digest"]
            digest = gguf.file_digest(path)
            cache[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "digest": digest}
            self._write_atomic(self._digest_cache_path, json.dumps(cache, indent=1, sort_keys=True).encode())
            return digest

    def _read_digest_cache(self) -> dict[str, Any]:
        try:
            value = json.loads(self._digest_cache_path.read_text())
            return value if isinstance(value, dict) else {}
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    # -- models ------------------------------------------------------------------------------

    def write(self, name: str, manifest: Manifest) -> bool:
        """Store a model under `name`; False (and nothing written) when it is already exactly that."""
        parsed = parse_name(name)
        with self._lock:
            path = self._find_path(parsed) or self._manifest_path(parsed)
            raw = manifest.raw
            for digest, content in manifest.blobs.items():
                if not self.has_blob(digest):
                    self._write_atomic(self._blob_path(digest), content)
            if path.is_file() and path.read_bytes() == raw:
                return False
            self._write_atomic(path, raw)
            return True

    def get(self, name: str) -> ModelRecord | None:
        parsed = parse_name(name)
        path = self._find_path(parsed)
        if path is None:
            return None
        return self._record(parsed.display, path)

    def list(self) -> list[ModelRecord]:
        records = []
        for path in self._manifest_files():
            host, namespace, model, tag = path.relative_to(self.manifests).parts
            name = ModelName(host, namespace, model, tag).display
            with contextlib.suppress(StoreError, FileNotFoundError, json.JSONDecodeError, KeyError):
                records.append(self._record(name, path))
        return sorted(records, key=lambda r: r.modified_at, reverse=True)

    def delete(self, name: str) -> bool:
        parsed = parse_name(name)
        with self._lock:
            path = self._find_path(parsed)
            if path is None:
                return False
            path.unlink()
            for parent in path.parents:
                if parent == self.manifests:
                    break
                with contextlib.suppress(OSError):
                    parent.rmdir()
            self._prune_blobs()
            return True

    def copy(self, source: str, destination: str) -> bool:
        src, dst = parse_name(source), parse_name(destination)
        with self._lock:
            path = self._find_path(src)
            if path is None:
                return False
            target = self._find_path(dst) or self._manifest_path(dst)
            self._write_atomic(target, path.read_bytes())
            return True

    def _manifest_files(self) -> Iterator[Path]:
        if not self.manifests.is_dir():
            return
        for path in self.manifests.glob("*/*/*/*"):
            if path.is_file() and not path.name.startswith("."):
                yield path

    def _find_path(self, name: ModelName) -> Path | None:
        exact = self._manifest_path(name)
        if exact.is_file():
            return exact
        for path in self._manifest_files():
            if "/".join(path.relative_to(self.manifests).parts[:3]).lower() + ":" + path.name.lower() == name.key:
                return path
        return None

    def _record(self, name: str, path: Path) -> ModelRecord:
        raw = path.read_bytes()
        data = json.loads(raw)
        config = json.loads(self.read_blob(data["config"]["digest"]))
        meta = config.get("aistack", {})
        values: dict[str, Any] = {"license": []}
        base_digest, base_size = "", 0
        for layer in data["layers"]:
            kind = _KIND_BY_MEDIA_TYPE.get(layer["mediaType"])
            if kind == "model":
                base_digest, base_size = layer["digest"], layer["size"]
            elif kind in ("template", "system"):
                values[kind] = self.read_blob(layer["digest"]).decode()
            elif kind == "params":
                values["parameters"] = json.loads(self.read_blob(layer["digest"]))
            elif kind == "messages":
                values["messages"] = tuple(json.loads(self.read_blob(layer["digest"])))
            elif kind == "license":
                values["license"].append(self.read_blob(layer["digest"]).decode())
        spec = ModelSpec(
            base=meta["base_model"],
            base_digest=base_digest,
            base_size=base_size,
            requested_from=meta.get("requested_from") or meta["base_model"],
            substituted_from=meta.get("substituted_from"),
            parent=meta.get("parent_model"),
            system=values.get("system"),
            template=values.get("template"),
            parameters=values.get("parameters", {}),
            messages=values.get("messages", ()),
            license=tuple(values["license"]),
        )
        size = sum(layer["size"] for layer in data["layers"]) + data["config"]["size"]
        modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        return ModelRecord(name=name, digest=sha256_digest(raw), modified_at=modified, size=size, spec=spec)

    def _prune_blobs(self) -> None:
        """Remove blobs no manifest references any more (Ollama prunes the same way)."""
        referenced = set()
        for path in self._manifest_files():
            with contextlib.suppress(OSError, json.JSONDecodeError, KeyError):
                data = json.loads(path.read_bytes())
                referenced.add(data["config"]["digest"])
                referenced.update(layer["digest"] for layer in data["layers"])
        if not self.blobs.is_dir():
            return
        for blob in self.blobs.glob("sha256-*"):
            if blob.name.endswith(".tmp") or blob.name.startswith("."):
                continue
            if "sha256:" + blob.name.removeprefix("sha256-") not in referenced:
                with contextlib.suppress(OSError):
                    blob.unlink()
