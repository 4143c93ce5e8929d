"""Shared fixtures: the repository layout and the localhost Kubernetes API test server."""

from pathlib import Path

import pytest

pytest_plugins = ["tests.kubeapi.fixtures"]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo() -> Path:
    return REPO
