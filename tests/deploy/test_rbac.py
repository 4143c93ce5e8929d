"""The RBAC granted to Airflow (aistack/kube/permissions.py) is exactly what aistack's code requests.

aistack's own code paths run against the Kubernetes API test server, which records every
request; each request becomes what the API server's authorizer would check (API group,
resource/subresource, verb, namespace) and must be allowed by a rule, and every rule must be
needed by some recorded request. The code paths: status reads and writes through
aistack.kube.client.ResourceClient, the generator's listing (aistack.pipelines.source), an agent
deployment with a PodDisruptionBudget (aistack.agents.deploy, as the deploy operator drives it),
the watcher trigger's list-then-watch (triggers/task_orchestration.py), and a model build pod
through KubernetesPodOperator (operators/model_build.py, with dag.test()). The watcher's
dispatch (get, status patch) makes the same requests as ResourceClient and is not driven here.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from kubernetes import client

from aistack.agents import deploy as agent_deploy
from aistack.agents.workload import render
from aistack.kube import permissions
from aistack.kube.client import ResourceClient
from aistack.kube.watch import ResourceWatch, collect_batch
from aistack.pipelines import source as orchestration_source
from aistack.pipelines.submissions import PLURAL, is_pending
from aistack.resources import GROUP, OllamaAgent, OllamaModelDefinition, TaskOrchestration, parse_resource
from aistack_airflow.triggers.resource_changes import ResourceChangeTrigger

AGENTS = permissions.AGENTS_NAMESPACE
BUILDS = permissions.BUILDS_NAMESPACE
BUILD_LOG = 'success\nAISTACK_RESULT {"modelHash": "sha256:' + "ab" * 32 + '", "model": "summarizer-model:1.0.0"}\n'


@dataclass(frozen=True)
class Access:
    """What RBAC authorizes for one request."""

    group: str
    resource: str
    verb: str
    namespace: str | None

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}.{self.group or 'core'} in {self.namespace or 'all namespaces'}"


def accesses(method: str, path_qs: str, created: bool) -> list[Access]:
    """The authorizer's view of a request; discovery and OpenAPI documents need no grant."""
    url = urlsplit(path_qs)
    parts = url.path.strip("/").split("/")
    if parts[0] == "api" and len(parts) > 2:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) > 3:
        group, rest = parts[1], parts[3:]
    else:
        return []
    namespace = None
    if rest[0] == "namespaces" and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    resource = "/".join([rest[0], *rest[2:3]])
    named = len(rest) > 1
    if method == "GET":
        verb = "get" if named else "watch" if parse_qs(url.query).get("watch", ["false"])[0].lower() in ("true", "1") else "list"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete" if named else "deletecollection"}[method]
    found = [Access(group, resource, verb, namespace)]
    if created:  # a server-side apply of a missing object is authorized as patch and create
        found.append(Access(group, resource, "create", namespace))
    return found


class Recorder:
    """The accesses of each code path, from the server's log of requests, less the test's own."""

    def __init__(self, kube_api) -> None:
        self.kube_api = kube_api
        self.by_path: dict[str, set[Access]] = {}
        self._pending: set[Access] = set()
        self._seen = len(kube_api.requests)

    def _take(self) -> None:
        requests = self.kube_api.requests
        created = {(m, p) for m, p, status in self.kube_api.responses if m == "PATCH" and status == 201}
        self._pending |= {a for m, p in requests[self._seen :] for a in accesses(m, p, (m, p) in created)}
        self._seen = len(requests)

    def collect(self, code_path: str) -> None:
        self._take()
        self.by_path[code_path], self._pending = self._pending, set()

    @contextmanager
    def aside(self) -> Iterator[None]:
        """Requests made inside are the test's (playing a controller), not aistack's."""
        self._take()
        yield
        self._seen = len(self.kube_api.requests)


