"""The set of served resources: built-in kinds plus whatever CRDs registered.

Everything else (discovery, OpenAPI, routing, storage) asks this registry, so a
CRD becomes visible everywhere the moment it is (re)registered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


class GroupResource(NamedTuple):
    """Storage identity of a resource: all served versions share the objects."""

    group: str
    plural: str

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    format: str = ""
    priority: int = 0


@dataclass(frozen=True)
class ResourceType:
    """One served group/version/resource and the behaviour its objects get."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    log_subresource: bool = False
    tracks_generation: bool = False
    # CRs and CRDs insist on metadata.resourceVersion in a PUT; most built-ins don't.
    allow_unconditional_update: bool = True
    returns_deleted_object: bool = False
    custom: bool = False
    crd_name: str = ""
    storage_version: str = ""
    served_versions: tuple[str, ...] = ()
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    printer_columns: tuple[PrinterColumn, ...] = ()
    selectable_fields: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def resource(self) -> GroupResource:
        return GroupResource(self.group, self.plural)

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def subresources(self) -> tuple[str, ...]:
        subs = ("status",) if self.status_subresource else ()
        return subs + (("log",) if self.log_subresource else ())


def _core(kind: str, plural: str, namespaced: bool = True, **extra: Any) -> ResourceType:
    return ResourceType(group="", version="v1", kind=kind, plural=plural, namespaced=namespaced, **extra)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _core(
        "Namespace",
        "namespaces",
        namespaced=False,
        short_names=("ns",),
        status_subresource=True,
        returns_deleted_object=True,
    ),
    _core(
        "Pod",
        "pods",
        short_names=("po",),
        categories=("all",),
        status_subresource=True,
        log_subresource=True,
        tracks_generation=True,
        returns_deleted_object=True,
    ),
    _core(
        "Service",
        "services",
        short_names=("svc",),
        categories=("all",),
        status_subresource=True,
        returns_deleted_object=True,
    ),
    _core("ConfigMap", "configmaps", short_names=("cm",)),
    _core("Secret", "secrets"),
    _core("ServiceAccount", "serviceaccounts", short_names=("sa",)),
    _core("Event", "events", short_names=("ev",)),
    ResourceType(
        group="apps",
        version="v1",
        kind="Deployment",
        plural="deployments",
        namespaced=True,
        short_names=("deploy",),
        categories=("all",),
        status_subresource=True,
        tracks_generation=True,
    ),
    ResourceType(
        group="policy",
        version="v1",
        kind="PodDisruptionBudget",
        plural="poddisruptionbudgets",
        namespaced=True,
        short_names=("pdb",),
        status_subresource=True,
        tracks_generation=True,
    ),
    ResourceType(
        group="networking.k8s.io",
        version="v1",
        kind="NetworkPolicy",
        plural="networkpolicies",
        namespaced=True,
        short_names=("netpol",),
    ),
    *(
        ResourceType(group="rbac.authorization.k8s.io", version="v1", kind=kind, plural=plural, namespaced=ns)
        for kind, plural, ns in (
            ("Role", "roles", True),
            ("RoleBinding", "rolebindings", True),
            ("ClusterRole", "clusterroles", False),
            ("ClusterRoleBinding", "clusterrolebindings", False),
        )
    ),
    ResourceType(
        group="apiextensions.k8s.io",
        version="v1",
        kind="CustomResourceDefinition",
        plural="customresourcedefinitions",
        namespaced=False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        status_subresource=True,
        tracks_generation=True,
        allow_unconditional_update=False,
        returns_deleted_object=True,
    ),
)


class Registry:
    """Lookup tables over the served types; mutated only on the server's loop."""

    def __init__(self, builtins: Iterable[ResourceType] = BUILTIN_TYPES) -> None:
        self._builtin = list(builtins)
        self._custom: dict[str, list[ResourceType]] = {}

    def all(self) -> list[ResourceType]:
        return self._builtin + [rt for types in self._custom.values() for rt in types]

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        for rt in self.all():
            if (rt.group, rt.version, rt.plural) == (group, version, plural):
                return rt
        return None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rt in self.all():
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        return None

    def storage_type(self, resource: GroupResource) -> ResourceType | None:
        """The type whose version objects are stored in (its schema governs reads)."""
        for rt in self.all():
            if rt.resource == resource and (not rt.custom or rt.version == rt.storage_version):
                return rt
        return None

    def group_versions(self) -> list[tuple[str, list[str]]]:
        """Groups in first-registration order, each with its versions, preferred first."""
        grouped: dict[str, list[str]] = {}
        for rt in self.all():
            versions = grouped.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return [(group, sorted(versions, key=_version_priority)) for group, versions in grouped.items()]

    def types_in(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.all() if rt.group == group and rt.version == version]

    def register_custom(self, crd_name: str, types: list[ResourceType]) -> None:
        self._custom[crd_name] = types

    def unregister_custom(self, crd_name: str) -> list[ResourceType]:
        return self._custom.pop(crd_name, [])


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)
