"""Fuzzing the manifest validator: whatever a user applies, validation answers in bounded time with
the resource or with errors that name a field; it never raises anything else and never hangs.

Inputs are the seed's manifests with parts replaced by hostile values (wrong types, huge and
deeply nested values, template and shell syntax, control characters), and raw YAML text. The
runs are derandomized (the same examples every time, so a failure reproduces) and each input has
a time budget (hypothesis' deadline).
"""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistack.resources import InvalidResource, parse_resource
from aistack.resources.manifests import load_text
from aistack.resources.validation import validate_documents

SEED = Path(__file__).resolve().parents[2] / "resources" / "seed"
MANIFESTS = [yaml.safe_load((SEED / name).read_text()) for name in ("ollamaagent.yaml", "ollamamodeldefinition.yaml", "taskorchestration.yaml")]
BUDGET = timedelta(seconds=5)  # per input; validating a seed manifest takes about a millisecond
FUZZ = settings(max_examples=300, derandomize=True, deadline=BUDGET, suppress_health_check=[HealthCheck.too_slow])

HOSTILE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "abc\n",
        "bad name!",
        "{{ conn.aws_default.password }}",
        "{% endraw %}",
        "../../etc/passwd",
        "/abs",
        "x" * 70_000,
        "\x00",
        "\u202e",
        "${HOME}",
        "$(id)",
        '{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}',
        '{{printf "%*d" 100000000 1}}',
        "1e400",
        "-1",
        "9" * 400,
        "5m" * 1000,
        "a." * 130,
        "http://169.254.169.254/",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    HOSTILE_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=30,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a manifest a value can be replaced."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


@st.composite
def mutated_manifests(draw: st.DrawFn) -> dict:
    manifest = copy.deepcopy(draw(st.sampled_from(MANIFESTS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        where = draw(st.sampled_from(paths(manifest)[1:]))
        parent = manifest
        for part in where[:-1]:
            parent = parent[part]
        parent[where[-1]] = draw(VALUES)
    return manifest


def check_outcome(data: Any) -> None:
    try:
        parse_resource(data)
    except InvalidResource as exc:
        assert exc.errors, "an invalid resource says why"
        for error in exc.errors:
            assert error.message.strip(), f"an error without a message at {error.path!r}"


@FUZZ
@given(mutated_manifests())
def test_a_mutated_manifest_is_a_resource_or_errors_that_name_the_field(manifest):
    check_outcome(manifest)


@FUZZ
@given(VALUES)
def test_any_document_at_all_is_refused_with_an_error_not_an_exception(document):
    check_outcome(document)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("{}[]:,-&*!|>'\"#%@`\n ab1.?")), max_size=300))
def test_any_yaml_text_loads_into_documents_or_errors(text):
    documents = load_text(text, Path("fuzz.yaml"))
    assert documents
    result = validate_documents(documents, check_references=True)
    assert len(result.resources) + len(result.problems) + len(result.skipped) >= 1
