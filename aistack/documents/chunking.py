"""Token-aware chunking with overlap.

`chunk_text(text, max_tokens, overlap_tokens)` cuts a cleaned document into chunks that each
count at most `max_tokens` (by the tokenizer given, the calibrated approximation by default:
see tokens.py). Guarantees, checked by the tests:

- no chunk counts more than `max_tokens`, and a chunk's `tokens` is the tokenizer's count of
  its `text`;
- nothing is lost: every chunk after the first starts at or before the end of the previous
  one, and whatever lies between two chunks is whitespace;
- consecutive chunks share at most `overlap_tokens` tokens of text, and as much of it as whole
  words allow (the shared span starts at a word boundary);
- the same input gives the same chunks.

Cuts fall at the best boundary within the last half of the budget: a paragraph break first,
then a line break, a sentence end, a space between words; a word longer than the whole budget
is cut inside. Chunks never begin or end with a newline.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aistack.documents.tokens import DEFAULT_TOKENIZER, Piece, Tokenizer

MIN_CHUNK_TOKENS = 16
MIN_FILL = 0.5  # a cut at a better boundary may shorten a chunk down to this share of the budget

PARAGRAPH, LINE, SENTENCE, WORD, INSIDE_WORD = 4, 3, 2, 1, 0
_SENTENCE_END = frozenset(".!?;:")


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # character offsets in the text chunked
    end: int
    text: str
    tokens: int

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "start": self.start, "end": self.end, "tokens": self.tokens}


def _is_newline(text: str, piece: Piece) -> bool:
    return text[piece.start] == "\n"


def _quality(text: str, pieces: Sequence[Piece], k: int) -> int:
    """How good a cut before pieces[k] is (after pieces[k-1])."""
    before, after = pieces[k - 1], pieces[k]
    if _is_newline(text, before):
        if _is_newline(text, after):
            return INSIDE_WORD  # inside a run of newlines: cut at its end instead
        return PARAGRAPH if k >= 2 and _is_newline(text, pieces[k - 2]) else LINE
    if _is_newline(text, after):
        return INSIDE_WORD  # cut after the newlines, so the next chunk does not start with one
    if after.start == before.end:
        return INSIDE_WORD
    return SENTENCE if text[before.end - 1] in _SENTENCE_END else WORD


def validate_budget(max_tokens: int, overlap_tokens: int) -> None:
    """ValueError unless the budget can be chunked (overlap a bit under half of it)."""
    if max_tokens < MIN_CHUNK_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_CHUNK_TOKENS}, got {max_tokens}")
    if not 0 <= overlap_tokens <= max_tokens // 2 - 4:
        raise ValueError(f"overlap_tokens must be between 0 and {max_tokens // 2 - 4} (a bit under half of max_tokens), got {overlap_tokens}")


def chunk_text(text: str, max_tokens: int, overlap_tokens: int = 0, tokenizer: Tokenizer = DEFAULT_TOKENIZER) -> list[Chunk]:
    validate_budget(max_tokens, overlap_tokens)
    pieces = tokenizer.pieces(text)
    n = len(pieces)
    total = [0]
    for piece in pieces:
        total.append(total[-1] + piece.cost)

    def cost(i: int, k: int) -> int:
        return total[k] - total[i]

    def trimmed(i: int, k: int) -> tuple[int, int]:
        while i < k and _is_newline(text, pieces[i]):
            i += 1
        while k > i and _is_newline(text, pieces[k - 1]):
            k -= 1
        return i, k

    chunks: list[Chunk] = []
    start = 0
    while True:
        start, _ = trimmed(start, n)
        if start >= n:
            break
        # the furthest end within the budget (a piece costs at most 5 < MIN_CHUNK_TOKENS)
        limit = bisect.bisect_right(total, total[start] + max_tokens, lo=start) - 1
        if limit >= n:
            end = n
        else:
            floor = total[start] + max_tokens * MIN_FILL
            best, end = INSIDE_WORD, limit
            for k in range(limit, start, -1):
                if total[k] < floor:
                    break
                quality = _quality(text, pieces, k)
                if quality > best:
                    best, end = quality, k
                    if quality == PARAGRAPH:
                        break
        first, last = trimmed(start, end)
        span_start, span_end = pieces[first].start, pieces[last - 1].end
        chunks.append(Chunk(len(chunks), span_start, span_end, text[span_start:span_end], cost(first, last)))
        if end >= n:
            break
        # the next chunk starts at the earliest word boundary whose tail fits in the overlap
        next_start = end
        if overlap_tokens:
            for j in range(first + 1, last):
                if cost(j, last) <= overlap_tokens and _quality(text, pieces, j) >= WORD:
                    next_start = j
                    break
        start = next_start
    return chunks
