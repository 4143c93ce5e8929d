"""An in-process Kubernetes API server for tests (no cluster, no Docker).

Real clients (kubectl, ``kubernetes``, ``kubernetes_asyncio``, Airflow's
KubernetesPodOperator) talk to it over HTTP on 127.0.0.1. Load the pytest
fixtures with ``pytest_plugins = ["tests.kubeapi.fixtures"]``.
"""

from .errors import APIError
from .kubectl import KUBECTL, Kubectl, KubectlError, run_kubectl
from .server import KubeAPIServer, KubeletError, PodCallback

__all__ = [
    "KUBECTL",
    "APIError",
    "KubeAPIServer",
    "Kubectl",
    "KubectlError",
    "KubeletError",
    "PodCallback",
    "run_kubectl",
]
