"""Every Kubernetes permission aistack's Airflow components use, in one list, and its RBAC manifest.

Airflow's scheduler, DAG processor, triggerer and workers run as one ServiceAccount; the RBAC
objects in infra/base/rbac.yaml are generated from `PERMISSIONS` (`aistack crds generate`), and
tests/deploy/test_rbac.py records the requests aistack's code makes against the API test server
and checks both directions: each request is allowed here, and each rule here was requested.

Rules without a namespace hold in every namespace (a ClusterRole): TaskOrchestrations are watched
and listed cluster-wide. The agents' objects and the build pods stay in their own namespaces
(Roles), so Airflow cannot touch workloads elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aistack.resources import GROUP
from aistack.yaml_output import dump_all

SERVICE_ACCOUNT = "aistack-airflow"
AIRFLOW_NAMESPACE = "airflow"
AGENTS_NAMESPACE = "aistack"
BUILDS_NAMESPACE = "aistack-builds"
OWNER_REFERENCES_PLUGIN = "OwnerReferencesPermissionEnforcement"
LABELS = {"app.kubernetes.io/part-of": "aistack"}


@dataclass(frozen=True)
class Rule:
    """Verbs on one resource (`plural` or `plural/subresource`) of one API group.

    `namespace` None means every namespace. `admission` names the admission plugin whose check
    needs the rule when no request of aistack's uses it (the plugin authorizes a request against
    permissions other than the request's own).
    """

    group: str
    resource: str
    verbs: tuple[str, ...]
    namespace: str | None
    why: str
    admission: str | None = None


PERMISSIONS: tuple[Rule, ...] = (
    Rule(
        GROUP,
        "taskorchestrations",
        ("get", "list", "watch"),
        None,
        "generator (orchestration_source) gets/lists them; the watcher's trigger lists then watches them",
    ),
    Rule(GROUP, "taskorchestrations/status", ("patch",), None, "the watcher records Accepted/observedGeneration; pipeline runs write progress (run_status)"),
    Rule(
        GROUP,
        "ollamaagents",
        ("get", "list", "watch"),
        None,
        "ollama_agents lists the agents, the deploy operator and the A2A agent directory get one; the aistack://ollamaagents asset watcher lists then watches them",
    ),
    Rule(GROUP, "ollamaagents/status", ("patch",), None, "the deploy operator writes phase, ready, URL and the Ready condition"),
    Rule(
        GROUP,
        "ollamamodeldefinitions",
        ("get", "list", "watch"),
        None,
        "ollama_model_builds lists the definitions; the build and deploy operators get one; "
        "the aistack://ollamamodeldefinitions asset watcher lists then watches them",
    ),
    Rule(GROUP, "ollamamodeldefinitions/status", ("patch",), None, "the build operator writes phase, digest and the Built condition"),
    Rule("", "configmaps", ("create", "patch"), AGENTS_NAMESPACE, "agent_deploy server-side applies the agent's config (an apply that creates needs create)"),
    Rule("", "services", ("create", "patch"), AGENTS_NAMESPACE, "agent_deploy server-side applies the agent's Service"),
    Rule(
        "apps",
        "deployments",
        ("create", "get", "patch"),
        AGENTS_NAMESPACE,
        "agent_deploy server-side applies the Deployment, then gets it until the rollout is ready",
    ),
    Rule(
        "policy",
        "poddisruptionbudgets",
        ("create", "patch"),
        AGENTS_NAMESPACE,
        "agent_deploy server-side applies a PodDisruptionBudget for agents with more than one replica",
    ),
    Rule("", "configmaps", ("delete",), AGENTS_NAMESPACE, "setting ownerReferences (the OllamaAgent) requires delete on the object", OWNER_REFERENCES_PLUGIN),
    Rule("", "services", ("delete",), AGENTS_NAMESPACE, "setting ownerReferences (the OllamaAgent) requires delete on the object", OWNER_REFERENCES_PLUGIN),
    Rule("apps", "deployments", ("delete",), AGENTS_NAMESPACE, "setting ownerReferences (the OllamaAgent) requires delete on the object", OWNER_REFERENCES_PLUGIN),
    Rule(
        "policy",
        "poddisruptionbudgets",
        ("delete",),
        AGENTS_NAMESPACE,
        "setting ownerReferences (the OllamaAgent) requires delete on the object",
        OWNER_REFERENCES_PLUGIN,
    ),
    Rule(
        GROUP,
        "ollamaagents/finalizers",
        ("update",),
        AGENTS_NAMESPACE,
        "blockOwnerDeletion on the agent objects' ownerReferences requires update on the owner's finalizers",
        OWNER_REFERENCES_PLUGIN,
    ),
    Rule(
        "",
        "pods",
        ("create", "delete", "get", "list", "patch"),
        BUILDS_NAMESPACE,
        "OllamaModelBuildOperator (KubernetesPodOperator) creates the build pod, finds it by labels, polls "
        "it, labels a failed one checked (so a retry does not reattach) and deletes it",
    ),
    Rule("", "pods/log", ("get",), BUILDS_NAMESPACE, "the build operator streams the build pod's log and reads its tail for the status"),
    Rule("", "events", ("list",), BUILDS_NAMESPACE, "KubernetesPodOperator logs the pod's events while it starts and when it fails (it polls, not watches)"),
)


def allows(group: str, resource: str, verb: str, namespace: str | None) -> Rule | None:
    """The rule that allows a request (`namespace` None: a cluster-wide request), if any."""
    for rule in PERMISSIONS:
        if (rule.group, rule.resource) == (group, resource) and verb in rule.verbs:
            if rule.namespace is None or rule.namespace == namespace:
                return rule
    return None


def _rules(rules: Iterable[Rule]) -> list[dict[str, Any]]:
    return [{"apiGroups": [r.group], "resources": [r.resource], "verbs": sorted(r.verbs)} for r in rules]


def _binding(kind: str, role_kind: str, namespace: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": SERVICE_ACCOUNT, "labels": LABELS}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": SERVICE_ACCOUNT},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": AIRFLOW_NAMESPACE}],
    }


def render() -> str:
    """infra/base/rbac.yaml."""
    return "# Generated by `aistack crds generate` from aistack/kube/permissions.py. Do not edit by hand.\n" + dump_all(manifests())


def manifests() -> list[dict[str, Any]]:
    """The ServiceAccount, a ClusterRole for the cluster-wide rules and a Role per namespace, each bound."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT, "namespace": AIRFLOW_NAMESPACE, "labels": LABELS}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": SERVICE_ACCOUNT, "labels": LABELS},
            "rules": _rules(r for r in PERMISSIONS if r.namespace is None),
        },
        _binding("ClusterRoleBinding", "ClusterRole", None),
    ]
    namespaces = sorted({r.namespace for r in PERMISSIONS if r.namespace is not None})
    for namespace in namespaces:
        objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": LABELS},
                "rules": _rules(r for r in PERMISSIONS if r.namespace == namespace),
            }
        )
        objects.append(_binding("RoleBinding", "Role", namespace))
    return objects