def kubelet(log: str, phase: str):
    """Play kubelet: the pod stays Pending a moment (the operator polls its events), then runs."""

    def run(server, pod) -> None:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        time.sleep(1.5)
        server.set_pod_phase(namespace, name, "Running")
        server.append_pod_log(namespace, name, log, container="base")
        server.set_pod_phase(namespace, name, phase, exit_code=0 if phase == "Succeeded" else 1)

    return run


@pytest.fixture
def cluster(kube_api, kubectl, repo: Path):
    kubectl("apply", "-f", str(repo / "crds"))
    for namespace in (AGENTS, BUILDS):
        kubectl("create", "namespace", namespace)
    kubectl("apply", "-n", AGENTS, "-f", str(repo / "examples" / "summarization-pipeline"))
    return kube_api


def drive_status_writes(api: client.ApiClient) -> None:
    resources = ResourceClient(api)
    for kind, name in ((TaskOrchestration, "document-analysis"), (OllamaAgent, "qa-agent"), (OllamaModelDefinition, "qa-model")):
        resources.get(kind, name, AGENTS)
        resources.list(kind)
        resources.patch_status(kind, name, AGENTS, {"message": "recorded"})


def drive_agent_deploy(api: client.ApiClient, recorder: Recorder) -> None:
    """agent_deploy.deploy's two steps (apply, then wait), with the test as the Deployment controller."""
    resources = ResourceClient(api)
    agent = resources.get(OllamaAgent, "qa-agent", AGENTS).model_copy(deep=True)
    agent.spec.replicas = 2  # a PodDisruptionBudget too
    definition = resources.get(OllamaModelDefinition, agent.spec.model_definition.name, AGENTS)
    objects = render(agent, definition)
    assert {o["kind"] for o in objects} == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}
    agent_deploy.apply_objects(api, objects)

    def roll_out(_: float) -> None:
        with recorder.aside():
            apps = client.AppsV1Api(api)
            deployment = apps.read_namespaced_deployment(agent.name, AGENTS)
            body = {"status": {"observedGeneration": deployment.metadata.generation, "replicas": 2, "readyReplicas": 2}}
            apps.patch_namespaced_deployment_status(agent.name, AGENTS, body)

    assert agent_deploy.wait_until_ready(api, agent, timeout=30, interval=0, sleep=roll_out) == (True, "2/2 replicas ready")


def drive_watch(kube_api) -> None:
    watch = ResourceWatch(PLURAL, pending=is_pending, configuration=kube_api.asyncio_configuration)
    events, _ = asyncio.run(collect_batch(watch, batch_seconds=0.5, idle_timeout=10))
    assert [e["name"] for e in events] == ["document-analysis"]
    assert watch.connects == 1


def drive_asset_watches(kubeconfig: Path) -> None:
    """The asset watchers of model definitions and agents: a list, then a watch (triggers/resource_changes.py)."""

    async def first_event(plural: str) -> list[str]:
        events = ResourceChangeTrigger(plural=plural, kubeconfig=str(kubeconfig), batch_seconds=0.3).run()
        try:
            event = await asyncio.wait_for(anext(events), 20)
        finally:
            await events.aclose()
        return [change["name"] for change in event.payload["changes"]]

    assert "summarizer-model" in asyncio.run(first_event("ollamamodeldefinitions"))
    assert asyncio.run(first_event("ollamaagents"))


