"""CRD registration and custom-resource schema handling."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from tests.kubeapi.server import KubeAPIServer
from tests.kubeapi.support import raw_request
from tests.kubeapi.widgets import API_VERSION, GROUP, WIDGET_CRD, widget

pytestmark = pytest.mark.timeout(30)


def causes(exc: ApiException) -> dict[str, str]:
    body = json.loads(exc.body)
    assert exc.status == 422 and body["reason"] == "Invalid", body
    return {c["field"]: c["message"] for c in body["details"]["causes"]}


def get_json(api: client.ApiClient, path: str) -> Any:
    return json.loads(raw_request(api, "GET", path).data)


def create(widgets: client.CustomObjectsApi, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    created: dict[str, Any] = widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", body, **kwargs)
    return created


def test_crd_registration_updates_discovery(widgets: client.CustomObjectsApi, api_client: client.ApiClient) -> None:
    groups = get_json(api_client, "/apis")
    group = next(g for g in groups["groups"] if g["name"] == GROUP)
    assert group["preferredVersion"]["groupVersion"] == API_VERSION
    resources = get_json(api_client, f"/apis/{API_VERSION}")
    assert resources["groupVersion"] == API_VERSION
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["widgets"]["kind"] == "Widget"
    assert by_name["widgets"]["namespaced"] is True
    assert by_name["widgets"]["shortNames"] == ["wd"]
    assert by_name["widgets"]["categories"] == ["examples"]
    assert "watch" in by_name["widgets"]["verbs"]
    assert by_name["widgets/status"]["verbs"] == ["get", "patch", "update"]
    assert "gadgets/status" not in by_name
    crd = client.ApiextensionsV1Api(api_client).read_custom_resource_definition(f"widgets.{GROUP}")
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd.status.accepted_names.list_kind == "WidgetList"
    assert crd.status.stored_versions == ["v1"]


def test_crd_deletion_removes_resource_and_objects(widgets: client.CustomObjectsApi, api_client: client.ApiClient, kube_api: KubeAPIServer) -> None:
    create(widgets, widget("doomed"))
    client.ApiextensionsV1Api(api_client).delete_custom_resource_definition(f"widgets.{GROUP}")
    with pytest.raises(ApiException) as gone:
        widgets.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")
    assert gone.value.status == 404
    names = [r["name"] for r in get_json(api_client, f"/apis/{API_VERSION}")["resources"]]
    assert "widgets" not in names and "gadgets" in names
    client.ApiextensionsV1Api(api_client).create_custom_resource_definition(WIDGET_CRD)
    assert widgets.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")["items"] == []


def test_invalid_crd_is_rejected(api_client: client.ApiClient) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = "wrong.example.test"
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"] = {"enum": ["a"]}
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] = [{"rule": "self.spec. =="}]
    with pytest.raises(ApiException) as rejected:
        client.ApiextensionsV1Api(api_client).create_custom_resource_definition(crd)
    fields = causes(rejected.value)
    assert "metadata.name" in fields
    assert "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].type" in fields
    assert "spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].rule" in fields


def test_schema_validation_reports_field_paths(widgets: client.CustomObjectsApi) -> None:
    body = widget(
        "bad",
        size="huge",
        mode="Fast!",
        replicas=0,
        port=True,
        tags=["a", "a"],
        pipeline=[{"name": "fetch"}, {"name": "train", "retries": -1}, {"name": "fetch"}],
        startAt="yesterday",
        labels={"team": 3},
    )
    del body["spec"]["mode"]
    body["spec"]["modelDefinition"] = {"name": ""}
    with pytest.raises(ApiException) as rejected:
        create(widgets, body)
    fields = causes(rejected.value)
    assert fields["spec.mode"] == "Required value"
    assert fields["spec.size"] == 'Unsupported value: "huge": supported values: "small", "medium", "large"'
    assert fields["spec.replicas"] == "Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
    assert fields["spec.pipeline[1].retries"].endswith("should be greater than or equal to 0")
    assert fields["spec.pipeline[2]"].startswith("Duplicate value")
    assert fields["spec.tags[1]"] == 'Duplicate value: "a"'
    assert fields["spec.port"].startswith('Invalid value: "boolean"')
    assert fields["spec.startAt"].endswith('must be of type date-time: "yesterday"')
    assert fields["spec.labels.team"].startswith('Invalid value: "integer"')
    assert fields["spec.modelDefinition.name"].endswith("should be at least 1 chars long")
    message = json.loads(rejected.value.body)["message"]
    assert message.startswith('Widget.example.test "bad" is invalid: [')


def test_defaults_int_or_string_and_nullable(widgets: client.CustomObjectsApi) -> None:
    created = create(widgets, widget("ok", port="http", pipeline=[{"name": "a"}], note=None, startAt="2024-01-02T03:04:05Z"))
    assert created["spec"]["replicas"] == 1
    assert created["spec"]["pipeline"] == [{"name": "a", "retries": 0}]
    assert created["spec"]["port"] == "http"
    assert created["spec"]["note"] is None
    numeric = create(widgets, widget("num", port=8080, config={"anything": {"goes": [1, 2]}}))
    assert numeric["spec"]["port"] == 8080
    assert numeric["spec"]["config"] == {"anything": {"goes": [1, 2]}}


def test_unknown_fields_follow_field_validation(widgets: client.CustomObjectsApi) -> None:
    body = widget("u", bogus=1)
    body["metadata"]["extra"] = "x"
    with pytest.raises(ApiException) as strict:
        create(widgets, body, field_validation="Strict")
    status = json.loads(strict.value.body)
    assert strict.value.status == 400 and status["reason"] == "BadRequest"
    assert status["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "metadata.extra", unknown field "spec.bogus"'
    )
    response = raw_request(widgets.api_client, "POST", f"/apis/{GROUP}/v1/namespaces/default/widgets", body)
    assert response.status == 201  # no fieldValidation: the server default is Warn
    assert response.headers["Warning"].startswith('299 - "unknown field')
    assert "spec.bogus" in response.headers["Warning"]
    assert "bogus" not in json.loads(response.data)["spec"]
    ignored = widgets.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "u", {"spec": {"other": 2}}, field_validation="Ignore")
    assert "other" not in ignored["spec"]


def test_cel_rules(widgets: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as rejected:
        create(widgets, widget("cel", minReplicas=5, maxReplicas=2))
    assert causes(rejected.value) == {"spec": 'Invalid value: "object": minReplicas must not exceed maxReplicas'}
    create(widgets, widget("owned", owner="alice"))
    with pytest.raises(ApiException) as transition:
        widgets.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "owned", {"spec": {"owner": "bob"}})
    assert causes(transition.value) == {"spec": 'Invalid value: "object": owner is immutable, was alice'}
    kept = widgets.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "owned", {"spec": {"mode": "slow"}})
    assert kept["spec"]["owner"] == "alice"


def test_cluster_wide_list_and_versions(widgets: client.CustomObjectsApi, api_client: client.ApiClient) -> None:
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": "team"}})
    create(widgets, widget("x"))
    widgets.create_namespaced_custom_object(GROUP, "v1", "team", "widgets", widget("y", namespace="team"))
    everywhere = widgets.list_cluster_custom_object(GROUP, "v1", "widgets", label_selector="")
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]] == [
        ("default", "x"),
        ("team", "y"),
    ]


def test_dynamic_client(widgets: client.CustomObjectsApi, api_client: client.ApiClient) -> None:
    resources = dynamic.DynamicClient(api_client).resources
    widget_api = resources.get(api_version=API_VERSION, kind="Widget")
    assert widget_api.namespaced and widget_api.subresources["status"] is not None
    created = widget_api.create(body=widget("dyn"), namespace="default")
    assert created.spec.replicas == 1
    assert [w.metadata.name for w in widget_api.get(namespace="default").items] == ["dyn"]
    pods = resources.get(api_version="v1", kind="Pod")
    assert pods.namespaced and "log" in pods.subresources


def test_crd_deletion_ends_watches(widgets: client.CustomObjectsApi, api_client: client.ApiClient) -> None:
    create(widgets, widget("watched"))
    response = widgets.list_namespaced_custom_object(GROUP, "v1", "default", "widgets", watch=True, _preload_content=False)
    first = json.loads(response.readline())
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "watched")
    client.ApiextensionsV1Api(api_client).delete_custom_resource_definition(f"widgets.{GROUP}")
    rest = [json.loads(line) for line in response.read().splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in rest] == [("DELETED", "watched")]
