"""Validate a set of manifests together: each on its own, then the references between them.

This is what `aistack validate` reports and what loaders use to keep going past bad
resources: a result lists the good resources and, separately, every problem of the bad ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aistack.manifests import Document, load_documents
from aistack.resources import GROUP, KINDS, AnyResource, OllamaAgent, OllamaModelDefinition, TaskOrchestration
from aistack.resources.errors import FieldError, InvalidResource, did_you_mean, suggest
from aistack.resources.parse import parse_resource


@dataclass
class Problem:
    document: Document
    errors: list[FieldError]

    def lines(self) -> list[str]:
        return [f"{self.document.where} {self.document.title}: {error}" for error in self.errors]


@dataclass
class ValidationResult:
    resources: list[tuple[Document, AnyResource]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: list[Document] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def of_kind(self, cls: type[AnyResource]) -> list[AnyResource]:
        return [resource for _, resource in self.resources if isinstance(resource, cls)]


def validate_paths(paths: Iterable[Path | str], check_references: bool = True) -> ValidationResult:
    return validate_documents(load_documents(paths), check_references)


def validate_documents(documents: Iterable[Document], check_references: bool = True) -> ValidationResult:
    """Parse every document; with `check_references`, also resolve agentRef and modelDefinition.

    References are resolved among the documents given, so check them when validating a
    self-contained set (an example folder); skip them for resources whose agents and models
    already live in the cluster.
    """
    result = ValidationResult()
    documents = list(documents)
    parsed: list[tuple[Document, AnyResource]] = []
    for document in documents:
        if document.errors:
            result.problems.append(Problem(document, document.errors))
            continue
        if is_foreign(document.data):
            result.skipped.append(document)
            continue
        try:
            parsed.append((document, parse_resource(document.data)))
        except InvalidResource as exc:
            result.problems.append(Problem(document, exc.errors))
    index = _Index(documents)
    for document, resource in parsed:
        errors = index.duplicate_errors(document, resource)
        if check_references:
            errors += index.reference_errors(resource)
        if errors:
            result.problems.append(Problem(document, errors))
        else:
            result.resources.append((document, resource))
    result.problems.sort(key=lambda p: (str(p.document.source), p.document.index))
    return result


class _Index:
    """Names of every document by (kind, namespace), valid or not, so a reference to a resource
    that is itself broken is not also reported as missing."""

    def __init__(self, documents: list[Document]) -> None:
        self.first: dict[tuple[str, str, str], Document] = {}
        self.versions: dict[tuple[str, str], Any] = {}
        for document in documents:
            key = _identity(document.data)
            if key and key not in self.first:
                self.first[key] = document
            if key and key[0] == OllamaModelDefinition.KIND:
                self.versions[key[1:]] = _tags_version(document.data)

    def names(self, kind: str, namespace: str) -> list[str]:
        return [name for k, ns, name in self.first if k == kind and ns == namespace]

    def duplicate_errors(self, document: Document, resource: AnyResource) -> list[FieldError]:
        """A second copy with the same spec is harmless (as when applied twice); a different one conflicts."""
        original = self.first[(resource.kind, resource.namespace, resource.name)]
        if original is document or original.data.get("spec") == document.data.get("spec"):
            return []
        return [
            FieldError(
                "metadata.name",
                f'{resource.kind} "{resource.name}" is defined differently at {original.where}: keep one definition',
            )
        ]

    def reference_errors(self, resource: AnyResource) -> list[FieldError]:
        if isinstance(resource, OllamaAgent):
            return self._model_reference_errors(resource)
        if isinstance(resource, TaskOrchestration):
            return [
                error
                for index, step in enumerate(resource.spec.pipeline)
                for error in self._missing(OllamaAgent.KIND, resource.namespace, step.agent_ref, f"spec.pipeline[{index}].agentRef")
            ]
        return []

    def _model_reference_errors(self, agent: OllamaAgent) -> list[FieldError]:
        ref = agent.spec.model_definition
        missing = self._missing(OllamaModelDefinition.KIND, agent.namespace, ref.name, "spec.modelDefinition.name")
        if missing:
            return missing
        actual = self.versions.get((agent.namespace, ref.name))
        if actual is not None and actual != ref.version:
            return [
                FieldError(
                    "spec.modelDefinition.version",
                    f'OllamaModelDefinition "{ref.name}" has version "{actual}", not "{ref.version}": pin "{actual}" or publish "{ref.version}"',
                )
            ]
        return []

    def _missing(self, kind: str, namespace: str, name: str, path: str) -> list[FieldError]:
        known = self.names(kind, namespace)
        if name in known:
            return []
        return [FieldError(path, f'no {kind} "{name}" in namespace "{namespace}"{did_you_mean(name, known)}')]


def is_foreign(data: Any) -> bool:
    """Other Kubernetes objects (a Kustomization, a Secret) that share a folder with aistack's.

    Anything whose group or kind looks like a mistyped aistack one is not foreign: it is
    validated, so a typo in apiVersion or kind is reported instead of silently skipped.
    """
    if not isinstance(data, dict):
        return False
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return False
    group = api_version.rpartition("/")[0]
    return suggest(group, [GROUP]) is None and suggest(kind, KINDS) is None


def _identity(data: Any) -> tuple[str, str, str] | None:
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
        return None
    kind, meta = data.get("kind"), data["metadata"]
    name, namespace = meta.get("name"), meta.get("namespace") or "default"
    if isinstance(kind, str) and isinstance(name, str) and isinstance(namespace, str):
        return kind, namespace, name
    return None


def _tags_version(data: dict[str, Any]) -> Any:
    try:
        tags = data["spec"]["build"].get("tags") or {}
        return tags.get("version", "latest")
    except (KeyError, AttributeError, TypeError):
        return None
