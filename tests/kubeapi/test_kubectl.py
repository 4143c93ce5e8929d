"""The pinned kubectl binary against the fixture, with its default validation."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from kubernetes import client

from tests.kubeapi.kubectl import Kubectl, KubectlError
from tests.kubeapi.server import KubeAPIServer
from tests.kubeapi.support import eventually
from tests.kubeapi.widgets import API_VERSION, GADGET_CRD, WIDGET_CRD, as_yaml, widget

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def crds(kubectl: Kubectl) -> Kubectl:
    out = kubectl("apply", "-f", "-", input=as_yaml(WIDGET_CRD, GADGET_CRD)).stdout
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.test created" in out
    return kubectl


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_apply_get_and_printer_columns(crds: Kubectl) -> None:
    applied = crds("apply", "-f", "-", input=as_yaml(widget("w1", modelDefinition={"name": "llama"}), widget("w2", size="large")))
    assert applied.stdout.split("\n")[:2] == ["widget.example.test/w1 created", "widget.example.test/w2 created"]
    assert "unchanged" in crds("apply", "-f", "-", input=as_yaml(widget("w1", modelDefinition={"name": "llama"}))).stdout
    table = rows(crds("get", "widgets").stdout)
    assert table[0] == ["NAME", "SIZE", "MODEL", "PHASE", "AGE"]
    assert table[1][:3] == ["w1", "small", "llama"]
    assert table[1][3].endswith("s")  # AGE rendered from the date column, phase empty
    assert table[2][:2] == ["w2", "large"]
    assert rows(crds("get", "wd", "w2", "--no-headers").stdout)[0][:2] == ["w2", "large"]
    changed = crds("apply", "-f", "-", input=as_yaml(widget("w1", modelDefinition={"name": "mistral"})))
    assert "configured" in changed.stdout
    stored = crds.json("get", "widget", "w1")
    assert stored["spec"]["modelDefinition"] == {"name": "mistral"}
    assert stored["metadata"]["generation"] == 2


def test_category_lists_every_kind(crds: Kubectl) -> None:
    gadget = {"apiVersion": API_VERSION, "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"color": "red"}}
    crds("apply", "-f", "-", input=as_yaml(widget("w1"), gadget))
    names = [r[0] for r in rows(crds("get", "examples", "--no-headers").stdout)]
    assert sorted(names) == ["gadget.example.test/g1", "widget.example.test/w1"]


def test_default_validation_is_strict(crds: Kubectl) -> None:
    unknown = crds("apply", "-f", "-", input=as_yaml(widget("w3", bogus=1)), check=False)
    assert unknown.returncode != 0
    assert 'strict decoding error: unknown field "spec.bogus"' in unknown.stderr
    invalid = crds("apply", "-f", "-", input=as_yaml(widget("w4", size="huge", replicas=0)), check=False)
    assert invalid.returncode != 0
    assert 'The Widget "w4" is invalid' in invalid.stderr
    assert '* spec.size: Unsupported value: "huge"' in invalid.stderr
    assert "* spec.replicas: Invalid value: 0" in invalid.stderr


def test_status_patch_and_wait(crds: Kubectl, kube_api: KubeAPIServer) -> None:
    crds("apply", "-f", "-", input=as_yaml(widget("w1")))
    patched = crds("patch", "widget", "w1", "--subresource=status", "--type=merge", "-p", '{"status":{"phase":"Running"}}')
    assert "patched" in patched.stdout
    assert crds.json("get", "widget", "w1")["status"] == {"phase": "Running"}

    def finish() -> None:
        # Only once kubectl wait is watching, so the condition is met by a watch event.
        eventually(lambda: any("watch=true" in path and "widgets" in path for _, path in kube_api.requests))
        with kube_api.sync_api_client() as api:
            client.CustomObjectsApi(api).patch_namespaced_custom_object_status("example.test", "v1", "default", "widgets", "w1", {"status": {"phase": "Done"}})

    worker = threading.Thread(target=finish)
    worker.start()
    waited = crds("wait", "--for=jsonpath={.status.phase}=Done", "widget/w1", "--timeout=15s")
    worker.join()
    assert "condition met" in waited.stdout
    assert rows(crds("get", "widgets", "--no-headers").stdout)[0][-2] == "Done"  # MODEL is blank


def test_delete_and_errors(crds: Kubectl) -> None:
    crds("apply", "-f", "-", input=as_yaml(widget("w1")))
    deleted = crds("delete", "widget", "w1")
    assert 'widget.example.test "w1" deleted' in deleted.stdout
    assert "No resources found" in crds("get", "widgets").stderr
    with pytest.raises(KubectlError) as missing:
        crds("get", "widget", "w1")
    assert 'widgets.example.test "w1" not found' in missing.value.stderr
    crds("delete", "-f", "-", input=as_yaml(WIDGET_CRD))
    gone = crds("get", "widgets", check=False)
    assert gone.returncode != 0
    # kubectl's cached discovery may still list widgets; either way the server says NotFound.
    assert "NotFound" in gone.stderr or "doesn't have a resource type" in gone.stderr


def test_builtin_apply_and_server_side_apply(kubectl: Kubectl) -> None:
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "main", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
                        {"name": "side", "image": "busybox:1"},
                    ]
                },
            },
        },
    }
    kubectl("apply", "-f", "-", input=as_yaml(deployment))
    containers = deployment["spec"]["template"]["spec"]["containers"]
    containers[0]["env"].append({"name": "B", "value": "2"})
    containers.pop()
    assert "configured" in kubectl("apply", "-f", "-", input=as_yaml(deployment)).stdout
    live = kubectl.json("get", "deployment", "web")["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], [e["name"] for e in c["env"]]) for c in live] == [("main", ["A", "B"])]
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", "-", input=as_yaml(config)).stdout
    assert kubectl.json("get", "configmap", "c")["data"] == {"a": "1"}
    kubectl("label", "configmap", "c", "team=ml")
    assert [r[0] for r in rows(kubectl("get", "cm", "-l", "team=ml", "--no-headers").stdout)] == ["c"]
    listed = json.loads(kubectl("get", "namespaces", "-o", "json").stdout)
    assert "default" in [n["metadata"]["name"] for n in listed["items"]]


def test_create_subcommands_send_protobuf(kubectl: Kubectl, kube_api: KubeAPIServer) -> None:
    kubectl("create", "namespace", "team")
    kubectl("create", "configmap", "settings", "--from-literal=mode=fast", "-n", "team")
    kubectl("create", "secret", "generic", "creds", "--from-literal=token=abc", "-n", "team")
    kubectl("create", "serviceaccount", "runner", "-n", "team")
    configmap = kube_api.get_object("v1", "ConfigMap", "settings", "team")
    secret = kube_api.get_object("v1", "Secret", "creds", "team")
    assert configmap is not None and configmap["data"] == {"mode": "fast"}
    assert secret is not None and secret["data"] == {"token": "YWJj"}
    assert kube_api.get_object("v1", "ServiceAccount", "runner", "team") is not None
    refused = kubectl("create", "deployment", "web", "--image=nginx", check=False)
    assert refused.returncode != 0 and "decodes protobuf only for simple core kinds" in refused.stderr
    kubectl("delete", "namespace", "team")
    assert kube_api.list_objects("v1", "ConfigMap", "team") == []


def test_get_watch_and_wait_for_delete(crds: Kubectl, kube_api: KubeAPIServer) -> None:
    body = widget("w1")
    body["metadata"]["finalizers"] = ["example.test/hold"]
    crds("apply", "-f", "-", input=as_yaml(body))

    def churn() -> None:
        eventually(lambda: any("watch=true" in path for _, path in kube_api.requests))
        crds("patch", "widget", "w1", "--type=merge", "-p", '{"spec":{"size":"large"}}')
        crds("delete", "widget", "w1", "--wait=false")
        crds("patch", "widget", "w1", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')

    worker = threading.Thread(target=churn)
    worker.start()
    watched = crds("get", "widgets", "-w", "--request-timeout=2s", "--no-headers", check=False)
    worker.join()
    sizes = [row[1] for row in rows(watched.stdout)]
    assert sizes[:2] == ["small", "large"]  # each event printed as a server-side Table row
    assert crds("wait", "--for=delete", "widget/w1", "--timeout=5s").returncode == 0
