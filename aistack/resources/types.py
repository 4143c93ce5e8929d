"""Value types shared by the three resources.

Each type validates on the Python side with a message that tells the user what to write,
and carries the JSON schema the CRD generator puts in the manifests, so the cluster's
schema validation and `aistack validate` agree on what is allowed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    StrictStr,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError, core_schema


def _string_type(pattern: str, max_length: int, check: Any, description: str) -> Any:
    """A strict string whose Python check and CRD pattern describe the same rule."""
    schema = {"type": "string", "pattern": pattern, "maxLength": max_length, "description": description}
    return Annotated[StrictStr, AfterValidator(check), WithJsonSchema(schema)]


_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL_PATTERN = rf"^{_DNS_LABEL}$"
DNS_SUBDOMAIN_PATTERN = rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$"


def _check_name(value: str, pattern: str, max_length: int, what: str) -> str:
    if not value:
        raise PydanticCustomError("name", "must not be empty")
    if len(value) > max_length:
        raise PydanticCustomError("name", f"{what} is {len(value)} characters long; the limit is {max_length}")
    if not re.fullmatch(pattern, value):
        allowed = "a-z0-9.-" if pattern == DNS_SUBDOMAIN_PATTERN else "a-z0-9-"
        hint = re.sub(rf"[^{allowed}]+", "-", value.lower()).strip("-.")
        raise PydanticCustomError(
            "name",
            f"invalid {what} {value!r}: use lowercase letters, digits and '-'{', dots between parts' if '.' in allowed else ''}, "
            f"starting and ending with a letter or digit (for example {hint[:max_length].strip('-.') or 'my-name'!r})",
        )
    return value


def _check_subdomain(value: str) -> str:
    return _check_name(value, DNS_SUBDOMAIN_PATTERN, 253, "name")


def _check_label(value: str) -> str:
    return _check_name(value, DNS_LABEL_PATTERN, 63, "name")


def _check_namespace(value: str) -> str:
    return _check_name(value, DNS_LABEL_PATTERN, 63, "namespace")


ResourceName = _string_type(DNS_SUBDOMAIN_PATTERN, 253, _check_subdomain, "A Kubernetes object name (RFC 1123 subdomain).")
"""Names of Kubernetes objects: what `agentRef` and `modelDefinition.name` point at."""

NamespaceName = _string_type(DNS_LABEL_PATTERN, 63, _check_namespace, "A Kubernetes namespace (RFC 1123 label).")
"""Namespaces are labels, not subdomains: at most 63 characters and no dots, as the API server requires."""

StepName = _string_type(DNS_LABEL_PATTERN, 63, _check_label, "A step or artifact name (RFC 1123 label).")
"""Step and artifact names become Airflow task ids and object keys, so they stay label-safe."""


VERSION_PATTERN = r"^v?[0-9]+(\.[0-9]+){0,2}([-+][0-9A-Za-z.-]+)?$"


def _check_version(value: str) -> str:
    if not re.fullmatch(VERSION_PATTERN, value):
        raise PydanticCustomError("version", f'invalid version {value!r}: use a semantic version such as "1.0.0"')
    return value


def _reject_number(value: Any) -> Any:
    """YAML reads `version: 1.0` as a float; say how to fix it instead of 'not a string'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise PydanticCustomError("version", f'got the number {value!r}: quote the version so YAML keeps it a string, e.g. "{value}"')
    return value


Version = Annotated[
    StrictStr,
    BeforeValidator(_reject_number),
    AfterValidator(_check_version),
    WithJsonSchema({"type": "string", "pattern": VERSION_PATTERN, "maxLength": 64, "description": "A semantic version."}),
]


_DURATION_UNITS = {"ms": timedelta(milliseconds=1), "s": timedelta(seconds=1), "m": timedelta(minutes=1), "h": timedelta(hours=1)}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"


