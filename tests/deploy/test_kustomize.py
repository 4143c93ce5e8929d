"""infra/: every kustomization builds with the pinned kubectl, the CRDs come out unchanged, the
Flux layers are consistent with each other and with helm-values/, and what the overlays build
applies to the Kubernetes API test server.

Builds use --load-restrictor=LoadRestrictionsNone because that is how Flux's kustomize-controller
builds (files anywhere inside the source; fluxcd/pkg kustomize.SecureBuild): Flux's infrastructure
layer reads the Helm values from outside its folder. The overlays also build without it, as the
seed's deployment steps run them.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.kubeapi.kubectl import KUBECTL

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
KUSTOMIZATIONS = sorted([p.parent for p in INFRA.rglob("kustomization.yaml") if "cluster-iac" not in p.parts] + [REPO / "crds"])
OVERLAYS = ("dev", "prod")
FLUX_ENTRIES = {"dev": INFRA / "flux" / "dev", "prod": INFRA / "flux" / "layers"}
FLUX_KUSTOMIZATION = "kustomize.toolkit.fluxcd.io/v1"
# Kinds the test server does not serve; everything else the overlays build is applied.
NOT_SERVED = {"PersistentVolumeClaim", "ResourceQuota"}


@cache
def build(folder: Path) -> tuple[dict, ...]:
    out = subprocess.run(
        [str(KUBECTL), "kustomize", "--load-restrictor=LoadRestrictionsNone", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, f"kubectl kustomize {folder.relative_to(REPO)}:\n{out.stderr}"
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d is not None)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_overlays_build_as_the_seed_deploys_them_without_lifting_load_restrictions(overlay: str):
    """`cd infra/overlays/dev && kustomize build . | kubectl apply -f -`: kustomize's default
    restrictions, so every file outside a folder comes in through a kustomization of its own."""
    plain = subprocess.run([str(KUBECTL), "kustomize", "."], cwd=INFRA / "overlays" / overlay, capture_output=True, text=True, timeout=60, check=False)
    assert plain.returncode == 0, plain.stderr
    assert tuple(d for d in yaml.safe_load_all(plain.stdout) if d is not None) == build(INFRA / "overlays" / overlay)


def of_kind(objects, kind: str, api_version: str | None = None) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind and (api_version is None or o["apiVersion"] == api_version)}


def flux_objects(env: str) -> tuple[dict, ...]:
    """What Flux holds on an `env` cluster: the bootstrap path's files and the layers they build."""
    entry = tuple(yaml.safe_load_all((INFRA / "flux" / "clusters" / env / "aistack.yaml").read_text()))
    return entry + build(FLUX_ENTRIES[env])


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(REPO)))
def test_kustomization_builds_objects_with_identity(folder: Path):
    objects = build(folder)
    assert objects
    for obj in objects:
        assert obj.get("apiVersion") and obj.get("kind") and obj.get("metadata", {}).get("name"), obj


def test_crds_folder_still_applies_with_kubectl_apply_f(repo: Path):
    """`kubectl apply -f crds/` reads every .yaml file: the kustomization must not be one."""
    assert sorted(p.name for p in (repo / "crds").glob("*.y*ml")) == ["ollamaagent_crd.yaml", "ollamamodeldefinition_crd.yaml", "taskorchestration_crd.yaml"]


def test_overlays_are_found():
    assert {INFRA / "base", INFRA / "base" / "crds", INFRA / "overlays" / "dev", INFRA / "overlays" / "prod"} <= set(KUSTOMIZATIONS)


