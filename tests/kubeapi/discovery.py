"""Discovery documents, legacy (APIGroupList/APIResourceList) and aggregated (v2).

kubectl 1.30+ asks for aggregated discovery first and falls back to the legacy
per-group-version documents; the Python clients only use the legacy ones. Both
are derived from the registry on every request, so CRDs show up immediately.
"""

from __future__ import annotations

from typing import Any

from .resources import ALL_VERBS, STATUS_VERBS, Registry, ResourceType

AGGREGATED_MEDIA = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    for media in accept.split(","):
        params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in media.split(";")[1:])}
        if params.get("g") == "apidiscovery.k8s.io" and params.get("v") == "v2" and params.get("as") == "APIGroupDiscoveryList":
            return True
    return False


def version_info() -> dict[str, str]:
    return {
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "gitVersion": "v1.37.1-aistack-test",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group_doc(g, versions) for g, versions in registry.group_versions() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: Registry, name: str) -> dict[str, Any] | None:
    for group_name, versions in registry.group_versions():
        if group_name == name and name:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(name, versions)}
    return None


def resource_list(registry: Registry, group_name: str, version: str) -> dict[str, Any] | None:
    types = registry.types_in(group_name, version)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        main: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular_name,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(ALL_VERBS),
        }
        if rt.short_names:
            main["shortNames"] = list(rt.short_names)
        if rt.categories:
            main["categories"] = list(rt.categories)
        resources.append(main)
        for sub in rt.subresources:
            resources.append(
                {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get"] if sub == "log" else list(STATUS_VERBS),
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": types[0].group_version,
        "resources": resources,
    }


def aggregated(registry: Registry, core: bool) -> dict[str, Any]:
    """APIGroupDiscoveryList for ``/api`` (core) or ``/apis`` (named groups)."""
    items = []
    for group_name, versions in registry.group_versions():
        if bool(group_name) == core:
            continue
        items.append(
            {
                "metadata": {"name": group_name, "creationTimestamp": None},
                "versions": [
                    {
                        "version": v,
                        "resources": [_aggregated_resource(rt) for rt in registry.types_in(group_name, v)],
                        "freshness": "Current",
                    }
                    for v in versions
                ],
            }
        )
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    entry: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": kind,
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular_name,
        "verbs": list(ALL_VERBS),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    if rt.subresources:
        entry["subresources"] = [
            {
                "subresource": sub,
                "responseKind": kind if sub != "log" else {"group": "", "version": "", "kind": "string"},
                "verbs": ["get"] if sub == "log" else list(STATUS_VERBS),
            }
            for sub in rt.subresources
        ]
    return entry
