"""The embedded server through the official ollama client: models, generation, errors."""

from __future__ import annotations

import concurrent.futures
import json
import time

import httpx
import jsonschema
import ollama
import pytest

from aistack.models.modelfile import build_request, output_format, parse_modelfile, response_format_text
from aistack.runtime.config import RuntimeConfig
from aistack.runtime.endpoint import embedded_server

from .support import FAST, MODEL_FILES, definitions


def test_root_and_version(server):
    assert httpx.get(server.url).text == "Ollama is running"
    assert "aistack" in httpx.get(f"{server.url}/api/version").json()["version"]


def test_every_definition_is_created_listed_and_shown(client, built):
    assert len(built) == len(MODEL_FILES) == 5
    listed = {m.model: m for m in client.list().models}
    for definition, request in built.values():
        assert request.model in listed, request.model
        entry = listed[request.model]
        assert entry.details.format == "gguf" and entry.details.quantization_level == "Q4_1"
        shown = client.show(request.model)
        assert shown.modelinfo["general.architecture"] == "llama"
        assert shown.modelinfo["aistack.substitution"] == "llama2 -> smollm2:135m"
        assert "# Base model substituted by AISTACK_BASE_MODELS: llama2 -> smollm2:135m" in shown.modelfile
        assert shown.details.parent_model == "smollm2:135m"
        assert parse_modelfile(shown.modelfile)["system"] == definition.spec.build.system
        assert shown.capabilities == ["completion"]
        for name in request.parameters:
            assert name in shown.parameters
    summarizer = client.show(built["summarizer-model"][1].model)
    assert summarizer.template == built["summarizer-model"][1].template
    assert ".Prompt" in summarizer.template and ".Input" not in summarizer.template


def test_create_stream_reports_the_substitution(client):
    definition = definitions()[0]
    request = build_request(definition, {})
    statuses = [p.status for p in client.create(**request.create_kwargs(), stream=True)]
    assert "substituting base model llama2 -> smollm2:135m (AISTACK_BASE_MODELS)" in statuses
    assert statuses[-1] == "success"


def test_modelfile_from_show_builds_the_same_model(client, built):
    _, request = built["classifier-model"]
    kwargs = parse_modelfile(client.show(request.model).modelfile)
    client.create(model="classifier-copy", **kwargs)
    original, copy = client.show(request.model), client.show("classifier-copy")
    assert parse_modelfile(copy.modelfile) == parse_modelfile(original.modelfile) == kwargs
    assert (copy.parameters, copy.template) == (original.parameters, original.template)
    client.delete("classifier-copy")


def test_create_twice_is_a_no_op_and_a_change_is_a_new_digest(client):
    kwargs = {"model": "digest-check:1", "from_": "smollm2:135m", "system": "Be brief.", "parameters": {"temperature": 0.1}}
    client.create(**kwargs)
    first = {m.model: m for m in client.list().models}["digest-check:1"]
    statuses = [p.status for p in client.create(**kwargs, stream=True)]
    assert any(s.startswith("using existing manifest") for s in statuses)
    assert not any(s.startswith("creating new layer") for s in statuses)
    again = {m.model: m for m in client.list().models}["digest-check:1"]
    assert (again.digest, again.modified_at) == (first.digest, first.modified_at)
    client.create(**(kwargs | {"system": "Be very brief."}))
    changed = {m.model: m for m in client.list().models}["digest-check:1"]
    assert changed.digest != first.digest
    client.delete("digest-check:1")


def test_store_survives_a_restart(tmp_path):
    config = RuntimeConfig(store=tmp_path / "ollama", substitutions={})
    with embedded_server(config) as first:
        c = ollama.Client(host=first.url)
        c.create(model="persisted", from_="smollm2", system="Remember me.")
        before = {m.model: m for m in c.list().models}["persisted:latest"]
    with embedded_server(config) as second:
        c = ollama.Client(host=second.url)
        after = {m.model: m for m in c.list().models}["persisted:latest"]
        assert (after.digest, after.modified_at) == (before.digest, before.modified_at)
        assert parse_modelfile(c.show("persisted").modelfile)["system"] == "Remember me."
        statuses = [p.status for p in c.create(model="persisted", from_="smollm2", system="Remember me.", stream=True)]
        assert any(s.startswith("using existing manifest") for s in statuses)


