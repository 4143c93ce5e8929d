"""A GGUF file's metadata, read straight from its header without loading the model.

`/api/show`, `/api/tags` and `/api/create` describe models (family, size, quantization,
context length) many times per run; loading weights for that would be wasteful, so this reads
the key/value section and the tensor shapes and stops. Arrays (the tokenizer's vocabulary)
are skipped: only their length is kept.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9

# llama.cpp's `general.file_type` values, named as Ollama shows them (quantization_level).
FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
}


class GGUFError(ValueError):
    """The file is not a GGUF model this reader understands."""


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    size: int
    metadata: dict[str, Any] = field(repr=False)
    array_lengths: dict[str, int] = field(repr=False)
    parameter_count: int

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def quantization_level(self) -> str:
        file_type = self.metadata.get("general.file_type")
        return FILE_TYPES.get(file_type, f"type {file_type}") if file_type is not None else "unknown"

    @property
    def parameter_size(self) -> str:
        """Like Ollama: `134.52M`, `6.74B`."""
        count = self.parameter_count
        for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
            if count >= scale:
                return f"{count / scale:.2f}{unit}"
        return str(count)

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if value is not None else None

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template")

    def model_info(self) -> dict[str, Any]:
        """What Ollama's /api/show calls model_info: the scalar metadata, arrays as their length,
        and `general.parameter_count`; the chat template is left to `template`."""
        info: dict[str, Any] = {k: v for k, v in self.metadata.items() if k != "tokenizer.chat_template"}
        info.update({key: None for key in self.array_lengths})
        info["general.parameter_count"] = self.parameter_count
        return dict(sorted(info.items()))


@functools.lru_cache(maxsize=32)
def _read_cached(path: str, size: int, mtime_ns: int) -> GGUFInfo:
    with open(path, "rb") as f:
        return _read(f, Path(path), size)


def read_info(path: str | Path) -> GGUFInfo:
    """Metadata of the GGUF at `path` (cached per path, size and modification time)."""
    resolved = Path(path).expanduser().resolve()
    try:
        stat = resolved.stat()
    except OSError as e:
        raise GGUFError(f"cannot read {resolved}: {e.strerror}") from None
    return _read_cached(str(resolved), stat.st_size, stat.st_mtime_ns)


def _read(f: BinaryIO, path: Path, size: int) -> GGUFInfo:
    if f.read(4) != b"GGUF":
        raise GGUFError(f"{path} is not a GGUF file")
    (version,) = struct.unpack("<I", f.read(4))
    if version not in (2, 3):
        raise GGUFError(f"{path}: GGUF version {version} is not supported")
    n_tensors, n_kv = struct.unpack("<QQ", f.read(16))
    metadata: dict[str, Any] = {}
    arrays: dict[str, int] = {}
    try:
        for _ in range(n_kv):
            key = _string(f)
            (value_type,) = struct.unpack("<I", f.read(4))
            if value_type == _ARRAY:
                (item_type,) = struct.unpack("<I", f.read(4))
                (count,) = struct.unpack("<Q", f.read(8))
                _skip_array(f, item_type, count)
                arrays[key] = count
            else:
                metadata[key] = _value(f, value_type)
        parameters = 0
        for _ in range(n_tensors):
            _string(f)
            (n_dims,) = struct.unpack("<I", f.read(4))
            dims = struct.unpack(f"<{n_dims}Q", f.read(8 * n_dims))
            f.read(4 + 8)  # tensor type, data offset
            count = 1
            for d in dims:
                count *= d
            parameters += count
    except (struct.error, UnicodeDecodeError) as e:
        raise GGUFError(f"{path}: truncated or corrupt GGUF header ({e})") from None
    return GGUFInfo(path=path, size=size, metadata=metadata, array_lengths=arrays, parameter_count=parameters)


def _string(f: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", f.read(8))
    return f.read(length).decode("utf-8")


def _value(f: BinaryIO, value_type: int) -> Any:
    if value_type == _STRING:
        return _string(f)
    fmt = _SCALARS.get(value_type)
    if fmt is None:
        raise GGUFError(f"unknown GGUF value type {value_type}")
    (value,) = struct.unpack(fmt, f.read(struct.calcsize(fmt)))
    return value


def _skip_array(f: BinaryIO, item_type: int, count: int) -> None:
    if item_type == _STRING:
        for _ in range(count):
            (length,) = struct.unpack("<Q", f.read(8))
            f.seek(length, 1)
    elif item_type == _ARRAY:
        for _ in range(count):
            (inner_type,) = struct.unpack("<I", f.read(4))
            (inner_count,) = struct.unpack("<Q", f.read(8))
            _skip_array(f, inner_type, inner_count)
    else:
        fmt = _SCALARS.get(item_type)
        if fmt is None:
            raise GGUFError(f"unknown GGUF array item type {item_type}")
        f.seek(struct.calcsize(fmt) * count, 1)


def file_digest(path: str | Path) -> str:
    """`sha256:<hex>` of a file's content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()
