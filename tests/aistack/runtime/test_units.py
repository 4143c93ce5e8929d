"""The runtime's pure parts: names, options, keep_alive, GGUF metadata, store digests, prompts."""

from __future__ import annotations

import json

import pytest

from aistack import gotemplate
from aistack.runtime import basemodels, gguf, names, options, prompt
from aistack.runtime.generation import _split_at_stop
from aistack.runtime.store import ModelSpec, ModelStore, build_manifest


def test_names_are_normalized_like_ollama():
    assert names.normalize("llama2") == "llama2:latest"
    assert names.normalize("registry.ollama.ai/library/llama2:7b") == "llama2:7b"
    assert names.normalize("team/summarizer") == "team/summarizer:latest"
    assert names.parse_name("Summarizer-Model:1.0.0").key == names.parse_name("summarizer-model:1.0.0").key
    for bad in ("", "a b", "x:", "a/b/c/d", "-x"):
        with pytest.raises(names.InvalidName):
            names.parse_name(bad)


def test_options_precedence_and_types():
    values = options.effective({"temperature": 0.2, "stop": ["a"]}, {"temperature": 0, "top_k": 5.0, "bogus": 1})
    assert values["temperature"] == 0.0 and values["top_k"] == 5 and values["stop"] == ["a"]
    assert values["repeat_penalty"] == options.DEFAULTS["repeat_penalty"]
    assert "bogus" not in values
    with pytest.raises(options.InvalidOption, match="top_k"):
        options.effective({}, {"top_k": "many"})
    with pytest.raises(options.InvalidOption, match='invalid option "nope"'):
        options.coerce_all({"nope": 1})


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, 300.0), (0, 0.0), ("0", 0.0), (-1, -1.0), ("-1", -1.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25), (12.5, 12.5)],
)
def test_keep_alive_durations(value, seconds):
    assert options.parse_keep_alive(value) == seconds


def test_keep_alive_rejects_garbage():
    with pytest.raises(options.InvalidOption, match="invalid duration"):
        options.parse_keep_alive("soon")


def test_bundled_gguf_metadata_is_read_without_loading():
    path = basemodels.bundled_model("smollm2").path()
    info = gguf.read_info(path)
    assert info.architecture == "llama"
    assert info.quantization_level == "Q4_1"
    assert info.parameter_size == "134.52M"
    assert info.context_length == 8192
    assert "<|im_start|>" in info.chat_template


def test_base_models_and_default_substitution():
    assert basemodels.bundled_model("smollm2:latest").name == "smollm2:135m"
    assert basemodels.bundled_model("llama2") is None
    assert basemodels.substitutions_for_runtime({}) == {"*": "smollm2:135m"}
    assert basemodels.substitutions_for_runtime({"AISTACK_BASE_MODELS": "llama2=smollm2"}) == {"llama2": "smollm2"}
    message = basemodels.unknown_base_message("mistral", [])
    assert "smollm2:135m" in message and "AISTACK_BASE_MODELS" in message


def _spec(**changes):
    base = dict(
        base="smollm2:135m",
        base_digest="sha256:" + "0" * 64,
        base_size=1,
        requested_from="llama2",
        substituted_from="llama2",
        system="You are terse.",
        parameters={"temperature": 0.5},
    )
    return ModelSpec(**(base | changes))


def test_store_writes_once_and_digests_follow_content(tmp_path):
    store = ModelStore(tmp_path)
    details = {"family": "llama", "parameter_size": "1M", "quantization_level": "Q4_1"}
    manifest = build_manifest(_spec(), details)
    assert store.write("m", manifest) is True
    first = store.get("m:latest")
    assert first.digest == manifest.digest and first.spec.substitution == "llama2 -> smollm2:135m"
    assert store.write("M:latest", build_manifest(_spec(), details)) is False  # same content, same name
    assert store.get("m").modified_at == first.modified_at
    changed = build_manifest(_spec(system="You are verbose."), details)
    assert changed.digest != manifest.digest
    store.write("m", changed)
    assert store.get("m").digest == changed.digest
    assert not list(tmp_path.rglob("*.tmp"))
    assert store.copy("m", "n:1") and store.get("n:1").digest == changed.digest
    assert store.delete("m") and store.get("m") is None and store.get("n:1") is not None
    assert store.delete("n:1")
    assert not list((tmp_path / "blobs").iterdir())  # unreferenced blobs are pruned