def test_chat_non_streaming(client, built):
    _, request = built["chat-model"]
    response = client.chat(model=request.model, messages=[{"role": "user", "content": "Say hello."}], options=FAST)
    assert response.done and response.done_reason in ("stop", "length")
    assert response.message.role == "assistant" and response.message.content
    assert 0 < response.eval_count <= FAST["num_predict"]
    assert response.prompt_eval_count > 10
    assert response.total_duration >= response.prompt_eval_duration + response.eval_duration > 0


def test_chat_streaming_concatenates_to_the_same_answer(client, built):
    _, request = built["chat-model"]
    messages = [{"role": "user", "content": "Name three fruits."}]
    whole = client.chat(model=request.model, messages=messages, options=FAST)
    chunks = list(client.chat(model=request.model, messages=messages, options=FAST, stream=True))
    assert len(chunks) > 2
    assert all(not c.done for c in chunks[:-1])
    final = chunks[-1]
    assert final.done and final.done_reason == whole.done_reason
    assert final.eval_count == whole.eval_count and final.prompt_eval_count == whole.prompt_eval_count
    assert "".join(c.message.content for c in chunks) == whole.message.content


def test_generate_returns_context_and_counts(client):
    response = client.generate(model="smollm2", prompt="Name a colour.", options=FAST)
    assert response.done and response.response
    assert len(response.context) == response.prompt_eval_count + response.eval_count


def _prompt_tokens(client, model, text):
    """The tokens of `text` as the server tokenizes a raw prompt."""
    response = client.generate(model=model, prompt=text, raw=True, options=FAST | {"num_predict": 1})
    return list(response.context[: response.prompt_eval_count])


def test_a_substituted_models_template_is_sent_inside_the_substitutes_chat_template(client, built):
    definition, request = built["summarizer-model"]  # from: llama2, substituted by smollm2:135m
    document = "The meeting moved to Friday. Alice owns the budget."
    body = (
        f"Context: {document}\n\n"
        "Instructions: Create a summary that includes:\n- Main points\n- Key findings\n- Action items\n\n"
        f"Response format:\n{response_format_text(definition)}"
    )
    expected = f"<|im_start|>system\n{definition.spec.build.system}<|im_end|>\n<|im_start|>user\n{body}<|im_end|>\n<|im_start|>assistant\n"
    generated = client.generate(model=request.model, prompt=document, options=FAST | {"num_predict": 1})
    assert list(generated.context[: generated.prompt_eval_count]) == _prompt_tokens(client, request.model, expected)
    chat = client.chat(model=request.model, messages=[{"role": "user", "content": document}], options=FAST | {"num_predict": 1})
    assert chat.prompt_eval_count == generated.prompt_eval_count
    shown = client.show(request.model)
    assert shown.modelinfo["aistack.template_source"] == "custom TEMPLATE inside the GGUF chat template (base substituted)"
    assert "# The TEMPLATE's text is sent as the user turn of the substitute's own chat template" in shown.modelfile


def test_a_custom_template_on_a_base_named_as_it_is_renders_exactly_as_ollama_does(client, built):
    definition, _ = built["summarizer-model"]
    client.create(
        model="direct-template:1",
        from_="smollm2:135m",
        system=definition.spec.build.system,
        template="{{ if .System }}{{.System}}{{ end }}\n\nContext: {{.Prompt}}\n",
    )
    document = "The meeting moved to Friday."
    expected = f"{definition.spec.build.system}\n\nContext: {document}\n"
    generated = client.generate(model="direct-template:1", prompt=document, options=FAST | {"num_predict": 1})
    assert list(generated.context[: generated.prompt_eval_count]) == _prompt_tokens(client, "direct-template:1", expected)


