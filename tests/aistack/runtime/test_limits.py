"""The runtime's limits without a model: the request body limit (through the ASGI app, where a
client can lie in Content-Length), the shared template budget of one prompt, and the prompt
length bound before tokenizing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from aistack import gotemplate
from aistack.runtime import generation, prompt
from aistack.runtime.api import create_app
from aistack.runtime.config import DEFAULT_MAX_BODY, MAX_BODY_ENV, RuntimeConfig
from aistack.runtime.errors import ApiError
from aistack.runtime.process import RuntimeProcess

LIMIT = 1000


def post(tmp_path, content, headers=None) -> httpx.Response:
    """POST /api/show to an app limited to LIMIT bytes."""
    app = create_app(RuntimeConfig(store=tmp_path / "ollama", substitutions={}, max_body=LIMIT))

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://runtime") as client:
            return await client.post("/api/show", content=content, headers=headers)

    return asyncio.run(go())


def too_large(response: httpx.Response, size: str) -> None:
    assert response.status_code == 413
    assert response.json() == {"error": f"the request body is {size}; the embedded runtime accepts at most {LIMIT} bytes (set {MAX_BODY_ENV} to change that)"}


def test_a_body_within_the_limit_reaches_the_handler(tmp_path):
    response = post(tmp_path, b'{"model": "no-such-model"}')
    assert response.status_code == 404 and "no-such-model" in response.json()["error"]


def test_a_declared_content_length_over_the_limit_is_refused_unread(tmp_path):
    too_large(post(tmp_path, b"{}", headers={"Content-Length": str(LIMIT + 1)}), f"{LIMIT + 1} bytes")


def test_a_body_longer_than_its_content_length_claims_is_cut_off(tmp_path):
    too_large(post(tmp_path, b"x" * (LIMIT + 1), headers={"Content-Length": "10"}), f"more than {LIMIT} bytes")


def test_a_chunked_body_over_the_limit_is_cut_off(tmp_path):
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 100

    too_large(post(tmp_path, chunks()), f"more than {LIMIT} bytes")


def test_the_body_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(MAX_BODY_ENV, raising=False)
    assert RuntimeConfig().max_body_bytes() == DEFAULT_MAX_BODY == 32 * 1024 * 1024
    monkeypatch.setenv(MAX_BODY_ENV, "2048")
    assert RuntimeConfig().max_body_bytes() == 2048
    assert RuntimeConfig(max_body=10).max_body_bytes() == 10
    for bad in ("lots", "0", "-5"):
        monkeypatch.setenv(MAX_BODY_ENV, bad)
        with pytest.raises(ValueError, match=f"{MAX_BODY_ENV}='{bad}': write a positive number of bytes"):
            RuntimeConfig().max_body_bytes()


def test_a_supervised_runtime_gets_its_body_limit_through_the_environment(tmp_path):
    assert RuntimeProcess(RuntimeConfig(store=tmp_path)).environment() is None  # it inherits ours
    assert RuntimeProcess(RuntimeConfig(store=tmp_path, max_body=4096)).environment()[MAX_BODY_ENV] == "4096"


def test_every_exchange_of_a_legacy_template_spends_one_shared_budget():
    # Each execution alone stays within the step budget; the three of one conversation do not.
    steps = gotemplate.MAX_RENDER_STEPS * 4 // 10
    template = gotemplate.parse(f"{{{{ range {steps} }}}}{{{{ end }}}}{{{{ .Prompt }}}}")
    one = [prompt.Message("user", "q")]
    assert prompt.render_template(template, one) == "q"
    conversation = [
        prompt.Message("user", "q1"),
        prompt.Message("assistant", "a1"),
        prompt.Message("user", "q2"),
        prompt.Message("assistant", "a2"),
        prompt.Message("user", "q3"),
    ]
    with pytest.raises(gotemplate.TemplateError, match="steps"):
        prompt.render_template(template, conversation)


class Untokenizable:
    """A model with a context of 100 tokens whose tokenizer must not be reached."""

    def n_ctx(self) -> int:
        return 100

    def tokenize(self, *args: object, **kwargs: object) -> list[int]:
        raise AssertionError("a prompt far longer than the context was tokenized")


def test_a_prompt_far_longer_than_the_context_is_refused_before_tokenizing():
    limit = 100 * generation.PROMPT_BYTES_PER_TOKEN
    with pytest.raises(ApiError) as error:
        generation.tokenize(Untokenizable(), "é" * limit)  # two bytes each
    assert error.value.status == 400
    assert error.value.message.startswith(f"the prompt is {2 * limit} bytes, far more than the context of 100 tokens holds: at most {limit} bytes are accepted")