def drive_build_pods(kube_api) -> None:
    """A failed build (the operator labels the pod checked and lists its events), then a good one."""
    import tests.airflow_dags.model_build_dag as module

    for phase, state in (("Failed", "failed"), ("Succeeded", "success")):
        dag = importlib.reload(module).dag
        build = dag.get_task("build")
        build.namespace, build.definition_namespace = BUILDS, AGENTS
        kube_api.on_pod_created = kubelet(BUILD_LOG, phase)
        assert dag.test().state == state
    status = kube_api.get_object("ai.stack/v1alpha1", "OllamaModelDefinition", "summarizer-model", AGENTS)["status"]
    assert status["phase"] == "Complete"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_requests_of_aistack_are_exactly_the_granted_rules(cluster, kubeconfig, airflow_db):
    recorder = Recorder(cluster)
    with cluster.sync_api_client() as api:
        drive_status_writes(api)
        recorder.collect("ResourceClient get/list/patch_status")
        assert orchestration_source.from_cluster().valid
        assert orchestration_source.from_cluster(("aistack", "document-analysis")).valid
        recorder.collect("orchestration_source.from_cluster")
        drive_agent_deploy(api, recorder)
        recorder.collect("agent_deploy")
    drive_watch(cluster)
    recorder.collect("ResourceWatch")
    drive_asset_watches(kubeconfig)
    recorder.collect("ResourceChangeTrigger")
    drive_build_pods(cluster)
    recorder.collect("OllamaModelBuildOperator")

    denied, granted = [], {}
    for path, found in recorder.by_path.items():
        assert found, f"{path} made no request"
        for access in sorted(found, key=str):
            rule = permissions.allows(access.group, access.resource, access.verb, access.namespace)
            if rule is None:
                denied.append(f"{path}: {access}")
            else:
                granted.setdefault(rule, set()).add(access.verb)
    assert not denied, "not granted by aistack/kube/permissions.py:\n" + "\n".join(denied)
    unused = [
        f"{r.resource} in {r.namespace or 'all namespaces'}: granted {sorted(r.verbs)}, requested {sorted(granted.get(r, ()))}"
        for r in permissions.PERMISSIONS
        if r.admission is None and granted.get(r) != set(r.verbs)
    ]
    assert not unused, "granted but never requested:\n" + "\n".join(unused)


def test_owner_reference_rules_cover_the_admission_plugin(repo: Path):
    """Agent objects carry a blocking ownerReference to their OllamaAgent; with
    OwnerReferencesPermissionEnforcement on, setting one needs delete on the object and update on
    the owner's finalizers. Those grants, and only those, are the admission rules."""
    docs = list(yaml.safe_load_all((repo / "examples" / "summarization-pipeline" / "agents.yaml").read_text()))
    agent = parse_resource({**docs[1], "metadata": {**docs[1]["metadata"], "namespace": AGENTS, "uid": "u-1"}})
    agent.spec.replicas = 2
    definition = parse_resource(yaml.safe_load((repo / "models" / "qa" / "model.yaml").read_text()))
    needed = {(GROUP, "ollamaagents/finalizers", "update")}
    plurals = {
        "ConfigMap": ("", "configmaps"),
        "Service": ("", "services"),
        "Deployment": ("apps", "deployments"),
        "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    }
    for obj in render(agent, definition):
        (owner,) = obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["blockOwnerDeletion"]) == ("OllamaAgent", True)
        needed.add((*plurals[obj["kind"]], "delete"))
    admission = {(r.group, r.resource, v) for r in permissions.PERMISSIONS if r.admission for v in r.verbs}
    assert admission == needed
    assert {r.namespace for r in permissions.PERMISSIONS if r.admission} == {AGENTS}


def test_rbac_manifest_grants_the_rules_to_airflow(repo: Path):
    objects = list(yaml.safe_load_all((repo / "infra" / "base" / "rbac.yaml").read_text()))
    roles = {(o["kind"], o["metadata"].get("namespace")): o for o in objects if o["kind"] in ("Role", "ClusterRole")}
    granted = {
        (ns, g, r, v) for (_, ns), role in roles.items() for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    assert granted == {(r.namespace, r.group, r.resource, v) for r in permissions.PERMISSIONS for v in r.verbs}
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert {(b["roleRef"]["kind"], b["metadata"].get("namespace")) for b in bindings} == set(roles)
    for binding in bindings:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "aistack-airflow", "namespace": "airflow"}]
