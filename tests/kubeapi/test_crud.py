"""Object semantics through the real ``kubernetes`` client."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kubeapi.server import KubeAPIServer
from tests.kubeapi.support import raw_request
from tests.kubeapi.widgets import API_VERSION, GROUP, widget

pytestmark = pytest.mark.timeout(30)


def status_of(exc: ApiException) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(exc.body)
    return status


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_create_returns_the_stored_object(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_config_map("default", configmap("settings", a="1"))
    assert isinstance(created, client.V1ConfigMap)
    assert created.metadata.namespace == "default"
    assert re.fullmatch(r"[0-9a-f-]{36}", created.metadata.uid)
    assert int(created.metadata.resource_version) > 0
    assert created.metadata.creation_timestamp.tzinfo is not None
    fetched = core.read_namespaced_config_map("settings", "default")
    assert fetched.metadata.uid == created.metadata.uid
    assert fetched.data == {"a": "1"}


def test_resource_versions_increase_globally(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    first = core.create_namespaced_config_map("default", configmap("one"))
    second = core.create_namespaced_secret("default", {"metadata": {"name": "two"}, "stringData": {"k": "v"}})
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    assert second.data == {"k": "dg=="}  # stringData folds into base64 data
    listed = core.list_namespaced_config_map("default")
    assert int(listed.metadata.resource_version) >= int(second.metadata.resource_version)


def test_already_exists_and_missing_namespace(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map("default", configmap("dup"))
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map("default", configmap("dup"))
    assert exists.value.status == 409
    assert status_of(exists.value)["reason"] == "AlreadyExists"
    assert status_of(exists.value)["message"] == 'configmaps "dup" already exists'
    with pytest.raises(ApiException) as missing:
        core.create_namespaced_config_map("nowhere", configmap("x"))
    assert missing.value.status == 404
    assert status_of(missing.value)["message"] == 'namespaces "nowhere" not found'
    with pytest.raises(ApiException) as absent:
        core.read_namespaced_config_map("ghost", "default")
    assert (absent.value.status, status_of(absent.value)["reason"]) == (404, "NotFound")


def test_generate_name_and_invalid_name(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    made = core.create_namespaced_config_map("default", {"metadata": {"generateName": "job-"}})
    assert re.fullmatch(r"job-[a-z0-9]{5}", made.metadata.name)
    with pytest.raises(ApiException) as bad:
        core.create_namespaced_config_map("default", configmap("Not_Valid"))
    body = status_of(bad.value)
    assert bad.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_replace_with_stale_resource_version_conflicts(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_config_map("default", configmap("cfg", a="1"))
    created.data = {"a": "2"}
    updated = core.replace_namespaced_config_map("cfg", "default", created)
    assert updated.data == {"a": "2"}
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    created.data = {"a": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("cfg", "default", created)
    assert stale.value.status == 409 and status_of(stale.value)["reason"] == "Conflict"
    assert "the object has been modified" in status_of(stale.value)["message"]
    # Built-ins accept an unconditional update (no resourceVersion at all).
    unconditional = core.replace_namespaced_config_map("cfg", "default", configmap("cfg", a="4"))
    assert unconditional.data == {"a": "4"}


def test_custom_resource_update_requires_resource_version(widgets: client.CustomObjectsApi) -> None:
    widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    with pytest.raises(ApiException) as missing:
        widgets.replace_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", widget("w"))
    assert missing.value.status == 422
    assert status_of(missing.value)["details"]["causes"][0]["field"] == "metadata.resourceVersion"


def test_unchanged_write_keeps_resource_version(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_config_map("default", configmap("same", a="1"))
    again = core.patch_namespaced_config_map("same", "default", {"data": {"a": "1"}})
    assert again.metadata.resource_version == created.metadata.resource_version


def test_generation_tracks_spec_only(widgets: client.CustomObjectsApi) -> None:
    created = widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("gen"))
    assert created["metadata"]["generation"] == 1
    labelled = widgets.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "gen", {"metadata": {"labels": {"team": "a"}}})
    assert labelled["metadata"]["generation"] == 1
    status = widgets.patch_namespaced_custom_object_status(GROUP, "v1", "default", "widgets", "gen", {"status": {"phase": "Running"}})
    assert status["metadata"]["generation"] == 1
    changed = widgets.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "gen", {"spec": {"size": "large"}})
    assert changed["metadata"]["generation"] == 2


def test_status_subresource_isolation(widgets: client.CustomObjectsApi) -> None:
    body = widget("iso")
    body["status"] = {"phase": "Done"}
    created = widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", body)
    assert "status" not in created  # status is dropped on create
    created["status"] = {"phase": "Running"}
    created["spec"]["size"] = "medium"
    via_status = widgets.replace_namespaced_custom_object_status(GROUP, "v1", "default", "widgets", "iso", created)
    assert via_status["status"] == {"phase": "Running"}
    assert via_status["spec"]["size"] == "small"  # spec changes ignored on /status
    via_status["status"] = {"phase": "Failed"}
    via_status["spec"]["size"] = "large"
    via_main = widgets.replace_namespaced_custom_object(GROUP, "v1", "default", "widgets", "iso", via_status)
    assert via_main["spec"]["size"] == "large"
    assert via_main["status"] == {"phase": "Running"}  # status changes ignored on the main resource
    with pytest.raises(ApiException) as bad:
        widgets.patch_namespaced_custom_object_status(GROUP, "v1", "default", "widgets", "iso", {"status": {"phase": "Nope"}})
    assert bad.value.status == 422
    assert status_of(bad.value)["details"]["causes"][0]["field"] == "status.phase"


def test_patch_flavours(api_client: client.ApiClient, widgets: client.CustomObjectsApi) -> None:
    apps = client.AppsV1Api(api_client)
    deployment = {
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "main", "image": "nginx:1"},
                        {"name": "sidecar", "image": "envoy:1"},
                    ]
                },
            },
        },
    }
    apps.create_namespaced_deployment("default", deployment)
    # Dict bodies go out as strategic merge patches: containers merge by name.
    patched = apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:2"}]}}}})
    images = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert images == {"main": "nginx:2", "sidecar": "envoy:1"}
    assert patched.metadata.generation == 2
    # List bodies go out as JSON patches.
    patched = apps.patch_namespaced_deployment("web", "default", [{"op": "replace", "path": "/spec/replicas", "value": 3}])
    assert patched.spec.replicas == 3
    with pytest.raises(ApiException) as failed_test:
        apps.patch_namespaced_deployment("web", "default", [{"op": "test", "path": "/spec/replicas", "value": 9}])
    assert failed_test.value.status == 422

    widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("p", tags=["a"]))
    merged = widgets.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "p", {"spec": {"tags": None, "mode": "slow"}})
    assert "tags" not in merged["spec"] and merged["spec"]["mode"] == "slow"
    with pytest.raises(ApiException) as unsupported:
        raw_request(
            api_client,
            "PATCH",
            f"/apis/{GROUP}/v1/namespaces/default/widgets/p",
            {"spec": {"mode": "x"}},
            "application/strategic-merge-patch+json",
        )
    assert unsupported.value.status == 415
    assert status_of(unsupported.value)["reason"] == "UnsupportedMediaType"


def test_server_side_apply(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)

    def apply(data: dict[str, str], manager: str = "tester") -> client.V1ConfigMap:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data}
        return core.patch_namespaced_config_map("ssa", "default", body, field_manager=manager, _content_type="application/apply-patch+yaml")

    created = apply({"a": "1", "b": "2"})
    assert created.data == {"a": "1", "b": "2"}
    other = apply({"c": "3"}, manager="other")
    assert other.data == {"a": "1", "b": "2", "c": "3"}
    dropped = apply({"a": "1"})  # tester stops applying b: it goes, other's c stays
    assert dropped.data == {"a": "1", "c": "3"}
    with pytest.raises(ApiException) as no_manager:
        core.patch_namespaced_config_map(
            "ssa",
            "default",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}},
            _content_type="application/apply-patch+yaml",
        )
    assert no_manager.value.status == 400


def test_finalizers_delay_deletion(widgets: client.CustomObjectsApi) -> None:
    body = widget("fin")
    body["metadata"]["finalizers"] = ["example.test/cleanup"]
    widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", body)
    deleted = widgets.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "fin")
    assert deleted["metadata"]["deletionTimestamp"].endswith("Z")
    still = widgets.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "fin")
    assert still["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as forbidden:
        widgets.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "fin", {"metadata": {"finalizers": ["example.test/cleanup", "x/y"]}})
    assert forbidden.value.status == 422
    widgets.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "fin", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as gone:
        widgets.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "fin")
    assert gone.value.status == 404


def test_delete_returns_object_or_status(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map("default", configmap("bye"))
    result = core.delete_namespaced_config_map("bye", "default")
    assert result.status == "Success"
    with pytest.raises(ApiException) as again:
        core.delete_namespaced_config_map("bye", "default")
    assert again.value.status == 404


def test_lists_and_selectors(api_client: client.ApiClient, kube_api: KubeAPIServer) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": "other"}})
    for namespace, name, labels in (
        ("default", "a", {"tier": "web", "env": "prod"}),
        ("default", "b", {"tier": "db", "env": "prod"}),
        ("default", "c", {"tier": "web"}),
        ("other", "d", {"tier": "web", "env": "dev"}),
    ):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": labels}})

    def names(**kwargs: str) -> list[str]:
        return [i.metadata.name for i in core.list_config_map_for_all_namespaces(**kwargs).items]

    listed = core.list_config_map_for_all_namespaces()
    assert listed.kind is None or listed.kind == "ConfigMapList"
    assert names() == ["a", "b", "c", "d"]
    assert names(label_selector="tier=web") == ["a", "c", "d"]
    assert names(label_selector="tier!=web") == ["b"]
    assert names(label_selector="env in (prod, dev),tier notin (db)") == ["a", "d"]
    assert names(label_selector="!env") == ["c"]
    assert names(label_selector="env") == ["a", "b", "d"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.namespace!=default") == ["d"]
    assert [i.metadata.name for i in core.list_namespaced_config_map("other").items] == ["d"]
    with pytest.raises(ApiException) as bad:
        names(field_selector="data.x=1")
    assert bad.value.status == 400
    first = core.list_namespaced_config_map("default", limit=2)
    assert [i.metadata.name for i in first.items] == ["a", "b"]
    rest = core.list_namespaced_config_map("default", limit=2, _continue=first.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["c"]
    raw = kube_api.list_objects("v1", "ConfigMap", "other")
    assert [o["metadata"]["name"] for o in raw] == ["d"]


def test_list_kind_and_dry_run(widgets: client.CustomObjectsApi, kube_api: KubeAPIServer) -> None:
    widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("real"))
    dry = widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("dry"), dry_run="All")
    assert dry["metadata"]["name"] == "dry"
    listed = widgets.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")
    assert listed["kind"] == "WidgetList" and listed["apiVersion"] == API_VERSION
    assert [i["metadata"]["name"] for i in listed["items"]] == ["real"]
    assert listed["metadata"]["resourceVersion"] == str(kube_api.resource_version)
    assert kube_api.get_object(API_VERSION, "Widget", "dry", "default") is None


def test_pod_defaults_and_spec_immutability(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    pod = core.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "base", "image": "python:3.11"}]}})
    assert pod.status.phase == "Pending"
    assert pod.spec.restart_policy == "Always"
    assert pod.spec.containers[0].image_pull_policy == "IfNotPresent"
    labelled = core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"checked": "true"}}})
    assert labelled.metadata.labels == {"checked": "true"}
    with pytest.raises(ApiException) as forbidden:
        core.patch_namespaced_pod("p", "default", {"spec": {"restartPolicy": "Never"}})
    assert forbidden.value.status == 422
    with pytest.raises(ApiException) as invalid:
        core.create_namespaced_pod("default", {"metadata": {"name": "q"}, "spec": {"containers": [{"name": "x"}]}})
    assert status_of(invalid.value)["details"]["causes"][0]["field"] == "spec.containers[0].image"


def test_namespace_deletion_removes_contents(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": "scratch"}})
    core.create_namespaced_config_map("scratch", configmap("inside"))
    core.delete_namespace("scratch")
    assert core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=scratch").items == []
    assert "scratch" not in [n.metadata.name for n in core.list_namespace().items]


def test_owner_deletion_cascades(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)

    def owned_by(owner: client.V1ConfigMap, name: str) -> dict[str, Any]:
        reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid}
        return {"metadata": {"name": name, "ownerReferences": [reference]}}

    parent = core.create_namespaced_config_map("default", configmap("parent"))
    core.create_namespaced_secret("default", owned_by(parent, "child"))
    core.delete_namespaced_config_map("parent", "default")
    assert [s.metadata.name for s in core.list_namespaced_secret("default").items] == []
    keeper = core.create_namespaced_config_map("default", configmap("keeper"))
    core.create_namespaced_secret("default", owned_by(keeper, "orphan"))
    core.delete_namespaced_config_map("keeper", "default", propagation_policy="Orphan")
    assert [s.metadata.name for s in core.list_namespaced_secret("default").items] == ["orphan"]
