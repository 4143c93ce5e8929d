"""Read manifests from files and folders into documents that remember where they came from.

Every problem (unreadable file, YAML syntax, duplicate keys) becomes an error attached to a
document, never an exception, so one broken file cannot stop the others from loading.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aistack.resources.errors import FieldError

MANIFEST_SUFFIXES = (".yaml", ".yml")


@dataclass
class Document:
    """One YAML document of a file; `data` is None when it could not be read."""

    source: Path
    index: int
    data: Any = None
    errors: list[FieldError] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.source}#{self.index}"

    @property
    def title(self) -> str:
        """`Kind/name` as far as the document says, for error listings."""
        data = self.data if isinstance(self.data, dict) else {}
        kind = data.get("kind") if isinstance(data.get("kind"), str) else "?"
        meta = data.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) and isinstance(meta.get("name"), str) else "?"
        return f"{kind}/{name}"


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser is ~10x faster


class _StrictLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """A safe loader that rejects duplicate keys, which plain YAML loaders silently overwrite."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}: keep one of them", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Timestamps stay strings, as they are once they have been through the Kubernetes API.
_StrictLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"] for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def manifest_files(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Files as given, folders expanded to their YAML files (recursively, sorted for stable output)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES and p.is_file())
        else:
            yield path


MAX_NESTING = 64
"""Levels of mappings and lists a document may have: real manifests (JSON schemas of artifacts
included) use fewer than 20, and building, validating, pickling and serializing a document all
recurse once per level, so a deeper one would exhaust the stack somewhere on the way."""
NESTED_TOO_DEEPLY = f"the document is nested too deeply (more than {MAX_NESTING} levels of mappings and lists): flatten it"


def _nesting(root: yaml.Node) -> int:
    """The deepest path under `root`, in nodes (a scalar ends a path), found without recursion.

    Only mappings and lists are walked: the scalars under one add a level but are never visited.
    A node shared through aliases is walked again only when reached deeper than before, so each
    node is walked at most MAX_NESTING times (a YAML bomb is a small graph, not a huge tree). An
    alias cycle deepens without end and is reported as too deep. Returns as soon as a path is
    longer than MAX_NESTING."""
    walked: dict[int, int] = {}  # id(node) -> the deepest level it was walked at
    deepest = 1
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, level = stack.pop()
        if level > MAX_NESTING:
            return level
        if walked.get(id(node), 0) >= level:
            continue
        walked[id(node)] = level
        deepest = max(deepest, level)
        if isinstance(node, yaml.MappingNode):
            children: Iterable[yaml.Node] = (child for pair in node.value for child in pair)
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            continue
        for child in children:
            if isinstance(child, yaml.ScalarNode):
                deepest = max(deepest, level + 1)
            else:
                stack.append((child, level + 1))
    return deepest


def load_text(text: str, source: Path) -> list[Document]:
    """Split a YAML stream into documents; empty documents are skipped, as kubectl does."""
    documents: list[Document] = []
    loader = _StrictLoader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if _nesting(node) > MAX_NESTING:
                documents.append(Document(source, index, errors=[FieldError("", NESTED_TOO_DEEPLY)]))
            elif (data := loader.construct_document(node)) is not None:
                documents.append(Document(source, index, data))
            index += 1
    except yaml.YAMLError as exc:
        documents.append(Document(source, index, errors=[FieldError("", _yaml_message(exc))]))
    finally:
        loader.dispose()
    if not documents:
        documents.append(Document(source, 0, errors=[FieldError("", "no resources in this file: it is empty")]))
    return documents


def read_file(path: Path) -> str | Document:
    """A manifest file's text, or a document that says why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Document(path, 0, errors=[FieldError("", f"cannot read file: {exc}")])


def load_documents(paths: Iterable[Path | str]) -> list[Document]:
    documents: list[Document] = []
    for path in manifest_files(paths):
        text = read_file(path)
        documents.extend([text] if isinstance(text, Document) else load_text(text, path))
    return documents


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"YAML syntax error{where}: {problem}"
