"""Validate a set of manifests together: each on its own, then the references between them.

This is what `aistack validate` reports and what loaders use to keep going past bad
resources: a result lists the good resources and, separately, every problem of the bad ones.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from aistack import pickles
from aistack.resources import GROUP, KINDS, AnyResource, OllamaAgent, OllamaModelDefinition, TaskOrchestration
from aistack.resources.errors import FieldError, InvalidResource, did_you_mean, suggest
from aistack.resources.manifests import Document, load_documents, load_text, manifest_files, read_file
from aistack.resources.parse import parse_resource

R = TypeVar("R", OllamaModelDefinition, OllamaAgent, TaskOrchestration)

Outcome = AnyResource | list[FieldError] | None
"""A document on its own: its resource, its errors, or None for another system's object (skipped)."""


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

    def of_kind(self, cls: type[R]) -> list[R]:
        return [resource for _, resource in self.resources if isinstance(resource, cls)]


def validate_paths(paths: Iterable[Path | str], check_references: bool = True, cache: Path | None = None) -> ValidationResult:
    """Validate the manifests of files and folders, as `validate_documents` does.

    With `cache` (a file), what each file's text parsed into is reused while the text is
    unchanged, for loaders that read the same folder again and again (Airflow re-parses the
    pipelines' DAG file every 30 s or so); the checks between documents always run afresh.
    """
    if cache is None:
        return validate_documents(load_documents(paths), check_references)
    store = OutcomeCache(cache)
    outcomes = [pair for path in manifest_files(paths) for pair in store.outcomes(path)]
    store.save()
    return _combine(outcomes, check_references)


def validate_documents(documents: Iterable[Document], check_references: bool = True) -> ValidationResult:
    """Parse every document; with `check_references`, also resolve agentRef and modelDefinition.

    References are resolved among the documents given, so check them when validating a
    self-contained set (an example folder); skip them for resources whose agents and models
    already live in the cluster.
    """
    return _combine([(document, _outcome(document)) for document in documents], check_references)


def _outcome(document: Document) -> Outcome:
    if document.errors:
        return document.errors
    if is_foreign(document.data):
        return None
    try:
        return parse_resource(document.data)
    except InvalidResource as exc:
        return exc.errors


def _combine(outcomes: list[tuple[Document, Outcome]], check_references: bool) -> ValidationResult:
    """The result of documents whose outcomes are known: adds the checks between them."""
    result = ValidationResult()
    parsed: list[tuple[Document, AnyResource]] = []
    for document, found in outcomes:
        if found is None:
            result.skipped.append(document)
        elif isinstance(found, list):
            result.problems.append(Problem(document, found))
        else:
            parsed.append((document, found))
    index = _Index([document for document, _ in outcomes])
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


_Entry = list[tuple[int, Any, list[FieldError], Outcome]]  # a file's documents: index, data, load errors, outcome


class OutcomeCache:
    """Each manifest file's documents and their outcomes, by the SHA-256 of the file's text; and
    each object listed from a cluster, by its uid and resourceVersion (which change with every
    write to it), so a listing validates only what changed since the last one.

    Entries are keyed by content, not by modification time, so an edited file is never served
    stale; and the whole cache by the code that produced it (`_code_fingerprint`), so a changed
    schema validates everything again. It is a pickle (see `aistack.pickles`) because restoring
    validated resources is several times faster than parsing and validating them. It is
    rewritten only when its entries changed, and keeps the files seen last.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stored = pickles.read(path, _code_fingerprint())
        self.seen: dict[str, Any] = {}

    def parsed(self, item: dict[str, Any]) -> AnyResource | list[FieldError]:
        """A listed object as a resource, or the errors that say why it is invalid."""
        meta = item.get("metadata")
        uid, version = (meta.get("uid"), meta.get("resourceVersion")) if isinstance(meta, dict) else (None, None)
        key = f"object:{uid}/{version}" if isinstance(uid, str) and uid and isinstance(version, str) and version else None
        found: AnyResource | list[FieldError] | None = (self.seen.get(key) or self.stored.get(key)) if key else None
        if found is None:
            try:
                found = parse_resource(item)
            except InvalidResource as exc:
                found = exc.errors
        if key:
            self.seen[key] = found
        return found

    def outcomes(self, path: Path) -> list[tuple[Document, Outcome]]:
        text = read_file(path)
        if isinstance(text, Document):
            return [(text, _outcome(text))]
        key = hashlib.sha256(text.encode()).hexdigest()
        entry = self.seen.get(key) or self.stored.get(key)
        if entry is None:
            entry = [(document.index, document.data, document.errors, _outcome(document)) for document in load_text(text, path)]
        self.seen[key] = entry
        return [(Document(path, index, data, errors), result) for index, data, errors, result in entry]

    def save(self) -> None:
        if self.seen.keys() != self.stored.keys():
            pickles.write(self.path, _code_fingerprint(), self.seen)


@functools.cache
def _code_fingerprint() -> bytes:
    """A hash of the code outcomes depend on (the resource models and the gotemplate checks they
    use, YAML loading, is_foreign) and of the libraries and Python that pickled them."""
    resources = Path(__file__).parent  # this module and manifests.py live here too
    sources = [*sorted(resources.rglob("*.py")), resources.parent / "gotemplate.py"]
    return pickles.fingerprint(sources, sys.version, f"pydantic {pydantic.VERSION}", f"pyyaml {yaml.__version__}")


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
