"""Map-reduce over chunks, and reading the agent's answers."""

from __future__ import annotations

import json

import pytest

from aistack.documents.chunking import chunk_text
from aistack.documents.summarize import SummaryError, answer_text, message_id, summarize_chunks

from .support import RecordingSummarizer

TEXT = "\n\n".join(f"Paragraph {i} opens with its own sentence. Then it goes on about topic {i} at some length." for i in range(12))


def test_plain_and_fenced_answers_are_kept():
    assert answer_text("  A plain summary.\n") == "A plain summary."
    assert answer_text("```markdown\n# Title\n- point\n```") == "# Title\n- point"


def test_json_answers_become_markdown():
    answer = json.dumps({"summary": "It is short.", "main_points": ["one", "two"], "themes": [], "score": 3})
    assert answer_text(answer) == "It is short.\n\n**Main points**\n- one\n- two\n\n**Score:** 3"
    assert answer_text('["a", "b"]') == "- a\n- b"


def test_cut_off_json_answers_are_salvaged():
    assert answer_text('{"main_points": ["The bridge is rotten.", "Clear the deb') == "- The bridge is rotten.\n- Clear the deb..."
    assert answer_text('{"main_points": [') == ""


def test_one_chunk_is_one_call_without_reduce():
    summarizer = RecordingSummarizer()
    chunks = chunk_text("A short document. It has two sentences.", 64)
    result = summarize_chunks("short.txt", chunks, summarizer, budget=64, message_prefix="p")
    assert result.calls == 1 and result.levels == 0 and len(summarizer.calls) == 1
    assert 'Summarize the document "short.txt"' in summarizer.calls[0][0]
    assert result.summary == "**Main points**\n- A short document.\n\n**Themes**\n- short.txt"


def test_chunks_are_mapped_then_reduced_level_by_level():
    chunks = chunk_text(TEXT, 40, 8)
    summarizer = RecordingSummarizer()
    result = summarize_chunks("long.txt", chunks, summarizer, budget=40, message_prefix="p")
    prompts = [prompt for prompt, _ in summarizer.calls]
    parts = [p for p in prompts if p.startswith("Summarize part")]
    combines = [p for p in prompts if p.startswith("Below are summaries")]
    assert len(parts) == len(chunks) > 4
    assert f"part 1 of {len(chunks)}" in parts[0] and chunks[0].text in parts[0]
    assert result.levels >= 2, "small budgets need several reduce levels"
    assert result.calls == len(prompts) == len(parts) + len(combines)
    assert combines[-1].count("of the whole document") == 1
    assert result.parts[0].startswith("**Main points**\n- Paragraph 0 opens")
    ids = [mid for _, mid in summarizer.calls]
    assert len(set(ids)) == len(ids), "every call has its own message id"


def test_message_ids_are_deterministic():
    chunks = chunk_text(TEXT, 60, 8)
    first, second = RecordingSummarizer(), RecordingSummarizer()
    summarize_chunks("t", chunks, first, budget=60, message_prefix="p")
    summarize_chunks("t", chunks, second, budget=60, message_prefix="p")
    assert first.calls == second.calls
    assert message_id("p", "part", 0) != message_id("q", "part", 0)


def test_an_empty_answer_is_an_error():
    with pytest.raises(SummaryError, match="empty"):
        summarize_chunks("t", chunk_text("Some text.", 64), RecordingSummarizer({0: "  "}), budget=64, message_prefix="p")
