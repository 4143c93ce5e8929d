"""Fuzzing the Go template engine: whatever template a Modelfile or a request carries, parsing,
fields() and rendering answer within a time budget, with a result or a TemplateError, never
another exception and never a hang.

Templates are drawn from a grammar of Go template fragments (actions, pipes, nested parentheses,
variables, if/with/range with else, define/template/block calling each other, break/continue,
trim markers, printf with flags, widths and precisions up to and past Go's limits) plus a few
broken pieces, so most inputs parse and the executor is exercised, not only the lexer. The runs
are derandomized with fixed seeds (the same examples every time, so a failure reproduces), and a
small rendering Budget keeps each input fast while still running into it often.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from aistack.gotemplate import Budget, TemplateError, parse

DEADLINE = timedelta(seconds=2)  # per input; most take well under a millisecond
FUZZ = settings(max_examples=300, database=None, deadline=DEADLINE, suppress_health_check=[HealthCheck.too_slow])

DATA = {
    "System": "Be brief.",
    "Prompt": "Hi <b> & 'you'",
    "Response": "",
    "Suffix": "",
    "Think": False,
    "Tools": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}],
    "Messages": [{"Role": "system", "Content": "s"}, {"Role": "user", "Content": "Hi\n"}, {"Role": "assistant", "Content": "Hello", "ToolCalls": None}],
    "N": 3,
    "F": 2.5,
    "Big": 10**30,
    "Nil": None,
    "Map": {"b": 2, "a": [1, "x"]},
    "Odd": "a\ud800",
}
FIELDS = [
    ".System",
    ".Prompt",
    ".Messages",
    ".Tools",
    ".N",
    ".F",
    ".Big",
    ".Nil",
    ".Map",
    ".Map.a",
    ".Odd",
    ".Role",
    ".Content",
    ".Missing",
    ".Messages.Role",
    "$.Prompt",
    "$.Messages",
    "$m.Role",
    "$x",
]
LITERALS = [
    '"hi"',
    "`raw\ntext`",
    '""',
    "0",
    "1",
    "-3",
    "40",
    "0x1F",
    "1e3",
    "2.5",
    "'x'",
    "true",
    "false",
    "nil",
    "100000000",
    "-1000001",
    "1000000",
    "55296",
    '"\\u00e9\\x00"',
]
FUNCTIONS = ["and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "slice", "print", "println", "html", "js", "urlquery", "json", "currentDate"]
NAMES = ['"a"', '"b"']
PRELUDE = "{{ $x := .Prompt }}{{ $i := 0 }}{{ $m := . }}"  # the grammar's variables, declared where it runs

FORMATS = st.builds(
    lambda flags, width, precision, verb: '"%' + flags + width + precision + verb + '"',
    st.sampled_from(["", "-", "0", "+", " ", "#", "-0", "+ "]),
    st.sampled_from(["", "*", "3", "1000000", "10000009", "10000010", "99999999999"]),
    st.sampled_from(["", ".", ".*", ".2", ".1000000", ".99999999999"]),
    st.sampled_from(list("vdsqxXcUobeEfgGtT%") + ["", "²", "%d"]),
)
ATOMS = st.one_of(st.sampled_from(LITERALS), st.sampled_from(FIELDS), st.sampled_from(["$", ".", "$i"]), FORMATS)


def pipelines(operand: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A command (a function with arguments, printf with a format, or an operand), then up to two
    function calls the value is piped into."""
    arguments = st.lists(operand, max_size=3)
    call = st.one_of(
        st.builds(lambda name, args: " ".join([name, *args]), st.sampled_from(FUNCTIONS), arguments),
        st.builds(lambda fmt, args: " ".join(["printf", fmt, *args]), FORMATS, arguments),
    )
    return st.builds(lambda first, rest: " | ".join([first, *rest]), st.one_of(call, operand), st.lists(call, max_size=2))


OPERANDS = st.recursive(ATOMS, lambda inner: pipelines(inner).map(lambda pipe: f"({pipe})"), max_leaves=8)
PIPELINES = pipelines(OPERANDS)
DELIMITERS = st.sampled_from([("{{ ", " }}"), ("{{- ", " -}}"), ("{{", "}}"), ("{{- ", " }}")])


def action(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda delims, inner: delims[0] + inner + delims[1], DELIMITERS, text)


SIMPLE = st.one_of(
    st.sampled_from(["text ", "\n  ", "<|im_start|>", "{ }", "a}}b"]),
    action(PIPELINES),
    action(st.builds(lambda var, op, pipe: f"{var} {op} {pipe}", st.sampled_from(["$x", "$i", "$m"]), st.sampled_from([":=", "="]), PIPELINES)),
    action(
        st.builds(
            lambda name, arg: f"template {name} {arg}".rstrip(),
            st.sampled_from([*NAMES, '""']),
            st.sampled_from(["", ".", "$", ".Messages", "1", "(index .Messages 0)"]),
        )
    ),
    st.just("{{- /* a comment */ -}}"),
)
BROKEN = st.sampled_from(
    [
        "{{ break }}",
        "{{ end }}",
        "{{ else }}",
        "{{",
        "}}",
        "{{ .X",
        "{{ (1 }}",
        '{{ define "a" }}',
        "{{ 1 | 2 }}",
        "{{ $undeclared }}",
        "{{ nofunc }}",
        '{{ "\\q" }}',
        "{{ 0x }}",
        "{{ 1i }}",
    ]
)


