"""aistack.gotemplate: Ollama's Go templates, rejected and rendered exactly as Go would.

The expected outputs below are Go's: they were produced by Go's text/template, configured as
Ollama configures it (missingkey=zero, plus its json function), on the same data.
"""

from __future__ import annotations

import datetime

import pytest

from aistack.gotemplate import Template, TemplateError, parse


def render(source: str, data: dict | None = None, *, strict: bool = True) -> str:
    return parse(source, strict_fields=strict).render(data if data is not None else {})


def parse_error(source: str) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        parse(source)
    return caught.value


def render_error(source: str, data: dict, *, strict: bool = True) -> TemplateError:
    template = parse(source, strict_fields=strict)
    with pytest.raises(TemplateError) as caught:
        template.render(data)
    return caught.value


def message(role: str, content: str, **extra: object) -> dict:
    return {"Role": role, "Content": content, **extra}


CONVERSATION = [
    message("system", "You are terse."),
    message("user", "Hi"),
    message("assistant", "Hello!"),
    message("user", "What is 2+2?"),
]

# --------------------------------------------------------------------------------------------
# The templates Ollama models ship, rendered byte for byte

CHATML = "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"


def test_chatml_renders_a_conversation_exactly() -> None:
    assert render(CHATML, {"Messages": CONVERSATION}) == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_chatml_with_no_messages_leaves_only_the_assistant_header() -> None:
    assert render(CHATML, {"Messages": []}) == "<|im_start|>assistant\n"


LEGACY = (
    "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n{{ .Response }}<|im_end|>"
)


def test_legacy_template_with_a_system_prompt() -> None:
    data = {"System": "Be kind.", "Prompt": "Hi", "Response": ""}
    assert render(LEGACY, data) == ("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<|im_end|>")


def test_legacy_template_without_a_system_prompt_drops_the_whole_block() -> None:
    data = {"System": "", "Prompt": "Hi", "Response": "Hello"}
    assert render(LEGACY, data) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>"


LLAMA3 = """{{- if or .System .Tools }}<|start_header_id|>system<|end_header_id|>
{{- if .System }}

{{ .System }}
{{- end }}
{{- if .Tools }}

Cutting Knowledge Date: December 2023

When you receive a tool call response, use the output to format an answer to the orginal user question.

You are a helpful assistant with tool calling capabilities.
{{- end }}<|eot_id|>
{{- end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<|start_header_id|>user<|end_header_id|>
{{- if and $.Tools $last }}

Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.

Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}. Do not use variables.

{{ range $.Tools }}
{{- . }}
{{ end }}
{{ .Content }}<|eot_id|>
{{- else }}

{{ .Content }}<|eot_id|>
{{- end }}{{ if $last }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}
{{- else if eq .Role "assistant" }}<|start_header_id|>assistant<|end_header_id|>
{{- if .ToolCalls }}
{{ range .ToolCalls }}
{"name": "{{ .Function.Name }}", "parameters": {{ .Function.Arguments }}}{{ end }}
{{- else }}

{{ .Content }}
{{- end }}{{ if not $last }}<|eot_id|>{{ end }}
{{- else if eq .Role "tool" }}<|start_header_id|>ipython<|end_header_id|>

{{ .Content }}<|eot_id|>{{ if $last }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}
{{- end }}
{{- end }}"""

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}},
    },
}
TOOL_PREAMBLE = (
    "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n\n"
    "When you receive a tool call response, use the output to format an answer to the orginal user question.\n\n"
    "You are a helpful assistant with tool calling capabilities.<|eot_id|>"
)


