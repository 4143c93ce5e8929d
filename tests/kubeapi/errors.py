"""API failures shaped like the real server's, so clients parse them the same way.

Every failure leaves the server as a ``kind: Status`` body whose code, reason,
message and details match what kube-apiserver would send; the Python clients
turn them into ``ApiException`` and kubectl prints ``Error from server (...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Field error types, named after k8s.io/apimachinery/pkg/util/validation/field.
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
TYPE_INVALID = "FieldValueTypeInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"

_TYPE_TEXT = {
    REQUIRED: "Required value",
    INVALID: "Invalid value",
    TYPE_INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    DUPLICATE: "Duplicate value",
    FORBIDDEN: "Forbidden",
    TOO_LONG: "Too long",
    TOO_MANY: "Too many",
}
# Go's field.Error omits the bad value for these types.
_VALUELESS = {REQUIRED, FORBIDDEN, TOO_LONG}


class _Omitted:
    def __repr__(self) -> str:
        return "<omitted>"


OMIT = _Omitted()


def go_repr(value: Any) -> str:
    """Render a value the way Go's ``%#v``/``%q`` does inside field errors."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{go_repr(str(k))}:{go_repr(v)}" for k, v in sorted(value.items()))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(go_repr(v) for v in value) + "}"
    return str(value)


@dataclass(frozen=True)
class FieldError:
    """One entry of an Invalid status; ``body`` is what Go calls ``ErrorBody()``."""

    field: str
    type: str
    value: Any = OMIT
    detail: str = ""

    @property
    def body(self) -> str:
        text = _TYPE_TEXT.get(self.type, self.type)
        if self.type not in _VALUELESS and self.value is not OMIT:
            text = f"{text}: {go_repr(self.value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body}" if self.field else self.body

    def cause(self) -> dict[str, str]:
        return {"reason": self.type, "message": self.body, "field": self.field}


@dataclass
class APIError(Exception):
    """Raised anywhere below the HTTP layer; rendered as a Status by the app."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def group_resource(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def group_kind(group: str, kind: str) -> str:
    return f"{kind}.{group}" if group else kind


def not_found(group: str, plural: str, name: str) -> APIError:
    return APIError(
        404,
        "NotFound",
        f'{group_resource(group, plural)} "{name}" not found',
        _details(group, plural, name),
    )


def already_exists(group: str, plural: str, name: str) -> APIError:
    return APIError(
        409,
        "AlreadyExists",
        f'{group_resource(group, plural)} "{name}" already exists',
        _details(group, plural, name),
    )


def conflict(group: str, plural: str, name: str, why: str) -> APIError:
    return APIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {group_resource(group, plural)} "{name}": {why}',
        _details(group, plural, name),
    )


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(group: str, kind: str, name: str, errors: list[FieldError]) -> APIError:
    joined = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(map(str, errors)) + "]"
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": [e.cause() for e in errors]}
    if group:
        details["group"] = group
    return APIError(422, "Invalid", f'{group_kind(group, kind)} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def unsupported_media_type(content_type: str, accepted: list[str]) -> APIError:
    return APIError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
    )


def method_not_allowed(verb: str, group: str, plural: str) -> APIError:
    return APIError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {"group": group, "kind": plural} if group else {"kind": plural},
    )


def unprocessable(message: str) -> APIError:
    return APIError(422, "Invalid", message)


def resource_not_found() -> APIError:
    return APIError(404, "NotFound", "the server could not find the requested resource", {})


def _details(group: str, plural: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return details