def test_a_substitute_samples_no_hotter_than_its_ceiling(client, built):
    _, request = built["summarizer-model"]  # temperature 0.7 in the definition, smollm2's ceiling is 0.2
    shown = client.show(request.model)
    assert shown.modelinfo["aistack.temperature_cap"] == 0.2
    prompt = "Write one sentence about the sea."
    options = {"num_predict": 12, "seed": 7}
    hot = [client.generate(model=request.model, prompt=prompt, options=options | {"temperature": 1.5}).response for _ in range(2)]
    capped = client.generate(model=request.model, prompt=prompt, options=options | {"temperature": 0.2}).response
    assert hot == [capped, capped], "a temperature above the ceiling samples as the ceiling"


def test_without_template_the_gguf_chat_template_and_messages_are_used(client, built):
    definition, request = built["classifier-model"]
    examples = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in definition.spec.build.messages)
    expected = (
        f"<|im_start|>system\n{definition.spec.build.system}<|im_end|>\n{examples}<|im_start|>user\nPlease reset my password.<|im_end|>\n<|im_start|>assistant\n"
    )
    generated = client.generate(model=request.model, prompt="Please reset my password.", options=FAST | {"num_predict": 1})
    assert list(generated.context[: generated.prompt_eval_count]) == _prompt_tokens(client, request.model, expected)


def test_json_schema_format_output_validates(client, built):
    definition, request = built["classifier-model"]
    schema = output_format(definition)
    response = client.chat(
        model=request.model,
        messages=[{"role": "user", "content": "Why is my parcel late? I ordered it two weeks ago."}],
        format=schema,
        options={"temperature": 0, "seed": 1, "num_predict": 128},
    )
    assert response.done_reason == "stop", response.message.content
    jsonschema.validate(json.loads(response.message.content), schema)


def test_json_format_output_parses(client):
    response = client.generate(
        model="smollm2",
        prompt="Give a JSON object with a name and an age.",
        format="json",
        options={"temperature": 0, "num_predict": 64},
    )
    assert isinstance(json.loads(response.response), dict)


def test_stop_option_cuts_the_output(client):
    free = client.generate(model="smollm2", prompt="Count from 1 to 10.", options=FAST | {"num_predict": 32})
    assert "3" in free.response
    stopped = client.generate(model="smollm2", prompt="Count from 1 to 10.", options=FAST | {"num_predict": 32, "stop": ["3"]})
    assert stopped.done_reason == "stop" and "3" not in stopped.response
    assert free.response.startswith(stopped.response)


def test_unknown_model_is_a_404(client):
    with pytest.raises(ollama.ResponseError) as error:
        client.chat(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert error.value.status_code == 404
    assert error.value.error == 'model "no-such-model" not found, try pulling it first'
    with pytest.raises(ollama.ResponseError) as error:
        client.show("no-such-model")
    assert error.value.status_code == 404


def test_bad_template_is_a_400_naming_line_and_column(client):
    with pytest.raises(ollama.ResponseError) as error:
        client.create(model="bad-template", from_="smollm2", template="ok\n{{ if .System }}{{ .System }")
    assert error.value.status_code == 400
    assert "line 2, column" in error.value.error
    assert "bad-template:latest" not in {m.model for m in client.list().models}


def test_unknown_base_model_lists_the_available_ones(client):
    with pytest.raises(ollama.ResponseError) as error:
        client.create(model="mistral-based", from_="mistral:7b")
    assert error.value.status_code == 404
    assert "smollm2:135m" in error.value.error and "AISTACK_BASE_MODELS" in error.value.error


def test_bad_requests_are_400s(server, client):
    bad_format = httpx.post(f"{server.url}/api/chat", json={"model": "smollm2", "messages": [], "format": "yaml"})
    assert bad_format.status_code == 400 and "invalid format" in bad_format.json()["error"]
    no_body = httpx.post(f"{server.url}/api/generate", content=b"")
    assert no_body.status_code == 400 and no_body.json() == {"error": "missing request body"}
    with pytest.raises(ollama.ResponseError) as error:
        client.create(model="bad-param", from_="smollm2", parameters={"temperature": "hot"})
    assert error.value.status_code == 400 and "temperature" in error.value.error


def test_concurrent_chats_all_succeed(client, built):
    _, request = built["qa-model"]

    def chat(i: int):
        return client.chat(
            model=request.model,
            messages=[{"role": "user", "content": f"Is {i} + {i} = {2 * i}?"}],
            options=FAST | {"num_predict": 8},
        )

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(chat, range(4)))
    assert all(r.done and r.eval_count > 0 for r in responses)


