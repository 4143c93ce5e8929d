"""An in-process Kubernetes API server for tests (no cluster, no Docker).

Real clients (kubectl, ``kubernetes``, ``kubernetes_asyncio``, Airflow's
KubernetesPodOperator) talk to it over HTTP on 127.0.0.1, so tests exercise
the same requests a cluster would see. Typical use::

    def test_something(kube_api, kubeconfig, kubectl):      # tests.kubeapi.fixtures
        kubectl("apply", "-f", "crds/")                     # pinned kubectl, strict validation
        with kube_api.sync_api_client() as api:             # kubernetes.client.ApiClient
            kubernetes.client.CoreV1Api(api).create_namespaced_pod("default", pod)
        kube_api.set_pod_phase("default", "p", "Running")   # the test plays kubelet
        kube_api.append_pod_log("default", "p", "hello\\n")
        kube_api.set_pod_phase("default", "p", "Succeeded")

``KubeAPIServer(on_pod_created=callback)`` scripts pods automatically;
``compact()`` and ``drop_watches()`` provoke 410 Gone and broken watches.
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
