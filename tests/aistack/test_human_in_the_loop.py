"""What a person is shown when a step is reviewed or an agent asks a question, and what their
answer does (aistack.pipelines.review; the Airflow side is tested in tests/airflow_api)."""

from __future__ import annotations

import pytest

from aistack.pipelines.review import (
    ANSWER,
    APPROVE,
    GIVE_UP,
    REJECT,
    Unanswered,
    answer_of,
    decision_of,
    edited_result,
    fenced,
    question_body,
    review_body,
)

RESULT = {
    "state": "TASK_STATE_COMPLETED",
    "artifacts": [
        {"name": "summary", "mediaType": "text/plain", "text": "The **sun** rises.\n```\nnot closed"},
        {"name": "facts", "mediaType": "application/json", "data": {"n": 1}},
    ],
}


def test_an_agents_text_is_shown_in_a_fence_it_cannot_close():
    text = "close it: ````\n# heading"
    block = fenced(text)
    fence = block.splitlines()[0].removesuffix("text")
    assert len(fence) == 5 and block.endswith("\n" + fence)
    assert text in block


def test_the_review_shows_every_artifact_and_is_bounded():
    body = review_body("digest", "summarize", RESULT)
    assert "Step **summarize** of pipeline **digest**" in body
    assert "The **sun** rises." in body and '"n": 1' in body
    huge = review_body("p", "s", {"artifacts": [{"name": "a", "mediaType": "text/plain", "text": "x" * 50_000}]})
    assert len(huge) < 21_000 and "(first 20,000 of 50,000 characters)" in huge


def test_an_approval_with_an_edit_replaces_the_text_downstream_gets():
    answer = {"chosen_options": [APPROVE], "params_input": {"summary": "Edited."}, "responded_by_user": {"id": "7", "name": "alice"}}
    decision = decision_of(answer, timed_out=False, original=RESULT, editable=["summary"])
    assert decision.approved and decision.summary == "edited by alice" and decision.edits == {"summary": "Edited."}
    result = edited_result(RESULT, decision)
    assert [a.get("text") for a in result["artifacts"]] == ["Edited.", None]
    assert result["review"] == {"decision": "edited by alice", "edited": ["summary"]}
    assert RESULT["artifacts"][0]["text"].startswith("The **sun**"), "the agent's result is left as it was"


def test_an_unchanged_field_is_no_edit_and_a_rejection_keeps_nothing():
    same = {"chosen_options": [APPROVE], "params_input": {"summary": RESULT["artifacts"][0]["text"]}, "responded_by_user": {"name": "bob"}}
    assert decision_of(same, timed_out=False, original=RESULT, editable=["summary"]).summary == "approved by bob"
    rejected = decision_of({"chosen_options": [REJECT], "params_input": {"summary": "x"}}, timed_out=False, original=RESULT, editable=["summary"])
    assert not rejected.approved and rejected.edits == {} and rejected.summary == "rejected by a reviewer"
    assert decision_of({"chosen_options": [REJECT]}, timed_out=True, original=RESULT, editable=[]).summary == "timed out: rejected"


def test_the_question_is_shown_with_its_round_and_where_the_answer_goes():
    body = question_body("travel-agent", "plan", "Which city? ```", 2, 3, "task-1")
    assert "Agent **travel-agent** needs more input to finish step **plan** (question 2 of at most 3)" in body
    assert "````text\nWhich city? ```\n````" in body and "`task-1`" in body
    assert "(the agent asked without saying what it needs)" in question_body("a", "s", "", 1, 1, "t")


def test_an_answer_is_the_field_of_a_sent_answer():
    event = {"chosen_options": [ANSWER], "params_input": {"answer": "Lisbon"}, "responded_by_user": {"name": "alice"}}
    assert answer_of(event, timeout="1h") == "Lisbon"


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({"error": "The response timeout has passed without a response.", "error_type": "timeout"}, "nobody answered the agent's question within 1h"),
        ({"chosen_options": [GIVE_UP], "params_input": {"answer": "x"}, "responded_by_user": {"name": "alice"}}, "alice gave up"),
        ({"chosen_options": [ANSWER], "params_input": {"answer": "  "}}, "the answer to the agent's question was empty: write it in the field 'answer'"),
        ({"chosen_options": [ANSWER], "params_input": {}}, "was empty"),
    ],
)
def test_no_answer_says_why(event, why):
    with pytest.raises(Unanswered, match=why):
        answer_of(event, timeout="1h")
