"""Lifecycle, kubeconfig, discovery documents and the command-line runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import kubernetes
import pytest
import yaml
from kubernetes import client

from tests.kubeapi.errors import APIError
from tests.kubeapi.server import KubeAPIServer

pytestmark = pytest.mark.timeout(30)


def get(url: str, accept: str = "application/json") -> tuple[str, object]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers["Content-Type"], json.loads(response.read())


def test_kubeconfig_drives_the_standard_loader(kube_api: KubeAPIServer, kubeconfig: Path) -> None:
    config = yaml.safe_load(kubeconfig.read_text())
    assert config["current-context"] == "aistack-test"
    assert config["clusters"][0]["cluster"]["server"] == kube_api.url
    assert os.environ["KUBECONFIG"] == str(kubeconfig)
    loaded = client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=loaded)
    with client.ApiClient(loaded) as api:
        names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
        assert "default" in names
        assert client.VersionApi(api).get_code().git_version.startswith("v1.37")
    assert ("GET", "/api/v1/namespaces") in kube_api.requests


def test_discovery_documents(kube_api: KubeAPIServer) -> None:
    _, core = get(f"{kube_api.url}/api/v1")
    resources = {r["name"]: r for r in core["resources"]}  # type: ignore[index]
    assert resources["pods"]["shortNames"] == ["po"] and resources["pods"]["categories"] == ["all"]
    assert resources["pods/log"]["verbs"] == ["get"]
    assert resources["namespaces"]["namespaced"] is False
    media, aggregated = get(f"{kube_api.url}/apis", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    assert "as=APIGroupDiscoveryList" in media
    groups = {g["metadata"]["name"]: g for g in aggregated["items"]}  # type: ignore[index]
    deployments = groups["apps"]["versions"][0]["resources"][0]
    assert deployments["resource"] == "deployments" and deployments["subresources"][0]["subresource"] == "status"
    _, legacy = get(f"{kube_api.url}/apis")
    assert "rbac.authorization.k8s.io" in [g["name"] for g in legacy["groups"]]  # type: ignore[index]
    _, openapi = get(f"{kube_api.url}/openapi/v3")
    assert "apis/apps/v1" in openapi["paths"]  # type: ignore[index]


def test_create_object_goes_through_the_api(kube_api: KubeAPIServer, api_client: client.ApiClient) -> None:
    created = kube_api.create_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "direct"}})
    assert created["metadata"]["namespace"] == "default" and created["metadata"]["uid"]
    fetched = client.CoreV1Api(api_client).read_namespaced_config_map("direct", "default")
    assert fetched.metadata.resource_version == created["metadata"]["resourceVersion"]
    with pytest.raises(APIError) as duplicate:
        kube_api.create_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "direct"}})
    assert duplicate.value.code == 409


def test_control_methods_after_stop_fail_clearly() -> None:
    server = KubeAPIServer().start()
    url = server.url
    server.stop()
    with pytest.raises(RuntimeError, match="not running"):
        server.get_object("v1", "Namespace", "default")
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/version", timeout=2)


def test_command_line_runner(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    runner = subprocess.Popen(
        [sys.executable, "-m", "tests.kubeapi", "--port", "0", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert runner.stdout is not None
        banner = runner.stdout.readline()
        runner.stdout.readline()  # the kubeconfig line: written once it is printed
        assert banner.startswith("serving Kubernetes API at http://127.0.0.1:")
        url = banner.split()[-1]
        assert get(f"{url}/version")[1]["major"] == "1"  # type: ignore[index]
        assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == url
    finally:
        runner.send_signal(signal.SIGINT)
        try:
            status = runner.wait(timeout=10)
        except subprocess.TimeoutExpired:
            runner.kill()
            runner.wait()
            raise
    assert status == 0
