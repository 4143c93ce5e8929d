"""ObjectMeta rules shared by every kind: names, labels, timestamps and identity."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from .errors import FORBIDDEN, INVALID, REQUIRED, FieldError

# Fields of metav1.ObjectMeta; anything else under metadata is an unknown field.
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime | None = None) -> str:
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def new_uid() -> str:
    return str(uuid.uuid4())


def generated_name(prefix: str) -> str:
    """Same shape as the apiserver's names.SimpleNameGenerator (5 random chars)."""
    return prefix[:58] + "".join(random.choice(_SUFFIX_ALPHABET) for _ in range(5))


def name_errors(name: str, dns_label: bool) -> list[str]:
    """Messages for an invalid object name; DNS labels apply to namespaces and services."""
    if dns_label:
        problems = [] if _LABEL.match(name) else [LABEL_MSG]
        if len(name) > 63:
            problems.append("must be no more than 63 characters")
        return problems
    problems = [] if _SUBDOMAIN.match(name) else [SUBDOMAIN_MSG]
    if len(name) > 253:
        problems.append("must be no more than 253 characters")
    return problems


def validate_metadata(meta: dict[str, Any], dns_label: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    name = meta.get("name")
    if not name:
        if not meta.get("generateName"):
            errors.append(FieldError("metadata.name", REQUIRED, detail="name or generateName is required"))
    elif isinstance(name, str):
        errors += [FieldError("metadata.name", INVALID, name, msg) for msg in name_errors(name, dns_label)]
    errors += _validate_labels(meta.get("labels") or {})
    for key in meta.get("annotations") or {}:
        errors += _validate_key("metadata.annotations", key)
    return errors


def validate_finalizer_change(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """An object being deleted may lose finalizers but never gain them."""
    if not old["metadata"].get("deletionTimestamp"):
        return []
    added = set(new["metadata"].get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
    if not added:
        return []
    return [
        FieldError(
            "metadata.finalizers",
            FORBIDDEN,
            detail="no new finalizers can be added if the object is being deleted, found new finalizers " + go_list(sorted(added)),
        )
    ]


def go_list(items: list[str]) -> str:
    return "[]string{" + ", ".join(f'"{i}"' for i in items) + "}"


def _validate_labels(labels: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for key, value in labels.items():
        errors += _validate_key("metadata.labels", key)
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            errors.append(
                FieldError(
                    "metadata.labels",
                    INVALID,
                    value,
                    "a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
    return errors


def _validate_key(path: str, key: str) -> list[FieldError]:
    prefix, _, name = key.rpartition("/")
    ok = bool(name) and len(name) <= 63 and _QUALIFIED.match(name) is not None
    if prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        ok = False
    if ok:
        return []
    return [
        FieldError(
            path,
            INVALID,
            key,
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        )
    ]
