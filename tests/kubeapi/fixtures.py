"""pytest fixtures: a fresh API server per test, its kubeconfig, and kubectl.

Load with ``pytest_plugins = ["tests.kubeapi.fixtures"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .kubectl import Kubectl
from .server import KubeAPIServer


@pytest.fixture
def kube_api() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as server:
        yield server


@pytest.fixture
def kubeconfig(kube_api: KubeAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Kubeconfig for ``kube_api``; also exported as KUBECONFIG for code under test."""
    path = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    # Both clients read KUBECONFIG once, at import: point their default at this test's file too.
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.setattr("kubernetes_asyncio.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    return path


@pytest.fixture
def kubectl(kubeconfig: Path) -> Kubectl:
    return Kubectl(kubeconfig)