def blocks(body: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """if/with (with else, else if, else with), range (with variables, break, continue, else) and block."""
    otherwise = st.one_of(
        st.just(lambda keyword: ""),
        body.map(lambda b: lambda keyword: "{{ else }}" + b),
        st.builds(lambda pipe, b: lambda keyword: f"{{{{ else {keyword} {pipe} }}}}{b}", PIPELINES, body),
    )
    branch = st.builds(
        lambda keyword, pipe, inside, rest: f"{{{{ {keyword} {pipe} }}}}{inside}{rest(keyword)}{{{{ end }}}}",
        st.sampled_from(["if", "with"]),
        PIPELINES,
        body,
        otherwise,
    )
    heads = st.one_of(
        PIPELINES,
        PIPELINES.map(lambda pipe: f"$i, $m := {pipe}"),
        st.sampled_from(["3", "1000000000", ".Messages", "$i, $m := .Map", "$m := .Tools"]),
    )
    stops = st.sampled_from(["{{ break }}", "{{ continue }}", "{{ if $i }}{{ break }}{{ end }}"])
    loop_body = st.lists(st.one_of(body, stops), max_size=3).map("".join)
    loop = st.builds(
        lambda head, inside, rest: f"{{{{ range {head} }}}}{inside}{rest}{{{{ end }}}}",
        heads,
        loop_body,
        st.one_of(st.just(""), body.map(lambda b: "{{ else }}" + b)),
    )
    block = st.builds(lambda inside: f'{{{{ block "c" . }}}}{PRELUDE}{inside}{{{{ end }}}}', body)
    return st.one_of(branch, loop, block)


BODIES = st.recursive(
    st.lists(SIMPLE, max_size=3).map("".join),
    lambda inner: st.lists(st.one_of(SIMPLE, blocks(inner)), max_size=4).map("".join),
    max_leaves=12,
)
TEMPLATES = st.builds(
    lambda defines, body: "".join(defines) + PRELUDE + body,
    st.lists(
        st.builds(lambda name, body: f"{{{{ define {name} }}}}{PRELUDE}{body}{{{{ end }}}}", st.sampled_from(NAMES), BODIES),
        max_size=2,
        unique_by=lambda define: define.split('"')[1],
    ),
    BODIES,
)


def outcome(source: str) -> None:
    """Parse, ask the fields, render strictly and not: a result or a TemplateError, nothing else."""
    try:
        template = parse(source)
    except TemplateError:
        return
    assert isinstance(template.fields(), set)
    for strict in (True, False):
        budget = Budget(max_steps=20_000, max_chars=200_000)
        try:
            out = parse(source, strict_fields=strict).render(DATA, budget)
        except TemplateError:
            continue
        assert isinstance(out, str) and len(out) <= budget.max_chars


@pytest.mark.timeout(60)
@FUZZ
@seed(20240611)
@given(TEMPLATES)
def test_any_template_from_the_grammar_renders_or_fails_with_a_template_error(source: str) -> None:
    outcome(source)


@pytest.mark.timeout(60)
@FUZZ
@seed(7)
@given(st.lists(st.one_of(SIMPLE, BROKEN, st.text(alphabet="{}-./$()|\"'` :=%*0123456789abcdefghij", max_size=12)), max_size=8).map("".join))
def test_fragments_glued_at_random_parse_or_fail_with_a_template_error(source: str) -> None:
    outcome(source)


@FUZZ
@seed(1_000_000)
@given(st.integers(min_value=-3_000_000, max_value=3_000_000), st.integers(min_value=-999, max_value=999))
def test_printf_star_width_pads_up_to_a_million_and_is_refused_beyond(width: int, value: int) -> None:
    out = parse('{{ printf "%*d" .W .V }}').render({"W": width, "V": value})
    if abs(width) > 1_000_000:
        assert out == f"%!(BADWIDTH){value}"
    else:
        assert len(out) == max(abs(width), len(str(value))) and out.strip() == str(value)
        assert out.startswith(str(value)) if width < 0 else out.endswith(str(value))


@FUZZ
@seed(10_000_009)
@given(st.integers(min_value=1, max_value=10**12))
def test_printf_written_width_is_honoured_up_to_gos_limit_and_ends_the_format_beyond(width: int) -> None:
    out = parse(f'{{{{ len (printf "%{width}d|" 7) }}}}').render({})
    if width <= 10_000_009:  # fmt's parsenum gives up on a number already past a million before a digit
        assert out == str(max(width, 1) + 1)
    else:
        assert out == str(len("%!(NOVERB)%!(EXTRA int=7)"))
