"""The CRD manifests are generated from the models, structural, and committed up to date."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from aistack.kube.crds import crd_file_name, generated_files
from aistack.resources import RESOURCE_TYPES

# Keys a structural schema may use (apiextensions.k8s.io/v1 JSONSchemaProps, less $ref and friends).
ALLOWED = {
    "type",
    "description",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "format",
    "nullable",
    "anyOf",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
}


def test_committed_files_match_the_models(repo: Path):
    stale = [str(p.relative_to(repo)) for p, text in generated_files(repo).items() if p.read_text() != text]
    assert not stale, f"run `aistack crds generate`: {stale}"


def _walk(node: dict[str, Any], path: str = ""):
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}.*")


@pytest.mark.parametrize("cls", RESOURCE_TYPES, ids=lambda c: c.KIND)
def test_crd_schema_is_structural(repo: Path, cls):
    crd = yaml.safe_load((repo / "crds" / crd_file_name(cls)).read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert set(node) <= ALLOWED, f"{path}: {set(node) - ALLOWED}"
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer", "minimum": 0}, {"type": "string"}]
        else:
            assert "type" in node, f"{path} has no type"
            assert "anyOf" not in node, path
        if "properties" in node:
            assert "additionalProperties" not in node, path
        if node.get("x-kubernetes-list-type") == "map":
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in node["items"]["required"], f"{path}: list-map key {key} must be required"


@pytest.mark.parametrize("cls", RESOURCE_TYPES, ids=lambda c: c.KIND)
def test_crd_describes_the_kind_for_kubectl(repo: Path, cls):
    crd = yaml.safe_load((repo / "crds" / crd_file_name(cls)).read_text())
    spec = crd["spec"]
    version = spec["versions"][0]
    assert crd["metadata"]["name"] == f"{cls.PLURAL}.ai.stack"
    assert spec["names"]["categories"] == ["aistack"]
    assert spec["names"]["shortNames"]
    assert version["subresources"] == {"status": {}}
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"phase", "observedGeneration", "conditions"} <= set(status)
    condition = status["conditions"]["items"]["properties"]
    assert {"type", "status", "reason", "message", "lastTransitionTime"} <= set(condition)
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase"
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_orchestration_columns_show_progress(repo: Path):
    crd = yaml.safe_load((repo / "crds" / "taskorchestration_crd.yaml").read_text())
    columns = {c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Progress"] == ".status.progress"


def test_reference_docs_list_every_spec_field(repo: Path):
    docs = (repo / "docs" / "resources.md").read_text()
    for field in (
        "spec.pipeline[].dependsOn",
        "spec.pipeline[].inputFrom[].artifactName",
        "spec.errorPolicy.backoffLimit",
        "spec.agentCard.authentication.type",
        "spec.build.buildResources.gpu",
        "status.nodes.<key>.phase",
    ):
        assert f"`{field}`" in docs, field
