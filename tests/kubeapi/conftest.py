"""Fixtures for the fixture's own tests.

The project's root conftest loads ``tests.kubeapi.fixtures`` as a plugin; it is
registered here too when missing, so these tests also run on their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.kubeapi.server import KubeAPIServer
from tests.kubeapi.widgets import GADGET_CRD, WIDGET_CRD

PLUGIN = "tests.kubeapi.fixtures"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)


@pytest.fixture
def api_client(kube_api: KubeAPIServer) -> Iterator[client.ApiClient]:
    with kube_api.sync_api_client() as api:
        yield api


@pytest.fixture
def widgets(api_client: client.ApiClient) -> client.CustomObjectsApi:
    """CustomObjectsApi with the Widget and Gadget CRDs registered."""
    extensions = client.ApiextensionsV1Api(api_client)
    for crd in (WIDGET_CRD, GADGET_CRD):
        extensions.create_custom_resource_definition(crd)
    return client.CustomObjectsApi(api_client)