def test_llama3_renders_a_chat_and_marks_only_the_last_turn() -> None:
    data = {
        "System": "Be brief.",
        "Tools": None,
        "Messages": [
            message("user", "Hi", ToolCalls=None),
            message("assistant", "Hello!", ToolCalls=None),
            message("user", "Bye", ToolCalls=None),
        ],
    }
    assert render(LLAMA3, data) == (
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_llama3_renders_tools_for_the_last_user_turn() -> None:
    data = {"System": "", "Tools": [WEATHER_TOOL], "Messages": [message("user", "Weather in Paris?", ToolCalls=None)]}
    assert render(LLAMA3, data) == (
        TOOL_PREAMBLE + "<|start_header_id|>user<|end_header_id|>\n\n"
        "Given the following functions, please respond with a JSON for a function call with its proper arguments"
        " that best answers the given prompt.\n\n"
        'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.'
        " Do not use variables.\n\n"
        "map[function:map[description:Weather for a city name:get_weather parameters:map[properties:map[city:"
        "map[type:string]] required:[city] type:object]] type:function]\n\n"
        "Weather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_llama3_renders_a_tool_call_and_its_result() -> None:
    call = {"Function": {"Name": "get_weather", "Arguments": {"city": "Paris"}}}
    data = {
        "System": "",
        "Tools": [WEATHER_TOOL],
        "Messages": [
            message("user", "Weather in Paris?", ToolCalls=None),
            message("assistant", "", ToolCalls=[call]),
            message("tool", "21C", ToolCalls=None),
        ],
    }
    assert render(LLAMA3, data) == (
        TOOL_PREAMBLE + "<|start_header_id|>user<|end_header_id|>\n\nWeather in Paris?<|eot_id|>"
        '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": map[city:Paris]}'
        "<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n21C<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_fields_of_the_llama3_template_are_the_root_ones_only() -> None:
    # .Role, .Content, .ToolCalls and .Function belong to messages, not to the data Ollama passes.
    assert parse(LLAMA3).fields() == {"System", "Tools", "Messages"}


USER_SUMMARY = """{{ if .System }}{{.System}}{{ end }}

Context: {{.Input}}

Instructions: Create a summary that includes:
- Main points
- Key findings
- Action items

Response format:
{{.ResponseFormat}}
"""


def test_user_template_reports_its_unknown_variables() -> None:
    assert parse(USER_SUMMARY).fields() == {"System", "Input", "ResponseFormat"}


def test_user_template_fails_in_strict_mode_naming_the_field_and_its_place() -> None:
    error = render_error(USER_SUMMARY, {"System": "Be brief.", "Prompt": "a long text"})
    assert (error.line, error.column) == (3, 12)
    assert str(error) == (
        'template line 3, column 12: executing {{.Input}} at <.Input>: can\'t evaluate field Input: no key "Input" in the mapping (its keys: Prompt, System)'
    )


def test_user_template_prints_no_value_like_a_go_map_when_not_strict() -> None:
    out = render(USER_SUMMARY, {"System": "Be brief.", "Prompt": "x"}, strict=False)
    assert out.startswith("Be brief.\n\nContext: <no value>\n\nInstructions:")
    assert out.endswith("Response format:\n<no value>\n")


def test_fields_counts_dollar_fields_anywhere_but_not_variables_or_with_bodies() -> None:
    source = (
        "{{ .A.B }}{{ $.C }}{{ if .D }}{{ .E }}{{ end }}{{ with .F }}{{ .G }}{{ $.H }}{{ else }}{{ .I }}{{ end }}"
        '{{ $x := .J }}{{ $x.K }}{{ printf "%s" (.L) | print .M }}{{ define "t" }}{{ .N }}{{ end }}'
        '{{ template "t" . }}'
    )
    assert parse(source).fields() == {"A", "C", "D", "E", "F", "H", "I", "J", "L", "M", "N"}


def test_a_long_conversation_renders_quickly() -> None:
    messages = [message("user" if i % 2 else "assistant", f"turn {i}") for i in range(2000)]
    out = parse(CHATML).render({"Messages": messages})
    assert out.count("<|im_start|>") == 2001
    assert out.endswith("<|im_start|>user\nturn 1999<|im_end|>\n<|im_start|>assistant\n")
    llama = parse(LLAMA3).render({"System": "", "Tools": None, "Messages": [dict(m, ToolCalls=None) for m in messages]})
    assert llama.count("<|eot_id|>") == 2000


# --------------------------------------------------------------------------------------------
# Text, trim markers and comments


def test_trim_markers_remove_all_adjacent_whitespace_including_newlines() -> None:
    assert render("a  \n\t {{- .X -}} \n\n b", {"X": "x"}) == "axb"
    assert render("a \n{{- .X }} \nb", {"X": "x"}) == "ax \nb"
    assert render("a \n{{ .X -}} \nb", {"X": "x"}) == "a \nxb"


def test_a_trim_marker_needs_a_blank_next_to_it() -> None:
    assert render("{{-3}} {{ -3 }}") == "-3 -3"  # "{{-3" is the number -3, not a trim marker
    error = parse_error("{{ .X-}}")
    assert str(error) == "template line 1, column 6: bad character U+002D '-'"


def test_trim_markers_on_block_actions_shape_multiline_templates() -> None:
    source = "{{- if .T }}\n  yes\n{{- else }}\n  no\n{{- end }}\n"
    assert render(source, {"T": True}) == "\n  yes\n"
    assert render(source, {"T": False}) == "\n  no\n"


def test_comments_print_nothing_and_can_trim() -> None:
    assert render("a{{/* note */}}b") == "ab"
    assert render("a \n {{- /* note\nover lines */ -}} \n b") == "ab"
    assert render("a {{/* note */ -}}  b") == "a b"


def test_text_that_looks_like_braces_is_kept() -> None:
    assert render('{"a": {{ .A }}} }} {', {"A": 1}) == '{"a": 1} }} {'


# --------------------------------------------------------------------------------------------
# Control structures


def test_else_if_chains_pick_the_first_true_branch() -> None:
    source = '{{ if eq .R "a" }}A{{ else if eq .R "b" }}B{{ else if .X }}X{{ else }}other{{ end }}'
    assert [render(source, {"R": r, "X": x}) for r, x in [("a", 0), ("b", 0), ("c", 1), ("c", 0)]] == [
        "A",
        "B",
        "X",
        "other",
    ]


def test_truthiness_follows_go() -> None:
    source = "{{ if . }}T{{ else }}F{{ end }}"
    falsy = [False, 0, 0.0, "", [], {}, None]
    truthy = [True, 1, -1, 0.5, "0", [0], {"a": None}, " "]
    assert [parse(source).render(v) for v in falsy] == ["F"] * len(falsy)
    assert [parse(source).render(v) for v in truthy] == ["T"] * len(truthy)


def test_with_moves_the_dot_and_has_else_and_else_with() -> None:
    source = "{{ with .A }}a={{ . }}{{ else with .B }}b={{ . }}{{ else }}none{{ end }}"
    assert render(source, {"A": "x", "B": "y"}) == "a=x"
    assert render(source, {"A": "", "B": "y"}) == "b=y"
    assert render(source, {"A": "", "B": ""}) == "none"


def test_range_over_lists_with_index_and_element_variables() -> None:
    data = {"L": ["a", "b", "c"]}
    assert render("{{ range .L }}[{{ . }}]{{ end }}", data) == "[a][b][c]"
    assert render("{{ range $i, $v := .L }}{{ $i }}={{ $v }} {{ end }}", data) == "0=a 1=b 2=c "
    assert render("{{ range $v := .L }}{{ $v }}{{ end }}", data) == "abc"


def test_range_over_a_mapping_visits_keys_in_sorted_order() -> None:
    data = {"M": {"b": 2, "a": 1, "c": 3}}
    assert render("{{ range $k, $v := .M }}{{ $k }}={{ $v }};{{ end }}", data) == "a=1;b=2;c=3;"
    assert render("{{ range .M }}{{ . }}{{ end }}", data) == "123"


def test_range_else_runs_only_for_an_empty_or_nil_collection() -> None:
    source = "{{ range .L }}{{ . }}{{ else }}empty{{ end }}"
    assert render(source, {"L": []}) == "empty"
    assert render(source, {"L": None}) == "empty"
    assert render(source, {"L": {}}) == "empty"
    assert render(source, {"L": [1]}) == "1"


def test_break_and_continue() -> None:
    data = {"L": [1, 2, 3, 4, 5]}
    assert render("{{ range .L }}{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}", data) == "123"
    assert render("{{ range .L }}{{ if eq . 2 4 }}{{ continue }}{{ end }}{{ . }}{{ end }}", data) == "135"
    # break leaves the loop, not the else: the else is only for an empty collection
    assert render("{{ range .L }}{{ break }}{{ else }}empty{{ end }}done", data) == "done"


def test_range_over_a_string_is_an_error() -> None:
    error = render_error("{{ range .S }}x{{ end }}", {"S": "abc"})
    assert error.reason == "executing {{ range .S }} at <.S>: range can't iterate over abc"


# --------------------------------------------------------------------------------------------
# Variables


def test_variables_declare_assign_and_reach_the_root() -> None:
    source = "{{ $n := 0 }}{{ range .L }}{{ $n = . }}{{ end }}last={{ $n }} {{ range .L }}{{ $.Name }}{{ end }} {{ with .Sub }}{{ .X }}{{ $.Name }}{{ end }}"
    assert render(source, {"L": [1, 2, 3], "Name": "n", "Sub": {"X": "x"}}) == "last=3 nnn xn"


def test_an_action_that_declares_a_variable_prints_nothing() -> None:
    assert render("[{{ $x := .A }}]{{ $x }}", {"A": "a"}) == "[]a"


def test_a_variable_declared_inside_a_block_is_not_visible_after_end() -> None:
    error = parse_error("{{ if .A }}{{ $x := 1 }}{{ end }}\n{{ $x }}")
    assert str(error) == 'template line 2, column 4: undefined variable "$x"'
    error = parse_error("{{ range $i, $m := .M }}{{ end }}{{ $m }}")
    assert error.reason == 'undefined variable "$m"'


def test_variables_of_an_if_pipeline_live_in_both_branches() -> None:
    source = "{{ if $x := .A }}yes {{ $x }}{{ else }}no {{ $x }}{{ end }}"
    assert render(source, {"A": "a"}) == "yes a"
    assert render(source, {"A": ""}) == "no "


def test_variable_fields_and_chained_fields() -> None:
    data = {"A": {"B": {"C": "deep"}}, "Messages": CONVERSATION}
    assert render("{{ .A.B.C }} {{ $a := .A }}{{ $a.B.C }} {{ (index .Messages 1).Content }}", data) == "deep deep Hi"


# --------------------------------------------------------------------------------------------
# Literals, pipelines and functions


def test_literals() -> None:
    source = '{{ "a\\tb\\n\\"q\\"\\\\" }}|{{ `raw\\n` }}|{{ 42 }}|{{ -7 }}|{{ 0x1F }}|{{ 1.5 }}|{{ 1.0 }}|{{ 1e3 }}|{{ \'a\' }}|{{ true }}|{{ false }}'
    assert render(source) == 'a\tb\n"q"\\|raw\\n|42|-7|31|1.5|1|1000|97|true|false'


def test_values_print_like_go() -> None:
    data = {"F": 0.7, "One": 1.0, "Big": 1e6, "Small": 0.00001, "I": 3, "B": True, "L": ["a", 1, None], "M": {"b": [1, 2], "a": "x"}, "N": None, "E": []}
    out = render("{{ .F }} {{ .One }} {{ .Big }} {{ .Small }} {{ .I }} {{ .B }} {{ .L }} {{ .M }} {{ .N }} {{ .E }}", data)
    assert out == "0.7 1 1e+06 1e-05 3 true [a 1 <nil>] map[a:x b:[1 2]] <no value> []"


def test_pipelines_pass_the_previous_value_as_the_last_argument() -> None:
    data = {"Name": "ada", "L": [1, 2, 3]}
    assert render('{{ .Name | printf "%s!" }}', data) == "ada!"
    assert render('{{ .L | len | printf "%d items" }}', data) == "3 items"
    assert render('{{ "b" | printf "%s-%s" "a" }}', data) == "a-b"
    assert render("{{ (len .L) }} {{ (slice .L 1) }}", data) == "3 [2 3]"


def test_printf_verbs() -> None:
    source = '{{ printf "%s|%d|%v|%q|%f|%.2f|%5d|%-4s|%05.1f|%x|%t|%%|%v" .S .I .L .S .F .F .I "ab" .F 255 true .M }}'
    data = {"S": 'say "hi"', "I": 42, "L": [1, "a"], "F": 3.14159, "M": {"k": 1}}
    assert render(source, data) == 'say "hi"|42|[1 a]|"say \\"hi\\""|3.141590|3.14|   42|ab  |003.1|ff|true|%|map[k:1]'


def test_printf_reports_mismatches_inline_like_go() -> None:
    assert render('{{ printf "%d %s" "x" }}') == "%!d(string=x) %!s(MISSING)"
    assert render('{{ printf "%s" "a" "b" }}') == "a%!(EXTRA string=b)"


# Go's own cases (fmt_test.go: startests, "erroneous things", "Incomplete format specification"),
# written as templates: a width or precision beyond a million from an argument is refused, one in
# the format that grows past it ends the format, and a "." ending it is the verb.
@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('"%*d" 4 42', "  42"),
        ('"%-*d" 4 42', "42  "),
        ('"%*d" -4 42', "42  "),
        ('"%-*d" -4 42', "42  "),
        ('"%.*d" 4 42', "0042"),
        ('"%*.*d" 8 4 42', "    0042"),
        ('"%0*d" 4 42', "0042"),
        ('"%*d" nil 42', "%!(BADWIDTH)42"),
        ('"%*d" 10000000 42', "%!(BADWIDTH)42"),
        ('"%*d" -10000000 42', "%!(BADWIDTH)42"),
        ('"%*d" 100000000 1', "%!(BADWIDTH)1"),
        ('"%*d" 1000001 1', "%!(BADWIDTH)1"),
        ('"%.*d" nil 42', "%!(BADPREC)42"),
        ('"%.*d" -1 42', "%!(BADPREC)42"),
        ('"%.*d" 10000000 42', "%!(BADPREC)42"),
        ('"%*d" 5 "foo"', "%!d(string=  foo)"),
        ('"%*% %d" 20 5', "% 5"),
        ('"%*" 4', "%!(NOVERB)"),
        ('"%s %" "hello"', "hello %!(NOVERB)"),
        ('"%s %.2" "hello"', "hello %!(NOVERB)"),
        ('"%017091901790959340919092959340919017929593813360" 0', "%!(NOVERB)%!(EXTRA int=0)"),
        ('"%184467440737095516170v" 0', "%!(NOVERB)%!(EXTRA int=0)"),
        ('"%10000010d" 1', "%!(NOVERB)%!(EXTRA int=1)"),
        ('"%.10000010d" 1', "%!(NOVERB)%!(EXTRA int=1)"),
        ('"%010.2" "12345"', "%!(NOVERB)%!(EXTRA string=12345)"),
        ('"%." 3', "%!.(int=3)"),
        ('"%5." 3', "%!.(int=    3)"),
        ('"%²d" 3', "%!²(int=3)d"),  # only ASCII digits make a width
    ],
)
def test_printf_width_and_precision_follow_go_including_its_limits(arguments: str, expected: str) -> None:
    assert render("{{ printf " + arguments + " }}") == expected


def test_printf_widths_up_to_gos_limits_are_honoured() -> None:
    assert render('{{ len (printf "%*d" 1000000 1) }}') == "1000000"
    assert render('{{ len (printf "%*d" -1000000 1) }}') == "1000000"
    # fmt's parsenum stops adding digits only once the number is already past a million.
    assert render('{{ len (printf "%10000009d" 1) }}') == "10000009"


def test_a_rune_that_is_a_surrogate_or_out_of_range_prints_as_the_replacement_character() -> None:
    assert render('{{ printf "%c|%q|%c" 55296 57343 -1 }}') == "\ufffd|'\ufffd'|\ufffd"
    assert render('{{ printf "%U" -5 }}') == "U+FFFFFFFFFFFFFFFB"  # Go formats the int as a uint64


def test_urlquery_of_a_lone_surrogate_from_json_data_escapes_the_replacement_character() -> None:
    assert render("{{ urlquery .Prompt }}", {"Prompt": "a\ud800b"}) == "a%EF%BF%BDb"


def test_print_and_println_space_operands_like_go() -> None:
    assert render('{{ print "a" "b" 1 2 "c" }}|{{ println "a" 1 }}|{{ print .N }}', {"N": None}) == "ab1 2c|a 1\n|<nil>"


def test_json_encodes_like_go_marshal() -> None:
    data = {"Tool": {"name": "f", "args": {"b": 1.0, "a": [1, 2.5, None]}, "on": True}, "S": "<a & b>", "Text": 'line\n"q"', "N": None}
    assert render("{{ json .Tool }}", data) == '{"args":{"a":[1,2.5,null],"b":1},"name":"f","on":true}'
    assert render("{{ json .S }} {{ json .Text }} {{ json .N }}", data) == ('"\\u003ca \\u0026 b\\u003e" "line\\n\\"q\\"" null')
    assert render("{{ json 1e21 }} {{ json 0.0000001 }} {{ json 100000000000000000000.0 }}") == ("1e+21 1e-7 100000000000000000000")


def test_index_slice_and_len() -> None:
    data = {"L": ["a", "b", "c"], "M": {"k": "v"}, "S": "héllo", "Grid": [[1, 2], [3, 4]]}
    assert render('{{ index .L 1 }} {{ index .M "k" }} {{ index .Grid 1 0 }} {{ index .M "missing" }}', data) == ("b v 3 <no value>")
    assert render("{{ slice .L 1 }} {{ slice .L 0 2 }} {{ slice .L }} {{ slice .S 0 1 }}", data) == "[b c] [a b] [a b c] h"
    # Go measures strings in bytes
    assert render("{{ len .L }} {{ len .M }} {{ len .S }}", data) == "3 1 6"


def test_eq_with_several_arguments_is_true_if_any_matches() -> None:
    assert render('{{ eq .R "system" "user" }} {{ eq .R "tool" "assistant" }}', {"R": "user"}) == "true false"
    assert render('{{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1.5 2.5 }}') == ("true true true true false")


def test_eq_of_different_types_is_an_error_but_nil_compares_false() -> None:
    assert render('{{ eq .N "x" }} {{ eq .N nil }}', {"N": None}) == "false true"
    error = render_error("{{ eq .I 1.0 }}", {"I": 1})
    assert error.reason.endswith("error calling eq: incompatible types for comparison")


def test_and_or_return_the_deciding_value_and_short_circuit() -> None:
    data = {"E": "", "S": "s", "L": [1], "Z": 0}
    assert render("{{ or .E .Z .S }}|{{ or .E .Z }}|{{ and .S .L }}|{{ and .S .Z .L }}", data) == "s|0|[1]|0"
    # The operands after the deciding one are never evaluated, so their errors never happen.
    assert render("{{ and .Z (index .L 9) }}|{{ or .S (index .L 9) }}", data) == "0|s"
    assert render("{{ not .E }} {{ not .S }}", data) == "true false"


def test_html_js_and_urlquery_escape_like_go() -> None:
    data = {"S": "<a href='x'>&\"</a>"}
    assert render("{{ html .S }}", data) == "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"
    assert render("{{ js .S }}", data) == "\\u003Ca href\\u003D\\'x\\'\\u003E\\u0026\\\"\\u003C/a\\u003E"
    assert render('{{ urlquery "a b&c=d/é" }}') == "a+b%26c%3Dd%2F%C3%A9"


def test_current_date_is_today_in_go_layout() -> None:
    assert render("{{ currentDate }}") == datetime.date.today().strftime("%Y-%m-%d")


def test_define_template_and_block() -> None:
    source = (
        '{{ define "msg" }}<{{ .Role }}:{{ .Content }}>{{ end }}'
        '{{ range .Messages }}{{ template "msg" . }}{{ end }}'
        '{{ block "tail" .Messages }}({{ len . }}){{ end }}'
    )
    assert render(source, {"Messages": CONVERSATION[1:3]}) == "<user:Hi><assistant:Hello!>(2)"
    error = render_error('{{ template "nope" }}', {})
    assert error.reason == 'executing {{ template "nope" }}: template "nope" not defined'


# --------------------------------------------------------------------------------------------
# Parse errors: each names the line, the column and what is wrong


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hello\n{{ .Name", 'template line 2, column 1: unclosed action: no "}}" before the end of the template'),
        ("a\nb {{ if .X }}y{{ end }}{{ end }}", 'template line 2, column 27: unexpected "end" (no open block)'),
        ("intro\n{{ if .System }}\nno end here", 'template line 2, column 4: unexpected EOF: "if" opened at line 2 is never closed'),
        ("{{ range .M }}\n{{ if .X }}{{ end }}", 'template line 1, column 4: unexpected EOF: "range" opened at line 1 is never closed'),
        ("x {{ else }}", 'template line 1, column 6: unexpected "else" (no open if, with or range)'),
        ("{{ if .A }}{{ else }}{{ else }}{{ end }}", 'template line 1, column 25: unexpected second "else" in "if" (expected "end")'),
        ("{{ range .A }}{{ else if .B }}{{ end }}", 'template line 1, column 23: "else if" is not allowed in a "range" block'),
        ("{{ toTypeScriptType .Tools }}", 'template line 1, column 4: function "toTypeScriptType" not defined'),
        ("{{ .A = 1 }}", 'template line 1, column 7: unexpected "=" in operand'),
        ("{{ | .A }}", 'template line 1, column 4: unexpected "|" in command'),
        ("{{ }}", "template line 1, column 4: missing value for command"),
        ("{{ .A | 1 }}", "template line 1, column 9: non executable command in pipeline stage 2"),
        ("{{ (.A }}", "template line 1, column 8: unclosed left paren"),
        ("{{ .A) }}", "template line 1, column 6: unexpected right paren"),
        ("{{ if }}{{ end }}", "template line 1, column 7: missing value for if"),
        ("line\n  {{ $y }}", 'template line 2, column 6: undefined variable "$y"'),
        ("{{ break }}", "template line 1, column 4: {{break}} outside {{range}}"),
        ("{{/* note */ }}", "template line 1, column 13: comment ends before closing delimiter"),
        ("{{/* note", "template line 1, column 1: unclosed comment"),
        ('{{ "open }}', "template line 1, column 4: unterminated quoted string"),
        ('{{ "\\q" }}', 'template line 1, column 4: invalid string "\\q": unknown escape sequence \\q'),
        ("{{ 1a }}", 'template line 1, column 4: bad number syntax: "1a"'),
        ("{{ 99999999999999999999 }}", 'template line 1, column 4: integer overflow: "99999999999999999999"'),
        ("{{ .A @ }}", 'template line 1, column 7: unexpected "@" in operand'),
        ("{{ range $a, $b, $c := .L }}{{ end }}", "template line 1, column 16: too many declarations in range"),
        ('{{ end }}{{ define "x" }}', 'template line 1, column 4: unexpected "end" (no open block)'),
        ('{{ if .A }}{{ define "x" }}{{ end }}{{ end }}', 'template line 1, column 15: unexpected "define": templates can only be defined at the top level'),
    ],
)
def test_parse_errors_name_the_place_and_the_problem(source: str, expected: str) -> None:
    error = parse_error(source)
    assert str(error) == expected
    assert f"template line {error.line}, column {error.column}: {error.reason}" == expected