def test_closing_a_stream_stops_the_generation(client, server):
    def cancellations() -> int:
        return server.log_path.read_text().count("generation cancelled after")

    before = cancellations()
    stream = client.generate(model="smollm2", prompt="Write a very long story.", stream=True, options={"num_predict": 4000, "temperature": 0.8})
    for _, _chunk in zip(range(3), stream):
        pass
    stream.close()
    deadline = time.monotonic() + 30
    while cancellations() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cancellations() == before + 1, "the runtime's log says the generation was cancelled"
    response = client.generate(model="smollm2", prompt="Hi", options=FAST | {"num_predict": 4})
    assert response.done


def test_pull_copy_delete_and_ps(client):
    statuses = [p.status for p in client.pull("smollm2", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    with pytest.raises(ollama.ResponseError) as error:
        client.pull("llama2")
    assert error.value.status_code == 404 and "smollm2:135m" in error.value.error
    client.copy("smollm2", "my-copy")
    assert "my-copy:latest" in {m.model for m in client.list().models}
    client.chat(model="my-copy", messages=[{"role": "user", "content": "hi"}], options=FAST | {"num_predict": 2})
    assert "my-copy:latest" in {m.model for m in client.ps().models}
    client.delete("my-copy")
    assert "my-copy:latest" not in {m.model for m in client.list().models}
    with pytest.raises(ollama.ResponseError) as error:
        client.delete("my-copy")
    assert error.value.status_code == 404


def test_embed_returns_normalized_vectors(client):
    response = client.embed(model="smollm2", input=["a cat", "a dog"])
    assert len(response.embeddings) == 2 and len(response.embeddings[0]) == 576
    assert abs(sum(v * v for v in response.embeddings[0]) - 1) < 1e-4


def test_empty_requests_load_and_keep_alive_zero_unloads(client):
    assert client.generate(model="smollm2").done_reason == "load"
    assert "smollm2:135m" in {m.model for m in client.ps().models}
    assert client.chat(model="smollm2", messages=[], keep_alive=0).done_reason == "unload"
    assert client.ps().models == []
    reloaded = client.generate(model="smollm2", prompt="Hi", options=FAST | {"num_predict": 2}, keep_alive="10m")
    assert reloaded.load_duration > 0
    (loaded,) = [m for m in client.ps().models if m.model == "smollm2:135m"]
    assert loaded.expires_at is not None and loaded.context_length == 8192


def test_the_grammar_holds_the_bounds_agents_put_on_strings_and_lists(client):
    """What aistack.agents.limits adds to an agent's schema, enforced by the real model's grammar."""
    from aistack.agents.limits import bounded_schema

    schema = {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "string", "maxLength": 24}}},
    }
    for seed in (1, 2, 3):
        response = client.chat(
            model="smollm2",
            messages=[{"role": "user", "content": "Write a very long story as JSON."}],
            format=bounded_schema(schema),
            options={"temperature": 1.0, "seed": seed, "num_predict": 200},
        )
        value = json.loads(response.message.content, strict=False)
        assert 2 <= len(value["items"]) <= 3, value
        for item in value["items"]:
            assert 1 <= len(item) <= 24 and "\n" not in item and not item[0].isspace() and item[0] not in '[]{},:"', value
