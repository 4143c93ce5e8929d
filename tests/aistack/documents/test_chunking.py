"""Chunking: budgets, overlap, no text lost, boundaries, determinism, unicode."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from aistack.documents.chunking import Chunk, chunk_text
from aistack.documents.cleaning import clean_document
from aistack.documents.tokens import count_tokens

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "documents"
DOCUMENTS = {p.name: clean_document(p.name, p.read_bytes()) for p in sorted(EXAMPLES.iterdir())}
WORDS = ("alpha", "beta", "gamma", "summarization", "x", "naïve", "Zürich", "抹茶", "🙂", "2026", "end.", "well,", "(aside)")


def random_text(seed: int, words: int = 400) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(words):
        out.append(rng.choice(WORDS))
        out.append(rng.choice([" "] * 12 + ["\n", "\n\n", "  "]))
    return "".join(out).strip()


def check_invariants(text: str, chunks: list[Chunk], max_tokens: int, overlap: int) -> None:
    assert chunks, "a text with words has chunks"
    for number, chunk in enumerate(chunks):
        assert chunk.index == number
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.tokens == count_tokens(chunk.text) <= max_tokens
        assert chunk.text == chunk.text.strip("\n") and chunk.text.strip()
    # nothing lost: the chunks cover the text, with only whitespace outside or between them
    assert not text[: chunks[0].start].strip() and not text[chunks[-1].end :].strip()
    for previous, current in zip(chunks, chunks[1:]):
        assert previous.start < current.start, "every chunk moves forward"
        if current.start >= previous.end:
            assert not text[previous.end : current.start].strip()
        else:
            shared = text[current.start : previous.end]
            assert count_tokens(shared) <= overlap


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
@pytest.mark.parametrize(("max_tokens", "overlap"), [(16, 0), (32, 8), (64, 16), (128, 0), (200, 48), (1024, 96)])
def test_examples_respect_every_bound(name, max_tokens, overlap):
    text = DOCUMENTS[name]
    check_invariants(text, chunk_text(text, max_tokens, overlap), max_tokens, overlap)


@pytest.mark.parametrize("seed", range(12))
def test_random_unicode_texts_respect_every_bound(seed):
    text = random_text(seed)
    max_tokens = random.Random(seed).choice([16, 24, 50, 100])
    overlap = random.Random(seed + 1).randint(0, max_tokens // 2 - 4)
    check_invariants(text, chunk_text(text, max_tokens, overlap), max_tokens, overlap)


def test_overlap_is_as_large_as_whole_words_allow():
    text = DOCUMENTS["community-garden-handbook.txt"]
    chunks = chunk_text(text, 128, 24)
    assert len(chunks) > 5
    for previous, current in zip(chunks, chunks[1:]):
        shared = count_tokens(text[current.start : previous.end])
        assert 24 - 4 <= shared <= 24, "within one word of the overlap asked for"
        assert text[current.start - 1] in " \n", "the shared span starts at a word"


def test_no_overlap_means_adjacent_chunks():
    text = DOCUMENTS["gettysburg-address.txt"]
    chunks = chunk_text(text, 64, 0)
    assert all(current.start >= previous.end for previous, current in zip(chunks, chunks[1:]))
    rebuilt = " ".join(c.text for c in chunks)
    assert rebuilt.split() == text.split(), "adjacent chunks put back together give the text"


def test_cuts_prefer_paragraphs_then_sentences():
    paragraphs = [f"Sentence one of paragraph {i} is here. Sentence two follows it closely." for i in range(8)]
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text, 60, 0)
    assert all(c.text.endswith("closely.") for c in chunks), [c.text[-20:] for c in chunks]
    prose = " ".join(f"Word{i} goes here, and the clause continues. " for i in range(40)).strip()
    assert all(c.text.endswith(".") for c in chunk_text(prose, 50, 0)[:-1])


def test_a_word_longer_than_the_budget_is_cut_inside():
    text = "start " + "x" * 300 + " end"
    chunks = chunk_text(text, 16, 0)
    check_invariants(text, chunks, 16, 0)
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")


def test_cjk_and_emoji_without_spaces_are_bounded():
    text = "抹茶🙂" * 200
    chunks = chunk_text(text, 20, 6)
    check_invariants(text, chunks, 20, 6)


def test_short_text_is_one_chunk_and_blank_text_none():
    assert [c.text for c in chunk_text("Just a line.", 64, 8)] == ["Just a line."]
    assert chunk_text("", 64) == [] and chunk_text(" \n\n \n", 64) == []


def test_chunking_is_deterministic():
    text = DOCUMENTS["release-notes.md"]
    assert chunk_text(text, 48, 12) == chunk_text(text, 48, 12)


@pytest.mark.parametrize(("max_tokens", "overlap"), [(8, 0), (64, 29), (64, -1)])
def test_budgets_that_cannot_work_are_refused(max_tokens, overlap):
    with pytest.raises(ValueError):
        chunk_text("text", max_tokens, overlap)