def test_manifest_is_canonical_json(tmp_path):
    manifest = build_manifest(_spec(), {"family": "llama"})
    assert json.loads(manifest.raw) == manifest.data
    assert manifest.raw == json.dumps(manifest.data, sort_keys=True, separators=(",", ":")).encode()


LEGACY = "{{ if .System }}<s>{{ .System }}</s>{{ end }}<u>{{ .Prompt }}</u><a>{{ .Response }}</a>"


def test_legacy_template_renders_each_exchange_and_stops_at_response():
    template = gotemplate.parse(LEGACY)
    messages = prompt.chat_messages(
        "SYS",
        [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}],
        [prompt.Message("user", "q2")],
    )
    assert prompt.render_template(template, messages) == "<s>SYS</s><u>q1</u><a>a1</a><u>q2</u><a>"


def test_messages_template_sees_all_messages_and_the_last_prompt():
    template = gotemplate.parse("{{ .System }}|{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}|{{ .Prompt }}")
    messages = prompt.chat_messages(None, [], [prompt.Message("system", "S"), prompt.Message("user", "hi")])
    assert prompt.render_template(template, messages) == "S|system:S;user:hi;|hi"


def test_request_system_replaces_the_model_system_and_stays_first():
    messages = prompt.chat_messages("MODEL", [{"role": "user", "content": "ex"}], [prompt.Message("system", "REQ"), prompt.Message("user", "q")])
    assert [(m.role, m.content) for m in messages] == [("system", "REQ"), ("user", "ex"), ("user", "q")]


def test_template_reading_unknown_fields_is_rejected():
    with pytest.raises(Exception, match=r"\.Input"):
        prompt.check_template_fields(gotemplate.parse("{{ .Input }}"))


def test_stop_sequences_hold_back_possible_prefixes():
    assert _split_at_stop("hello <|im", ["<|im_end|>"]) == ("hello ", False)
    assert _split_at_stop("hello <|im_end|> more", ["<|im_end|>"]) == ("hello ", True)
    assert _split_at_stop("plain", ["STOP"]) == ("plain", False)
    assert _split_at_stop("tail S", ["STOP"], final=True) == ("tail S", False)


def test_runtime_config_reads_aistack_home_and_defaults_the_substitution(tmp_path, monkeypatch):
    from aistack.runtime.config import RuntimeConfig

    monkeypatch.setenv("AISTACK_HOME", str(tmp_path))
    monkeypatch.delenv("AISTACK_BASE_MODELS", raising=False)
    config = RuntimeConfig()
    assert config.store_path() == tmp_path / "ollama"
    assert config.substitution_map() == {"*": "smollm2:135m"}
    monkeypatch.setenv("AISTACK_BASE_MODELS", "llama2=smollm2:135m")
    assert RuntimeConfig().substitution_map() == {"llama2": "smollm2:135m"}


def test_bounded_integer_ranges_become_enums_the_grammar_enforces():
    from aistack.runtime.formats import bounded_integers_as_enums

    schema = {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 0, "maximum": 10, "description": "d"},
            "count": {"type": "integer", "minimum": 0},
            "odd": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3},
            "big": {"type": "integer", "minimum": 0, "maximum": 100000},
            "tags": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 2}},
        },
    }
    props = bounded_integers_as_enums(schema)["properties"]
    assert props["score"] == {"type": "integer", "enum": list(range(11)), "description": "d"}
    assert props["count"] == {"type": "integer", "minimum": 0}
    assert props["odd"] == {"type": "integer", "enum": [1, 2]}
    assert props["big"] == schema["properties"]["big"]
    assert props["tags"]["items"] == {"type": "integer", "enum": [1, 2]}
    assert schema["properties"]["score"]["maximum"] == 10, "the original is left alone"


# -- the worker's Airflow -------------------------------------------------------------------