def test_template_error_is_a_value_error() -> None:
    assert issubclass(TemplateError, ValueError)


# --------------------------------------------------------------------------------------------
# Execution errors: each names the failing action


def test_wrong_argument_count_names_the_function() -> None:
    error = render_error("{{ .A }}\n{{ len .A .B }}", {"A": "a", "B": "b"})
    assert str(error) == ("template line 2, column 4: executing {{ len .A .B }} at <len .A .B>: wrong number of args for len: want 1 got 2")


def test_index_out_of_range() -> None:
    error = render_error("{{ index .Messages 5 }}", {"Messages": CONVERSATION})
    assert error.reason == ("executing {{ index .Messages 5 }} at <index .Messages 5>: error calling index: index out of range: 5")


def test_a_missing_field_of_a_message_is_an_error_in_strict_mode() -> None:
    error = render_error(CHATML.replace(".Content", ".Text"), {"Messages": CONVERSATION})
    assert (error.line, error.column) == (2, 4)
    assert "can't evaluate field Text" in error.reason and "its keys: Content, Role" in error.reason
    assert render("{{ range .L }}[{{ .Text }}]{{ end }}", {"L": [{}]}, strict=False) == "[<no value>]"


def test_fields_of_non_mappings_and_nil_are_errors() -> None:
    assert render_error("{{ .S.Len }}", {"S": "abc"}).reason.endswith("can't evaluate field Len in type string")
    assert render_error("{{ .N.X }}", {"N": None}).reason.endswith("nil pointer evaluating interface {}.X")
    assert render_error('{{ .A "x" }}', {"A": 1}).reason.endswith("A is not a method but has arguments")


def test_printf_wants_a_string_format() -> None:
    error = render_error("{{ printf .I }}", {"I": 1})
    assert error.reason.endswith("wrong type for value; expected string; got int")


def test_rendering_twice_starts_fresh() -> None:
    template = parse("{{ $x := .A }}{{ range .L }}{{ $x = . }}{{ end }}{{ $x }}")
    assert isinstance(template, Template)
    assert template.render({"A": "a", "L": [1, 2]}) == "2"
    assert template.render({"A": "b", "L": []}) == "b"
