"""The one way aistack's tasks reach the cluster: the cncf-kubernetes provider's KubernetesHook.

Every task that reads or writes Kubernetes objects (the listing tasks of the model-build and agent
DAGs, the deploy operator, and, through KubernetesPodOperator's own hook, the build operator) uses
the connection `kubernetes_default` when it exists, else the provider's fallback: in-cluster
credentials, else the kubeconfig. So a connection pointing at another cluster moves a whole DAG
there, never half of it.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

DEFAULT_CONN_ID = KubernetesHook.default_conn_name


def cluster_api_client(conn_id: str = DEFAULT_CONN_ID) -> Any:
    """A kubernetes ApiClient for `conn_id` (see the module docstring for the fallback)."""
    return KubernetesHook(conn_id=conn_id).api_client
