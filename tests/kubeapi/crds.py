"""CustomResourceDefinition handling: defaulting, validation, status, served types."""

from __future__ import annotations

from typing import Any

from .cel import CelRules
from .errors import INVALID, NOT_SUPPORTED, REQUIRED, FieldError
from .meta import rfc3339
from .resources import PrinterColumn, ResourceType
from .schema import structural_errors

CRD_GROUP = "apiextensions.k8s.io"


def apply_defaults(crd: dict[str, Any]) -> None:
    spec = crd.setdefault("spec", {})
    names = spec.setdefault("names", {})
    if names.get("kind"):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})
    for version in spec.get("versions") or []:
        if isinstance(version, dict):
            version.setdefault("served", True)
            version.setdefault("storage", False)


def validate(crd: dict[str, Any], rules: CelRules) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group")
    if not group:
        errors.append(FieldError("spec.group", REQUIRED))
    elif "." not in group:
        errors.append(FieldError("spec.group", INVALID, group, "should be a domain with at least one dot"))
    for key in ("plural", "kind"):
        if not names.get(key):
            errors.append(FieldError(f"spec.names.{key}", REQUIRED))
    name = crd.get("metadata", {}).get("name", "")
    if names.get("plural") and group and name != f"{names['plural']}.{group}":
        errors.append(FieldError("metadata.name", INVALID, name, 'must be spec.names.plural+"."+spec.group'))
    scope = spec.get("scope")
    if scope not in ("Cluster", "Namespaced"):
        errors.append(
            FieldError("spec.scope", REQUIRED) if not scope else FieldError("spec.scope", NOT_SUPPORTED, scope, 'supported values: "Cluster", "Namespaced"')
        )
    versions = spec.get("versions") or []
    if not versions:
        errors.append(FieldError("spec.versions", REQUIRED, detail="must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errors.append(FieldError("spec.versions", INVALID, "...", "must have exactly one version marked as storage version"))
    for index, version in enumerate(versions):
        path = f"spec.versions[{index}]"
        if not version.get("name"):
            errors.append(FieldError(f"{path}.name", REQUIRED))
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            errors.append(FieldError(f"{path}.schema.openAPIV3Schema", REQUIRED, detail="schemas are required"))
            continue
        schema_path = f"{path}.schema.openAPIV3Schema"
        errors += structural_errors(schema, schema_path)
        errors += rules.check_schema(schema, schema_path)
        for col_index, column in enumerate(version.get("additionalPrinterColumns") or []):
            for key in ("name", "type", "jsonPath"):
                if not column.get(key):
                    errors.append(FieldError(f"{path}.additionalPrinterColumns[{col_index}].{key}", REQUIRED))
    return errors


def status_for(crd: dict[str, Any]) -> dict[str, Any]:
    """What the apiextensions controllers write once a CRD's names are accepted."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    stamp = rfc3339()
    storage = [v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("storage")]
    previous = (crd.get("status") or {}).get("storedVersions") or []
    return {
        "acceptedNames": names,
        "conditions": [
            _condition("NamesAccepted", "NoConflicts", "no conflicts found", stamp),
            _condition("Established", "InitialNamesAccepted", "the initial names have been accepted", stamp),
        ],
        "storedVersions": previous + [v for v in storage if v not in previous],
    }


def _condition(kind: str, reason: str, message: str, stamp: str) -> dict[str, str]:
    return {"type": kind, "status": "True", "lastTransitionTime": stamp, "reason": reason, "message": message}


def served_types(crd: dict[str, Any]) -> list[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    versions = spec["versions"]
    storage = next(v["name"] for v in versions if v.get("storage"))
    served = tuple(v["name"] for v in versions if v.get("served", True))
    types = []
    for version in versions:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                singular=names.get("singular", names["kind"].lower()),
                namespaced=spec["scope"] == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in subresources,
                tracks_generation=True,
                allow_unconditional_update=False,
                returns_deleted_object=True,
                custom=True,
                crd_name=crd["metadata"]["name"],
                storage_version=storage,
                served_versions=served,
                schema=(version.get("schema") or {}).get("openAPIV3Schema") or {},
                printer_columns=tuple(
                    PrinterColumn(
                        name=c["name"],
                        type=c["type"],
                        json_path=c["jsonPath"],
                        description=c.get("description", ""),
                        format=c.get("format", ""),
                        priority=c.get("priority", 0),
                    )
                    for c in version.get("additionalPrinterColumns") or []
                ),
                selectable_fields=tuple(f["jsonPath"].lstrip(".") for f in version.get("selectableFields") or [] if f.get("jsonPath")),
            )
        )
    return types
