"""The token loop over one loaded llama.cpp model, with Ollama's stopping rules and timings.

It runs in the model's worker thread and yields text pieces as soon as they are safe to send:
complete UTF-8 characters, with any text that could be the start of a stop sequence held back
until it is known not to be one. It stops at an end-of-generation token ("stop"), a stop
sequence ("stop", the sequence itself not sent), `num_predict` tokens or a full context
("length"), or when `cancel` is set (the client went away) — checked between the batches of the
prompt's evaluation and after every token, so a client that goes away frees the model within one
batch (n_batch tokens, a fraction of a second) even while a long prompt is being read.

A prompt far longer than the context is refused before it is tokenized (PROMPT_BYTES_PER_TOKEN).
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aistack.runtime.errors import ApiError
from aistack.runtime.options import Sampling

log = logging.getLogger("aistack.runtime")

RANDOM_SEED = 0xFFFFFFFF  # llama.cpp's LLAMA_DEFAULT_SEED: a new random seed per sampler

PROMPT_BYTES_PER_TOKEN = 32
"""How many bytes of prompt text per token of the loaded context are tokenized at all.

A token is a few bytes of text (about 4 in English, rarely more than 16), and a prompt longer than
the context is cut to fit it (fit_context, as Ollama does), so eight contexts' worth of ordinary
text is still accepted and cut. A longer prompt could only be cut away: it is refused with a 400
before the tokenizer spends seconds and memory on it (a 32 MiB request body holds a thousand
contexts of 8192 tokens of English).
"""


@dataclass(frozen=True)
class Piece:
    text: str


@dataclass(frozen=True)
class Finished:
    done_reason: str
    prompt_eval_count: int
    prompt_eval_duration: int  # nanoseconds, like Ollama
    eval_count: int
    eval_duration: int
    context: list[int] = field(repr=False, default_factory=list)


def tokenize(llm: Any, text: str) -> list[int]:
    """Tokens of a rendered prompt, special tokens (`<|im_start|>`) parsed as Ollama does; the
    BOS token is added when the model wants one and the prompt does not already start with it."""
    data = text.encode("utf-8")
    limit = llm.n_ctx() * PROMPT_BYTES_PER_TOKEN
    if len(data) > limit:
        raise ApiError(
            400,
            f"the prompt is {len(data)} bytes, far more than the context of {llm.n_ctx()} tokens "
            f"holds: at most {limit} bytes are accepted ({PROMPT_BYTES_PER_TOKEN} per token); "
            "send a shorter prompt (only its last tokens would fit anyway)",
        )
    bos = llm.token_bos()
    bos_text = llm._model.token_get_text(bos) if bos >= 0 else ""
    add_bos = not (bos_text and text.startswith(bos_text))
    return llm.tokenize(data, add_bos=add_bos, special=True)


def fit_context(tokens: list[int], limit: int, sampling: Sampling) -> list[int]:
    """Drop the oldest prompt tokens after the first `num_keep` when the prompt does not fit."""
    room = min(sampling.num_predict if sampling.num_predict > 0 else limit // 4, limit // 2)
    budget = max(limit - max(room, 1), 1)
    if len(tokens) <= budget:
        return tokens
    keep = max(0, min(sampling.num_keep, budget // 2))
    log.warning("prompt of %d tokens does not fit num_ctx=%d: truncated to %d", len(tokens), limit, budget)
    return tokens[:keep] + tokens[len(tokens) - (budget - keep) :]


def run(
    llm: Any,
    prompt: Sequence[int],
    sampling: Sampling,
    grammar: Any,
    cancel: threading.Event,
) -> Iterator[Piece | Finished]:
    import llama_cpp

    limit = min(sampling.num_ctx, llm.n_ctx())
    tokens = fit_context(list(prompt), limit, sampling)
    # Evaluate the whole prompt every time instead of reusing a cached prefix: llama.cpp's
    # logits differ slightly with the batch shape, so a cached prefix can flip a greedy choice,
    # and `temperature 0` + `seed` must give the same answer whatever ran before.
    llm.reset()
    llm.set_seed(sampling.seed if sampling.seed >= 0 else RANDOM_SEED)
    llm.last_n_tokens_size = limit if sampling.repeat_last_n < 0 else sampling.repeat_last_n
    vocab = llm._model.vocab
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    stops = sampling.stop
    pending = ""
    output: list[int] = []
    reason = "stop"
    started = time.perf_counter_ns()
    first = None
    generator = llm.generate(
        tokens,
        top_k=sampling.top_k,
        top_p=sampling.top_p,
        min_p=sampling.min_p,
        typical_p=sampling.typical_p,
        temp=sampling.temperature,
        repeat_penalty=sampling.repeat_penalty,
        frequency_penalty=sampling.frequency_penalty,
        presence_penalty=sampling.presence_penalty,
        mirostat_mode=sampling.mirostat,
        mirostat_tau=sampling.mirostat_tau,
        mirostat_eta=sampling.mirostat_eta,
        grammar=grammar,
        reset=True,
    )
    evaluated = len(tokens)
    try:
        if len(tokens) >= limit:
            reason = "length"
        elif (evaluated := _evaluate_prompt(llm, tokens, cancel)) < len(tokens):
            reason = "cancel"
        else:
            # The prompt is evaluated: generate() finds it all in the cache and samples from its logits.
            for token in generator:
                if first is None:
                    first = time.perf_counter_ns()
                if cancel.is_set():
                    reason = "cancel"
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    break
                output.append(token)
                pending += decoder.decode(llm.detokenize([token]))
                text, stopped = _split_at_stop(pending, stops)
                pending = pending[len(text) :]
                if text:
                    yield Piece(text)
                if stopped:
                    pending = ""
                    break
                if 0 < sampling.num_predict <= len(output) or len(tokens) + len(output) >= limit:
                    reason = "length"
                    break
    finally:
        generator.close()
    ended = time.perf_counter_ns()
    if reason == "cancel" and evaluated < len(tokens):
        log.info("prompt evaluation cancelled after %d of %d tokens: the client went away", evaluated, len(tokens))
    elif reason == "cancel":
        log.info("generation cancelled after %d tokens: the client went away", len(output))
    tail = pending + decoder.decode(b"", final=True)
    if tail and reason != "cancel":
        text, _ = _split_at_stop(tail, stops, final=True)
        if text:
            yield Piece(text)
    first = first or ended
    yield Finished(
        done_reason=reason,
        prompt_eval_count=len(tokens),
        prompt_eval_duration=first - started,
        eval_count=len(output),
        eval_duration=ended - first,
        context=list(tokens) + output,
    )


def _evaluate_prompt(llm: Any, tokens: list[int], cancel: threading.Event) -> int:
    """Evaluate the prompt batch by batch until `cancel` is set; how many tokens were evaluated.

    The batches are those one `Llama.eval(tokens)` call makes (n_batch tokens from the start), so
    the logits, and with them a greedy answer, are the same; only the cancel flag is looked at in
    between.
    """
    batch = llm.n_batch
    for start in range(0, len(tokens), batch):
        if cancel.is_set():
            return start
        llm.eval(tokens[start : start + batch])
    return len(tokens)


def _split_at_stop(text: str, stops: Sequence[str], final: bool = False) -> tuple[str, bool]:
    """(the text safe to send now, whether a stop sequence was found)."""
    if not stops:
        return text, False
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    if cut >= 0:
        return text[:cut], True
    if final:
        return text, False
    hold = 0
    for stop in stops:
        for length in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:length]):
                hold = max(hold, length)
                break
    return text[: len(text) - hold], False