def test_crds_build_unchanged():
    """Same documents, same fields, same scalar types as the generated files: kustomize re-serializes
    YAML, so the comparison is on parsed objects, which makes any changed or added field visible."""
    built = of_kind(build(INFRA / "base" / "crds"), "CustomResourceDefinition")
    committed = {}
    for path in sorted((REPO / "crds").glob("*_crd.yaml")):
        crd = yaml.safe_load(path.read_text())
        committed[crd["metadata"]["name"]] = crd
    assert sorted(built) == sorted(committed) and len(committed) == 3
    for name, crd in committed.items():
        assert built[name] == crd, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_holds_the_base_objects(overlay: str):
    def identities(objects):
        return {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects}

    built = build(INFRA / "overlays" / overlay)
    assert identities(build(INFRA / "base")) <= identities(built)
    assert set(of_kind(built, "Namespace")) == {"airflow", "aistack", "aistack-builds", "ollama"}
    agents = of_kind(built, "OllamaAgent")
    assert set(agents) == {"analyzer-agent", "qa-agent", "summarizer-agent"}
    assert {a["metadata"]["namespace"] for a in agents.values()} == {"aistack"}
    assert not of_kind(built, "CustomResourceDefinition"), "the CRDs are a layer of their own (infra/base/crds)"


def test_overlays_differ_in_replicas_resources_and_quota():
    dev, prod = (build(INFRA / "overlays" / o) for o in OVERLAYS)
    assert {a["spec"]["replicas"] for a in of_kind(dev, "OllamaAgent").values()} == {1}
    assert {a["spec"]["resources"]["memory"] for a in of_kind(dev, "OllamaAgent").values()} == {"1Gi"}
    assert {a["spec"]["replicas"] for a in of_kind(prod, "OllamaAgent").values()} == {2}
    assert {a["spec"]["resources"]["memory"] for a in of_kind(prod, "OllamaAgent").values()} == {"8Gi"}
    assert "ResourceQuota" not in {o["kind"] for o in dev}
    quota = of_kind(prod, "ResourceQuota")["model-builds"]
    assert quota["metadata"]["namespace"] == "aistack-builds" and quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "2"


def test_models_land_beside_the_agents():
    models = of_kind(build(INFRA / "base" / "models"), "OllamaModelDefinition")
    agents = of_kind(build(INFRA / "base"), "OllamaAgent")
    for agent in agents.values():
        assert agent["spec"]["modelDefinition"]["name"] in models
    assert {m["metadata"]["namespace"] for m in models.values()} == {"aistack"}