def parse_duration(value: Any) -> timedelta:
    """Parse Go-style durations ("90s", "5m", "1h30m"), the form Kubernetes users already write."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str) or not re.fullmatch(DURATION_PATTERN, value):
        raise PydanticCustomError(
            "duration",
            f'invalid duration {value!r}: write a number with a unit ms, s, m or h, such as "30s", "5m" or "1h30m"',
        )
    return sum((float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(value)), timedelta())


def format_duration(value: timedelta) -> str:
    """The shortest Go-style spelling, so a round trip through the models keeps "5m" as "5m"."""
    millis = round(value.total_seconds() * 1000)
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "description": 'A duration such as "30s", "5m" or "1h30m".'}),
]


QUANTITY_PATTERN = r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$"
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}


class Quantity:
    """A Kubernetes resource quantity ("8Gi", "500m", 2): kept as written, comparable by value."""

    __slots__ = ("text", "value")

    def __init__(self, text: str, value: Decimal) -> None:
        self.text = text
        self.value = value

    @classmethod
    def parse(cls, raw: Any) -> Quantity:
        if isinstance(raw, Quantity):
            return raw
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise PydanticCustomError("quantity", f'invalid quantity {raw!r}: write a Kubernetes quantity such as "8Gi", "500m" or 2')
        text = str(raw)
        match = re.fullmatch(r"([0-9.]+)(.*)", text)
        if not re.fullmatch(QUANTITY_PATTERN, text) or match is None:
            raise PydanticCustomError(
                "quantity",
                f'invalid quantity {text!r}: write a number with an optional suffix (Ki, Mi, Gi, Ti, m, k, M, G), such as "8Gi" or "500m"',
            )
        number, suffix = Decimal(match.group(1)), match.group(2)
        if suffix in _BINARY:
            return cls(text, number * _BINARY[suffix])
        if suffix in _DECIMAL:
            return cls(text, number * _DECIMAL[suffix])
        return cls(text, number * Decimal(10) ** int(suffix[1:]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Quantity({self.text!r})"

    def __str__(self) -> str:
        return self.text

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(cls.parse, serialization=core_schema.plain_serializer_function_ser_schema(lambda q: q.text))

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {
            "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
            "description": 'A Kubernetes quantity such as "8Gi", "500m" or 2.',
        }


class MediaType(str, Enum):
    """The content types aistack can pass between steps and write as output."""

    TEXT = "text/plain"
    MARKDOWN = "text/markdown"
    JSON = "application/json"


HTTP_URL_PATTERN = r"^https?://[^\s/]+(/\S*)?$"


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)  # urlsplit drops tabs and newlines (WHATWG), so the pattern is checked too
    if not re.fullmatch(HTTP_URL_PATTERN, value) or parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("url", f'invalid URL {value!r}: use an absolute http:// or https:// URL, e.g. "http://callback-service/webhook"')
    return value


HttpUrl = _string_type(HTTP_URL_PATTERN, 2048, _check_http_url, "An absolute http(s) URL.")


def _check_url_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value) or "?" in value or "#" in value:
        raise PydanticCustomError("path", f'invalid path {value!r}: use an absolute URL path without query, such as "/api/v1/agent"')
    return value.rstrip("/") or "/"


UrlPath = _string_type(r"^/[^\s?#]*$", 512, _check_url_path, "An absolute URL path.")


_KEY_PART = r"[A-Za-z0-9_=+@,:-][A-Za-z0-9._=+@,:-]*"
RELATIVE_KEY_PATTERN = rf"^({_KEY_PART}/)*({_KEY_PART})?$"


def _check_relative_key(value: str) -> str:
    if not re.fullmatch(RELATIVE_KEY_PATTERN, value):
        parts = [p for p in value.replace("\\", "/").split("/") if p not in ("", ".", "..")]
        hint = "/".join(parts) + ("/" if value.endswith("/") and parts else "")
        raise PydanticCustomError(
            "relative_key",
            f"invalid {value!r}: use a relative path of names made of letters, digits and . _ - = + @ , : "
            f"separated by single '/', with no '..', '.' or hidden parts and no leading '/' "
            f"(for example {hint or 'outputs/'!r})",
        )
    return value


RelativeKey = _string_type(RELATIVE_KEY_PATTERN, 512, _check_relative_key, "A relative path below the output root (no '..', no leading '/').")
"""Output prefixes and folders: results stay under the output root whatever a resource says."""


def text_limit(max_length: int, hint: str, description: str) -> tuple[AfterValidator, WithJsonSchema]:
    """The metadata of a strict string of at most `max_length` characters (the CRD's maxLength
    too), whose error says what to do with more: `hint` is the way to pass a larger text.
    Use as `Annotated[StrictStr, *text_limit(...)]`."""

    def check(value: str) -> str:
        if len(value) > max_length:
            raise PydanticCustomError("text_too_long", f"is {len(value):,} characters long; the limit is {max_length:,}: {hint}")
        return value

    return AfterValidator(check), WithJsonSchema({"type": "string", "maxLength": max_length, "description": description})
