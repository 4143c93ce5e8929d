"""Counting tokens without the model: a calibrated, conservative approximation.

The chunker needs token counts of arbitrary spans of a document, in the scheduler and in every
mapped task, for whatever model serves the summarizer agent (SmolLM2 in the embedded runtime,
llama2 or another model behind a cluster's Ollama). Ollama has no tokenize endpoint and the
scheduler has no access to the served model's GGUF, so aistack counts with `ApproxTokenizer`:

- a run of ASCII letters is split into pieces of at most 4 letters, one token each
  ("summarization" -> summ|ariz|atio|n: 4; SmolLM2 says 3);
- a number costs one token per digit plus one (SmolLM2 and Llama tokenizers split numbers
  into digits, and the space before a number is a token of its own), in pieces of at most
  4 digits;
- every other ASCII symbol or punctuation character is a token, except "_", which costs 2:
  a word after an underscore cannot merge with a leading space and splits finer
  ("tug_bollard" is t|ug|_|b|oll|ard to SmolLM2);
- a non-ASCII character costs its UTF-8 length in tokens (2 for é, ß or Cyrillic, 3 for CJK,
  4 for emoji): byte-level BPE vocabularies trained mostly on English split such text into
  byte fragments, and this keeps the estimate above the real count;
- each newline is a token; spaces and tabs are free (BPE merges a space into the next word).

Calibrated against SmolLM2-135M's own tokenizer (llama.cpp, vocab only) on the documents in
examples/documents: the estimate is an upper bound there, for whole documents (about 1.35x
the real count for English, more for non-Latin scripts) and for every chunk the chunker cuts
from them (tests/aistack/documents/test_tokens.py checks both). An upper bound is what the chunker needs:
a chunk within its budget by this count is within it by the model's count too. Text made of
random letter strings (hashes, base64) can tokenize finer than 4 letters a token; cleaning
keeps such text rare, and the default chunk budget leaves most of the context window free.

Pieces carry their character offsets, so the chunker cuts between pieces and a chunk's count is
the sum of its pieces' costs: `count(text[a:b])` equals that sum for any cut between pieces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

LETTERS_PER_TOKEN = 4

_PIECE = re.compile(rf"[A-Za-z]{{1,{LETTERS_PER_TOKEN}}}|[0-9]{{1,4}}|\n|[^\s]")


@dataclass(frozen=True)
class Piece:
    """A span `[start, end)` of the text that costs `cost` tokens."""

    start: int
    end: int
    cost: int


class Tokenizer(Protocol):
    name: str

    def pieces(self, text: str) -> list[Piece]: ...

    def count(self, text: str) -> int: ...


def _cost(match: str) -> int:
    first = match[0]
    if first.isascii():
        if "0" <= first <= "9":
            return len(match) + 1
        return 2 if first == "_" else 1
    return len(match.encode("utf-8"))


class ApproxTokenizer:
    """The approximation described in the module docstring (deterministic, no dependencies)."""

    name = f"approx-v2:{LETTERS_PER_TOKEN}-letters"

    def iter_pieces(self, text: str) -> Iterator[Piece]:
        for match in _PIECE.finditer(text):
            yield Piece(match.start(), match.end(), _cost(match.group()))

    def pieces(self, text: str) -> list[Piece]:
        return list(self.iter_pieces(text))

    def count(self, text: str) -> int:
        return sum(piece.cost for piece in self.iter_pieces(text))


DEFAULT_TOKENIZER = ApproxTokenizer()


def count_tokens(text: str, tokenizer: Tokenizer = DEFAULT_TOKENIZER) -> int:
    return tokenizer.count(text)
