"""What runs on a model's worker thread for one request, as `Engine.run` work functions.

A work function gets the loaded `Llama`, the load time and the cancel flag, and yields
events. For chat and generate it first renders and tokenizes the prompt (which needs the
model's tokenizer and chat template) and yields `Ready`, so the HTTP layer still answers a
template failure with a status code; then it yields the `Piece`s and the `Finished` of the
token loop. Embeddings yield one result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from aistack.runtime import formats, generation, prompt
from aistack.runtime.catalog import parse_template
from aistack.runtime.errors import ApiError
from aistack.runtime.generation import Finished, Piece
from aistack.runtime.options import Sampling

__all__ = ["Finished", "Piece", "Ready", "embedding_work", "generation_work", "load_work", "raw_renderer", "renderer"]

Render = Callable[[Any], list[int]]
Work = Callable[[Any, int, Any], Iterator[Any]]


@dataclass(frozen=True)
class Ready:
    """The model is loaded and the prompt tokenized: the response can start."""

    load_duration: int


@functools.lru_cache(maxsize=128)
def template(source: str) -> Any:
    """A parsed Go template (parsed once per distinct source; a parse error is a 400)."""
    return parse_template(source)


def load_work(llm: Any, load_ns: int, cancel: Any) -> Iterator[Any]:
    """Only load the model (Ollama's request without a prompt)."""
    yield Ready(load_ns)


def generation_work(render: Render, sampling: Sampling, grammar_text: str | None) -> Work:
    def work(llm: Any, load_ns: int, cancel: Any) -> Iterator[Any]:
        tokens = render(llm)
        yield Ready(load_ns)
        yield from generation.run(llm, tokens, sampling, formats.make_grammar(grammar_text), cancel)

    return work


def renderer(
    messages: Sequence[prompt.Message],
    template_source: str | None,
    context: Sequence[int] | None = None,
    in_chat: bool = False,
) -> Render:
    """Tokens of the conversation through the custom template, else the GGUF's chat template;
    a generate `context` (tokens of an earlier exchange) goes in front. `in_chat` (the model's
    base was substituted): the custom template's text is the user turn of the GGUF's chat
    template (see `prompt.inside_chat`)."""
    parsed = template(template_source) if template_source else None

    def render(llm: Any) -> list[int]:
        if parsed is not None:
            try:
                if in_chat:
                    text = _render_with_gguf(llm, prompt.inside_chat(parsed, messages))
                else:
                    text = prompt.render_template(parsed, messages)
            except ValueError as e:  # gotemplate.TemplateError while executing
                raise ApiError(500, f"template: {e}") from None
        else:
            text = _render_with_gguf(llm, messages)
        tokens = generation.tokenize(llm, text)
        if context:
            tokens = list(context) + [t for t in tokens[:1] if t != llm.token_bos()] + tokens[1:]
        return tokens

    return render


def raw_renderer(text: str, context: Sequence[int] | None) -> Render:
    """`raw`: the prompt as given, no template and no system prompt."""

    def render(llm: Any) -> list[int]:
        return list(context or []) + (generation.tokenize(llm, text) if text else [])

    return render


def _render_with_gguf(llm: Any, messages: Sequence[prompt.Message]) -> str:
    chat_template = llm.metadata.get("tokenizer.chat_template")
    if not chat_template:
        return prompt.render_plain(messages)
    vocab = llm._model
    bos = vocab.token_get_text(llm.token_bos()) if llm.token_bos() >= 0 else ""
    eos = vocab.token_get_text(llm.token_eos()) if llm.token_eos() >= 0 else ""
    return prompt.render_chat_template(chat_template, bos, eos, messages)


def embedding_work(inputs: list[str], truncate: bool) -> Work:
    """Mean-pooled embeddings (not normalized) and the number of input tokens."""

    def work(llm: Any, load_ns: int, cancel: Any) -> Iterator[Any]:
        limit = llm.n_ctx()
        counts = [len(llm.tokenize(text.encode(), add_bos=True, special=False)) for text in inputs]
        if not truncate and max(counts) > limit:
            raise ApiError(400, "input length exceeds the context length")
        vectors = llm.embed(inputs, normalize=False, truncate=True)
        yield (vectors, sum(min(c, limit) for c in counts), load_ns)

    return work
