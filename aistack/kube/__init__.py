"""Kubernetes access: the one client for aistack's custom resources, watches, and what aistack
installs in a cluster (the CRDs and the RBAC of Airflow's ServiceAccount), generated from the code.

- `client`: `api_client()` (in-cluster, else the kubeconfig) and `ResourceClient`, typed access to
  the three kinds (get, list, status patches); every custom-resource call goes through it.
- `watch`: `ResourceWatch`, the list-then-watch loop with resource versions and 410 recovery that
  the triggers run.
- `crds`, `crd_schema`, `crd_docs`: CustomResourceDefinitions and docs/resources.md from the
  resource models.
- `permissions`: every permission aistack's Airflow components use, and infra/base/rbac.yaml.

Layer: above `aistack.resources`, below models, agents and pipelines. Imports no Airflow.
"""
