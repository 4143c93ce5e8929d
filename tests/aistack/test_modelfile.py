"""Rendering model definitions for `ollama create`: one mapping, two renderings that agree."""

from pathlib import Path

import pytest
import yaml

from aistack.models.modelfile import (
    build_request,
    output_format,
    parse_modelfile,
    parse_substitutions,
    translate_template,
)
from aistack.resources import InvalidResource, parse_resource

REPO = Path(__file__).resolve().parents[2]
MODELS = sorted((REPO / "models").glob("*/model.yaml"))


def _definition(path: Path = REPO / "models" / "summarizer" / "model.yaml", **build_changes):
    data = yaml.safe_load(path.read_text())
    data["spec"]["build"].update(build_changes)
    return parse_resource(data)


@pytest.mark.parametrize("path", MODELS, ids=[p.parent.name for p in MODELS])
def test_modelfile_and_create_request_agree(path: Path):
    request = build_request(_definition(path), {"llama2": "smollm2:135m"})
    expected = request.create_kwargs()
    expected.pop("model")
    assert parse_modelfile(request.modelfile()) == expected


def test_parameters_use_ollama_names():
    request = build_request(_definition(REPO / "models" / "chat" / "model.yaml"))
    assert request.parameters == {"temperature": 0.7, "num_ctx": 4096, "top_p": 0.9, "repeat_penalty": 1.1, "seed": 7, "stop": ["<|im_end|>"]}
    assert 'PARAMETER stop "<|im_end|>"' in request.modelfile().splitlines()


def test_response_format_is_not_a_modelfile_parameter():
    request = build_request(_definition())
    assert "response_format" not in request.parameters and "format" not in request.parameters
    assert "responseFormat" not in request.modelfile()


def test_model_is_named_by_name_and_version():
    assert build_request(_definition()).model == "summarizer-model:1.0.0"


def test_seed_template_speaks_ollama():
    template = build_request(_definition()).template
    assert "{{.Prompt}}" in template
    assert ".Input" not in template and ".ResponseFormat" not in template
    assert '"main_points"' in template.replace('\\"', '"')
    assert template.startswith("{{ if .System }}{{.System}}{{ end }}\n\nContext: ")


def test_template_translation_touches_actions_only():
    source = "Use .Input wisely: {{ .Input }} {{ $.Input }} {{ .Inputs }} {{ if .ResponseFormat }}x{{ end }} {{ .System }}"
    assert translate_template(source, "JSON") == ('Use .Input wisely: {{ .Prompt }} {{ $.Prompt }} {{ .Inputs }} {{ if "JSON" }}x{{ end }} {{ .System }}')


def test_output_format_follows_response_format_and_functions():
    summarizer = _definition()
    assert output_format(summarizer)["properties"]["themes"] == {"type": "array", "items": {"type": "string"}}
    assert output_format(_definition(functions=None)) == "json"
    assert output_format(_definition(REPO / "models" / "chat" / "model.yaml")) is None
    two = [{"name": "a", "parameters": {"type": "object"}}, {"name": "b", "parameters": {"type": "array"}}]
    assert output_format(_definition(functions=two)) == {"anyOf": [{"type": "object"}, {"type": "array"}]}


def test_digest_is_stable_and_changes_with_content():
    base = build_request(_definition()).digest
    assert base == build_request(_definition()).digest
    assert base.startswith("sha256:") and len(base) == 71
    changed = {
        build_request(_definition(system="Be brief.")).digest,
        build_request(_definition(), {"llama2": "smollm2:135m"}).digest,
        build_request(_definition(), base_digest="sha256:1").digest,
        build_request(_definition(parameters={"temperature": 0.1})).digest,
    }
    assert base not in changed and len(changed) == 4


def test_base_model_substitution_is_recorded():
    request = build_request(_definition(), parse_substitutions("llama2=smollm2:135m"))
    assert (request.from_, request.requested_from, request.substituted) == ("smollm2:135m", "llama2", True)
    assert build_request(_definition(), parse_substitutions("*=tiny")).from_ == "tiny"
    assert not build_request(_definition(), parse_substitutions("mistral=tiny")).substituted


def test_bad_substitution_setting_names_the_setting():
    with pytest.raises(InvalidResource, match="AISTACK_BASE_MODELS: invalid entry 'llama2'"):
        parse_substitutions("llama2")


def test_unquotable_text_is_an_error_naming_the_field():
    with pytest.raises(InvalidResource, match='spec.build.system: contains """'):
        build_request(_definition(system='say """hi"""')).modelfile()


def test_modelfile_without_from_is_rejected():
    with pytest.raises(ValueError, match="no FROM line"):
        parse_modelfile('SYSTEM """hi"""\n')


def test_template_translation_leaves_string_literals_alone():
    source = '{{ "a }} .Input" }} {{ .Input }} {{ printf "%s .Input" .Input }}'
    assert translate_template(source, "J") == '{{ "a }} .Input" }} {{ .Prompt }} {{ printf "%s .Input" .Prompt }}'


def test_modelfile_parsing_handles_indentation_and_parameter_types():
    parsed = parse_modelfile('FROM base\n  SYSTEM """line one\nline two"""\nPARAMETER penalize_newline true\nPARAMETER mirostat 2\n')
    assert parsed == {"from_": "base", "system": "line one\nline two", "parameters": {"penalize_newline": True, "mirostat": 2}}
    with pytest.raises(ValueError, match="PARAMETER num_ctx cannot be 'lots'"):
        parse_modelfile("FROM base\nPARAMETER num_ctx lots\n")


def test_registry_port_is_not_mistaken_for_a_tag():
    from aistack.models.modelfile import substitute_base_model

    assert substitute_base_model("localhost:5000/llama2", {"localhost": "wrong"}) == "localhost:5000/llama2"
    assert substitute_base_model("localhost:5000/llama2:7b", {"localhost:5000/llama2": "mapped"}) == "mapped"
