"""Ollama's options (per request) and PARAMETERs (per model): names, types, defaults, precedence.

Precedence is Ollama's: request `options` over the model's PARAMETERs over DEFAULTS. The
defaults are Ollama's own, so a model behaves the same whether a real Ollama or the embedded
runtime serves it. Load-time options (num_gpu, num_thread, use_mmap, ...) are accepted and
ignored: one llama.cpp instance serves every model built on a base. `num_ctx` above the size
the instance was loaded with is capped to it.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("aistack.runtime")

INT_OPTIONS = {
    "num_ctx",
    "num_predict",
    "top_k",
    "repeat_last_n",
    "seed",
    "num_keep",
    "mirostat",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
}
FLOAT_OPTIONS = {
    "temperature",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "mirostat_tau",
    "mirostat_eta",
    "tfs_z",
}
BOOL_OPTIONS = {"numa", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mmap", "use_mlock", "embedding_only", "penalize_newline"}
LIST_OPTIONS = {"stop"}
KNOWN_OPTIONS = INT_OPTIONS | FLOAT_OPTIONS | BOOL_OPTIONS | LIST_OPTIONS

# Ollama's defaults (api.DefaultOptions).
DEFAULTS: dict[str, Any] = {
    "num_ctx": 4096,
    "num_predict": -1,
    "num_keep": 4,
    "temperature": 0.8,
    "top_k": 40,
    "top_p": 0.9,
    "min_p": 0.0,
    "typical_p": 1.0,
    "repeat_last_n": 64,
    "repeat_penalty": 1.1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "mirostat": 0,
    "mirostat_tau": 5.0,
    "mirostat_eta": 0.1,
    "seed": -1,
    "stop": [],
}

DEFAULT_KEEP_ALIVE = 300.0  # seconds, Ollama's 5m


class InvalidOption(ValueError):
    pass


def coerce(name: str, value: Any) -> Any:
    """One option in its Ollama type; raise InvalidOption naming the option."""
    if name not in KNOWN_OPTIONS:
        raise InvalidOption(f'invalid option "{name}"')
    try:
        if name in LIST_OPTIONS:
            items = [value] if isinstance(value, str) else list(value)
            if not all(isinstance(item, str) for item in items):
                raise TypeError
            return items
        if name in BOOL_OPTIONS:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise TypeError
        if isinstance(value, bool):
            raise TypeError
        if name in INT_OPTIONS:
            if isinstance(value, str):
                value = float(value)
            if isinstance(value, float):
                if not value.is_integer():
                    raise TypeError
                value = int(value)
            if not isinstance(value, int):
                raise TypeError
            return value
        number = float(value)
        if math.isnan(number):
            raise TypeError
        return number
    except (TypeError, ValueError):
        kind = "a list of strings" if name in LIST_OPTIONS else "a boolean" if name in BOOL_OPTIONS else ("an integer" if name in INT_OPTIONS else "a number")
        raise InvalidOption(f'option "{name}" must be {kind}, got {value!r}') from None


def coerce_all(values: Mapping[str, Any] | None) -> dict[str, Any]:
    return {name: coerce(name, value) for name, value in (values or {}).items() if value is not None}


def effective(parameters: Mapping[str, Any] | None, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """DEFAULTS, then the model's PARAMETERs, then the request's options.

    As in Ollama, a request option with an unknown name is ignored (and logged), while a known
    one with a wrong type is an error; PARAMETERs were checked strictly at create time.
    """
    known = {}
    for name, value in (options or {}).items():
        if name in KNOWN_OPTIONS:
            known[name] = value
        else:
            log.warning("ignoring unknown option %r", name)
    return DEFAULTS | coerce_all(parameters) | coerce_all(known)


@dataclass(frozen=True)
class Sampling:
    """The settings one generation runs with, in llama.cpp's terms."""

    temperature: float
    top_k: int
    top_p: float
    min_p: float
    typical_p: float
    repeat_penalty: float
    repeat_last_n: int
    presence_penalty: float
    frequency_penalty: float
    mirostat: int
    mirostat_tau: float
    mirostat_eta: float
    seed: int
    num_predict: int
    num_ctx: int
    num_keep: int
    stop: tuple[str, ...]

    @classmethod
    def from_options(cls, values: Mapping[str, Any]) -> Sampling:
        return cls(
            temperature=values["temperature"],
            top_k=values["top_k"],
            top_p=values["top_p"],
            min_p=values["min_p"],
            typical_p=values["typical_p"],
            repeat_penalty=values["repeat_penalty"],
            repeat_last_n=values["repeat_last_n"],
            presence_penalty=values["presence_penalty"],
            frequency_penalty=values["frequency_penalty"],
            mirostat=values["mirostat"],
            mirostat_tau=values["mirostat_tau"],
            mirostat_eta=values["mirostat_eta"],
            seed=values["seed"],
            num_predict=values["num_predict"],
            num_ctx=values["num_ctx"],
            num_keep=values["num_keep"],
            stop=tuple(s for s in values["stop"] if s),
        )


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_keep_alive(value: Any, default: float = DEFAULT_KEEP_ALIVE) -> float:
    """Seconds to keep a model loaded after a request; negative means forever, 0 unload now.

    Ollama takes a number of seconds or a Go duration string ("5m", "1h30m", "-1", "0").
    """
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise InvalidOption(f"invalid keep_alive {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    total, position = 0.0, 0
    for match in _DURATION.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(body) or not body:
        raise InvalidOption(f'time: invalid duration "{text}"')
    return sign * total


def parameters_text(parameters: Mapping[str, Any]) -> str:
    """The `parameters` field of /api/show: one `name value` line per value, like Ollama."""
    lines = []
    for name, value in parameters.items():
        for item in value if isinstance(value, list) else [value]:
            text = json.dumps(item, ensure_ascii=False) if isinstance(item, str) else str(item).lower() if isinstance(item, bool) else str(item)
            lines.append(f"{name:<30} {text}")
    return "\n".join(lines)
