"""The evidence behind a quality verdict: grounded, non-degenerate work passes; made-up or
degenerate work fails, and the evidence says which statements and why."""

from __future__ import annotations

import pytest

from aistack.agents.quality import GROUNDED_SHARE, content_words, is_verdict, measure, support
from tests.aistack.local.support import REPO

SOURCE = (REPO / "examples" / "summarization-pipeline" / "document.md").read_text()
SCHEMA = {
    "type": "object",
    "required": ["main_points", "themes"],
    "properties": {"main_points": {"type": "array", "items": {"type": "string"}}, "themes": {"type": "array", "items": {"type": "string"}}},
}
FAITHFUL = {
    "main_points": [
        "Riverside Public Library stayed open until 21:00 on Tuesdays and Thursdays from March to August.",
        "Evening visits grew from an average of 38 in March to 71 in August.",
        "Book loans in the evening reached 1,920 over the six months.",
        "The homework club became the most popular evening activity.",
    ],
    "themes": ["evening opening", "library visitors"],
}


def test_a_faithful_summary_passes():
    evidence = measure(FAITHFUL, SOURCE, SCHEMA)
    assert evidence.passed, evidence.problems()
    assert evidence.statements == 6 and evidence.grounded_share == 1.0


def test_a_made_up_summary_fails_and_names_the_unsupported_statements():
    made_up = {
        "main_points": [
            "The city council closed the swimming pool because of budget cuts.",
            "Riverside Public Library stayed open until 21:00 on Tuesdays and Thursdays.",
            "A new stadium will be built next to the railway station by 2030.",
        ],
        "themes": ["sports facilities"],
    }
    evidence = measure(made_up, SOURCE, SCHEMA)
    assert not evidence.passed
    assert evidence.grounded_share < GROUNDED_SHARE
    assert "The city council closed the swimming pool because of budget cuts." in evidence.unsupported
    assert "A new stadium will be built next to the railway station by 2030." in evidence.unsupported
    assert any("statements are supported by the source" in p for p in evidence.problems())


@pytest.mark.parametrize(
    "work, problem",
    [
        ({"main_points": [], "themes": []}, "empty: /main_points"),
        ({}, "empty: /"),
        ({"main_points": ["The homework club became popular.", "The homework club became popular."], "themes": ["library"]}, "repeated: /main_points"),
        ({"main_points": ["items", "type", "array"], "themes": ["string"]}, "schema word as content: items"),
        ({"main_points": ["main_points"], "themes": ["library"]}, "schema word as content: main_points"),
        ({"main_points": ["library evening " * 80], "themes": ["library"]}, "over 600 characters"),
        (
            {"main_points": ["the library is open the library is open the library is open the library is open"], "themes": ["library"]},
            "repeated: the library is open",
        ),
    ],
)
def test_degenerate_summaries_fail(work, problem):
    evidence = measure(work, SOURCE, SCHEMA)
    assert not evidence.passed
    assert any(item.startswith(problem) for item in evidence.degenerate), evidence.degenerate


def test_the_work_must_match_its_schema_when_one_is_known():
    evidence = measure({"main_points": "not a list", "themes": ["library"]}, SOURCE, SCHEMA)
    assert not evidence.passed and evidence.schema_errors


def test_the_lexical_measure_stems_and_ignores_stop_words():
    source = frozenset(content_words(SOURCE))
    assert support("The library opened later in the evenings", source) == 1.0  # opened/open, evenings/evening
    assert support("Penguins migrate across Antarctica", source) == 0.0
    assert content_words("The 38 visitors, and the 71!") == ["38", "visitor", "71"]
    assert support("A spider's legs are eight.", frozenset(content_words("Spiders have eight legs."))) == 1.0
    assert support("A spider has 8 legs.", frozenset(content_words("Spiders have eight legs."))) == 1.0
    assert support("A spider has 6 legs.", frozenset(content_words("Spiders have eight legs."))) == 0.0


def test_a_huge_or_deep_work_is_walked_within_bounds():
    deep: object = "library"
    for _ in range(10_000):
        deep = [deep]
    assert measure(deep, SOURCE).statements == 0  # deeper than the bound: not walked, no recursion error
    wide = {"main_points": ["library"] * 100_000}
    assert measure(wide, SOURCE).statements == 500


def test_a_verdict_artifact_is_recognised():
    assert is_verdict({"name": "output", "data": {"passed": False, "evidence": {"passed": False}}})
    assert not is_verdict({"name": "output", "data": {"passed": False}})
    assert not is_verdict({"name": "answer", "text": "passed"})
