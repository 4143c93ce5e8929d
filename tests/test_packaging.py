"""The wheel's packages: pyproject.toml lists them by hand (the provider package is installed from
the Airflow folders through package-dir), so this keeps the list and the tree in step."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def folder_of(package: str) -> Path:
    mapped = SETUPTOOLS["package-dir"]
    if package in mapped:
        return REPO / mapped[package]
    parent, _, name = package.rpartition(".")
    return folder_of(parent) / name if parent else REPO / name


def test_every_listed_package_is_a_folder_with_an_init():
    missing = [p for p in SETUPTOOLS["packages"] if not (folder_of(p) / "__init__.py").is_file()]
    assert missing == []


def test_every_package_folder_of_the_tree_is_listed():
    listed = {folder_of(p).resolve() for p in SETUPTOOLS["packages"]}
    roots = {folder_of(p) for p in SETUPTOOLS["packages"] if "." not in p or p in SETUPTOOLS["package-dir"]}
    found = {init.parent.resolve() for root in roots for init in root.rglob("__init__.py") if "__pycache__" not in init.parts}
    assert sorted(map(str, found - listed)) == []


def test_no_generic_top_level_import_names():
    assert {p.split(".")[0] for p in SETUPTOOLS["packages"]} == {"aistack", "aistack_airflow"}
