"""An agent's question (`TASK_STATE_INPUT_REQUIRED`) as a human-in-the-loop request of the step's task.

Airflow 3.3 parks a task that raises `TaskAwaitingInput` in the `awaiting_input` state, with no
process and no trigger, and shows its request in the run's Required actions (and in the REST
API's `/api/v2/hitlDetails`); the person's response (or the scheduler's timeout sweep) resumes the
task in the method it named, here `answer_agent`, which sends the answer to the same A2A task (its
taskId and contextId). A new question asks again, up to the bound on rounds.

Airflow keeps one request per task instance: asking again clears the earlier response but keeps
the first request's text (the Execution API's upsert does not replace it), so the newest question
also goes to the task log and to the XCom `agent_question`, and the request says so.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NoReturn

from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException, TaskAwaitingInput
from airflow.sdk.execution_time.hitl import upsert_hitl_detail

from aistack import settings
from aistack.pipelines.review import ANSWER, ANSWER_FIELD, GIVE_UP, question_body
from aistack.resources.types import format_duration

QUESTION_KEY = "agent_question"
RESUME_METHOD = "answer_agent"


def ask_person(context: Any, *, agent: str, step: str, result: dict[str, Any], round_: int, rounds: int, timeout: timedelta | None, log: Any) -> NoReturn:
    """Park the task until a person answers the agent's question (or fail, saying why it cannot)."""
    question, task_id = str(result.get("message") or ""), str(result["taskId"])
    if round_ > rounds:
        bound = f"allows {rounds}" if rounds else "allows none"
        raise AirflowFailException(f"the agent asked question {round_}, and the step {bound} (inputRequired.maxRounds): {question[:500]}")
    if settings.unattended():
        raise AirflowFailException(
            f"the agent needs more input, and nobody can answer in this run: run the pipeline under `aistack airflow` "
            f"(or a deployed Airflow) and answer in the run's Required actions. It asked: {question[:500]}"
        )
    log.info("the agent asks (question %d of at most %d, A2A task %s): %s", round_, rounds, task_id, question)
    context["ti"].xcom_push(key=QUESTION_KEY, value={"round": round_, "question": question, "taskId": task_id, "contextId": result.get("contextId")})
    upsert_hitl_detail(
        ti_id=context["task_instance"].id,
        options=[ANSWER, GIVE_UP],
        subject=f"{agent} asks a question (step {step})",
        body=question_body(agent, step, question, round_, rounds, task_id),
        defaults=None,  # unanswered at the timeout: the step fails
        multiple=False,
        params={ANSWER_FIELD: Param("", type="string", format="multiline", title="Your answer").serialize()},
    )
    raise TaskAwaitingInput(
        method_name=RESUME_METHOD,
        kwargs={"round_": round_, "a2a_task_id": task_id, "context_id": str(result.get("contextId") or "")},
        timeout=timeout,
    )


def timeout_words(timeout: timedelta | None) -> str:
    return format_duration(timeout) if timeout else "its time"
