"""aistack.gotemplate's limits: what Go would run for days, or until memory runs out, stops at once
with a TemplateError, while Ollama's real templates stay far inside the budgets.

The timeouts turn a regression (an exponential walk, an endless loop) into a failure instead of a
hung suite.
"""

from __future__ import annotations

import sys
import time

import pytest

from aistack.gotemplate import MAX_RENDER_CHARS, MAX_RENDER_STEPS, MAX_SOURCE_CHARS, Budget, TemplateError, parse

from .test_gotemplate import LLAMA3, message


def doubling(levels: int, leaf: str = "{{ .X }}") -> str:
    """Definitions t1..tN that each call the one before twice: the top level runs the leaf 2^N times."""
    parts = [f'{{{{ define "t0" }}}}{leaf}{{{{ end }}}}']
    for level in range(1, levels + 1):
        call = f'{{{{ template "t{level - 1}" . }}}}'
        parts.append(f'{{{{ define "t{level}" }}}}{call}{call}{{{{ end }}}}')
    parts.append(f'{{{{ template "t{levels}" . }}}}')
    return "".join(parts)


EXPONENTIAL = doubling(40)  # the model template of the report: about 3 KB, 2^40 calls


@pytest.mark.timeout(10)
def test_fields_of_definitions_calling_each_other_exponentially_are_found_at_once() -> None:
    assert 2_000 < len(EXPONENTIAL) < 4_000
    started = time.perf_counter()
    assert parse(EXPONENTIAL).fields() == {"X"}
    assert time.perf_counter() - started < 0.5


def test_fields_follow_a_chain_of_definitions_deeper_than_pythons_recursion_limit() -> None:
    depth = min(sys.getrecursionlimit() + 100, 2600)  # 2600 definitions still fit MAX_SOURCE_CHARS
    chain = (
        '{{define "d0"}}{{.Deep}}{{end}}'
        + "".join(f'{{{{define "d{i}"}}}}{{{{template "d{i - 1}" .}}}}{{{{end}}}}' for i in range(1, depth))
        + f'{{{{template "d{depth - 1}" .}}}}'
    )
    assert parse(chain).fields() == {"Deep"}


@pytest.mark.timeout(10)
def test_rendering_definitions_calling_each_other_exponentially_stops_at_the_step_budget() -> None:
    template = parse(EXPONENTIAL)
    started = time.perf_counter()
    with pytest.raises(TemplateError, match=f"template rendering exceeded {MAX_RENDER_STEPS} steps"):
        template.render({"X": "x"})
    assert time.perf_counter() - started < 5


@pytest.mark.timeout(10)
def test_a_range_over_a_huge_count_stops_at_the_step_budget() -> None:
    with pytest.raises(TemplateError, match="steps"):
        parse("{{ range 1000000000000 }}{{ end }}").render({})


@pytest.mark.timeout(10)
def test_looking_up_variables_among_thousands_counts_against_the_step_budget() -> None:
    declarations = "".join(f"{{{{ $v{i} := {i} }}}}" for i in range(5000))
    with pytest.raises(TemplateError, match="steps"):
        parse(declarations + "{{ range 1000000 }}{{ $v0 }}{{ end }}").render({})


def test_output_beyond_the_character_budget_is_refused() -> None:
    template = parse('{{ range 100 }}{{ printf "%1000000s" "" }}{{ end }}')  # 100 million characters
    with pytest.raises(TemplateError, match=f"template rendering produced more than {MAX_RENDER_CHARS} characters"):
        template.render({})


def test_a_variable_that_doubles_is_stopped_by_the_character_budget() -> None:
    source = '{{ $x := "ab" }}' + "{{ $x = print $x $x }}" * 25 + "{{ len $x }}"  # 2^26 characters
    with pytest.raises(TemplateError, match="produced more than"):
        parse(source).render({})


def test_a_printf_width_repeated_over_a_long_list_is_refused() -> None:
    template = parse('{{ printf "%1000000v" .L }}')  # a million characters per element
    with pytest.raises(TemplateError, match="error calling printf: the result is longer than"):
        template.render({"L": list(range(100))})


def test_one_budget_is_shared_by_every_rendering_it_is_given_to() -> None:
    template = parse("{{ range 30 }}{{ end }}")
    budget = Budget(max_steps=50)
    template.render({}, budget)
    with pytest.raises(TemplateError, match="exceeded 50 steps"):
        template.render({}, budget)
    template.render({})  # without one, every rendering gets a fresh budget


def test_a_source_longer_than_the_limit_is_refused_naming_both_sizes() -> None:
    parse("x" * MAX_SOURCE_CHARS)
    with pytest.raises(TemplateError, match=f"{MAX_SOURCE_CHARS + 1} characters long; at most {MAX_SOURCE_CHARS}"):
        parse("x" * (MAX_SOURCE_CHARS + 1))


def test_the_slowest_source_under_the_limit_still_parses_quickly() -> None:
    declarations = "".join(f"{{{{$a{i}:=1}}}}" for i in range(9000))
    reference = "{{$a8999}}"  # found last among 9000 variables
    source = declarations + reference * ((MAX_SOURCE_CHARS - len(declarations)) // len(reference))
    started = time.perf_counter()
    parse(source).fields()
    assert time.perf_counter() - started < 3


def test_ollamas_llama3_template_over_a_long_conversation_stays_far_inside_the_budgets() -> None:
    messages = [dict(message("user" if i % 2 else "assistant", f"turn {i}"), ToolCalls=None) for i in range(2000)]
    budget = Budget()
    out = parse(LLAMA3).render({"System": "Be brief.", "Tools": None, "Messages": messages}, budget)
    assert out.count("<|eot_id|>") == 2001  # the system prompt and every turn
    assert budget.steps < MAX_RENDER_STEPS / 10
    assert budget.chars < MAX_RENDER_CHARS / 10