def test_network_policies_admit_only_the_expected_peers():
    built = [o for o in build(INFRA / "base") if o["kind"] == "NetworkPolicy"]
    deny = [p for p in built if p["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}]
    assert sorted(p["metadata"]["namespace"] for p in deny) == ["aistack", "aistack-builds", "ollama"]
    policies = {p["metadata"]["name"]: p for p in built if p not in deny}

    def peers(name: str) -> list[tuple[str, dict]]:
        (rule,) = policies[name]["spec"]["ingress"]
        return [(p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], p.get("podSelector", {})) for p in rule["from"]]

    assert peers("agents-from-airflow-and-prometheus") == [("airflow", {}), ("monitoring", {"matchLabels": {"app.kubernetes.io/name": "prometheus"}})]
    assert policies["agents-from-airflow-and-prometheus"]["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "agent"
    assert peers("ollama-from-agents-and-builds") == [("aistack", {"matchLabels": {"app.kubernetes.io/component": "agent"}}), ("aistack-builds", {})]


@pytest.mark.parametrize("env", OVERLAYS)
def test_flux_layers_depend_on_existing_layers_in_order(env: str):
    objects = flux_objects(env)
    layers = of_kind(objects, "Kustomization", FLUX_KUSTOMIZATION)
    sources = of_kind(objects, "GitRepository") | {"flux-system": {}}
    order: list[str] = []
    pending = dict(layers)
    while pending:  # a topological order; a cycle or a missing dependency leaves layers pending
        ready = [n for n, k in pending.items() if all(d["name"] in order for d in k["spec"].get("dependsOn", []))]
        assert ready, f"unknown or cyclic dependsOn among {sorted(pending)}"
        order += sorted(ready)
        for name in ready:
            del pending[name]
    chain = ["aistack-infrastructure", "aistack-crds", "aistack-apps", "aistack-models"]
    assert [n for n in order if n in chain] == chain
    assert order.index("aistack-apps") < order.index("aistack-runtime") < order.index("aistack-monitoring")
    for layer in layers.values():
        assert layer["spec"]["sourceRef"]["name"] in sources
    assert layers["aistack-crds"]["spec"]["prune"] is False
    assert layers["aistack-apps"]["spec"]["path"] == f"./infra/overlays/{env}"


def test_every_flux_path_exists_and_builds():
    paths = {k["spec"]["path"] for env in OVERLAYS for k in of_kind(flux_objects(env), "Kustomization", FLUX_KUSTOMIZATION).values()}
    assert len(paths) == 9
    for path in paths:
        folder = REPO / path
        assert path.startswith("./") and folder.is_dir(), path
        assert build(folder), path


def test_git_source_is_this_repository():
    (source,) = of_kind(build(INFRA / "flux" / "layers"), "GitRepository").values()
    assert source["spec"]["url"] == "https://github.com/aistack/aistack.git"
    assert source["spec"]["ref"] == {"branch": "main"}


def helm_values_chart(name: str) -> tuple[str, str]:
    """(chart, version) from the first line of helm-values/<name>.yaml: `# Chart: <repo>/<chart> <version> ...`."""
    first = (REPO / "helm-values" / f"{name}.yaml").read_text().splitlines()[0]
    match = re.match(r"# Chart: [\w.-]+/([\w.-]+) (v?[\d.]+)", first)
    assert match, first
    return match.group(1), match.group(2)


@pytest.mark.parametrize(
    ("layer", "release", "values"),
    [
        ("infrastructure", "gpu-operator", "gpu-operator"),
        ("infrastructure", "kube-prometheus-stack", "kube-prometheus-stack"),
        ("runtime", "ollama", "ollama"),
        ("runtime", "airflow", "airflow"),
    ],
)
def test_helm_release_uses_the_values_file_and_its_chart_version(layer: str, release: str, values: str):
    objects = build(INFRA / "flux" / layer)
    spec = of_kind(objects, "HelmRelease")[release]["spec"]
    assert (spec["chart"]["spec"]["chart"], spec["chart"]["spec"]["version"]) == helm_values_chart(values)
    repositories = of_kind(build(INFRA / "flux" / "infrastructure"), "HelmRepository")
    assert spec["chart"]["spec"]["sourceRef"]["name"] in repositories
    (source,) = spec["valuesFrom"]
    config_map = of_kind(objects, "ConfigMap")[source["name"]]
    assert config_map["data"][source["valuesKey"]] == (REPO / "helm-values" / f"{values}.yaml").read_text()
    assert spec["releaseName"] and spec["targetNamespace"]
    for dependency in spec.get("dependsOn", []):
        assert dependency["name"] in of_kind(objects, "HelmRelease")


def test_built_objects_apply_to_the_api_server(kubectl, kube_api, tmp_path: Path):
    def apply(objects) -> None:
        manifest = tmp_path / "objects.yaml"
        manifest.write_text(yaml.safe_dump_all([o for o in objects if o["kind"] not in NOT_SERVED]))
        kubectl("apply", "--server-side", "-f", str(manifest))

    apply(build(INFRA / "base" / "crds"))
    apply(build(INFRA / "overlays" / "prod"))
    apply(build(INFRA / "base" / "models"))
    assert kubectl("get", "ollamaagents", "-n", "aistack", "-o", "name").stdout.split() == [
        "ollamaagent.ai.stack/analyzer-agent",
        "ollamaagent.ai.stack/qa-agent",
        "ollamaagent.ai.stack/summarizer-agent",
    ]
    assert len(kubectl("get", "omd", "-n", "aistack", "-o", "name").stdout.split()) == 5
    role = kube_api.get_object("rbac.authorization.k8s.io/v1", "Role", "aistack-airflow", "aistack-builds")
    assert {"pods", "pods/log", "events"} == {r for rule in role["rules"] for r in rule["resources"]}
    assert kube_api.get_object("v1", "ServiceAccount", "aistack-airflow", "airflow")
    assert len(kube_api.list_objects("networking.k8s.io/v1", "NetworkPolicy", "aistack")) == 2
