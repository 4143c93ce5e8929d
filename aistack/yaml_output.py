"""YAML written for people to read and diff: no anchors, multi-line strings as literal blocks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class _ReadableDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReadableDumper.add_representer(str, _string)


def dump(document: Any) -> str:
    return yaml.dump(document, Dumper=_ReadableDumper, sort_keys=False, width=120, allow_unicode=True)


def dump_all(documents: Iterable[Any]) -> str:
    return "".join("---\n" + dump(document) for document in documents)
