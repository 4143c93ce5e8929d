"""A step's human review (`review`): Airflow's human-in-the-loop operator, after the step's task.

The reviewer answers where Airflow asks for every human-in-the-loop decision: the run's
"Required actions" in the UI, or the REST API (`/api/v2/hitlDetails`, PATCH the task instance's
detail with `chosen_options` and `params_input`). The request shows the step's artifacts; with
`allowEdit`, the form has one field per text artifact, prefilled with the agent's text, and what
the reviewer leaves there is what downstream steps receive. Approve: the step's result goes on
(edited or not). Reject, or a timeout whose meaning is reject: this task fails, so the pipeline's
conditions and errorPolicy take over as for a failed step.

Nothing here is a template: the subject and body come from the resource and the agent, and
are set when the task runs, never rendered by Jinja.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException

from aistack import settings
from aistack.pipelines.review import APPROVE, REJECT, decision_of, edited_result, review_body
from aistack.pipelines.status import RunReporter
from aistack.resources.orchestration import ReviewTimeout, StepReview
from aistack_airflow.operators.a2a import pulled_result
from aistack_airflow.operators.pipeline_step import plan_of


class ReviewOperator(HITLOperator):
    """Asks a person to approve, reject or edit a step's output; returns the (edited) result."""

    template_fields = ()
    ui_color = "#fdf3e1"

    def __init__(self, *, step: str, review: StepReview, editable: Sequence[str] = (), **kwargs: Any) -> None:
        fields = {name: Param("", type="string", format="multiline", title=f"{name} (edit before approving)") for name in editable}
        kwargs.pop("params", None)  # the DAG's (its run input): the review form has only its own fields
        super().__init__(
            subject=review.subject or f"Review {step}",
            options=[APPROVE, REJECT],
            defaults=[APPROVE if review.on_timeout is ReviewTimeout.APPROVE else REJECT],
            params=fields,
            response_timeout=review.timeout,
            **kwargs,
        )
        self.step, self.editable = step, list(editable)

    def execute(self, context: Any) -> Any:
        plan = plan_of(self.dag)
        if settings.unattended():
            raise AirflowFailException(
                f"step {self.step} needs a person's review, and nobody can answer in this run: run the pipeline under "
                "`aistack airflow` (or a deployed Airflow) and answer in the run's Required actions"
            )
        result = pulled_result(context["ti"], self.step)
        if not result:
            raise AirflowFailException(f"step {self.step} returned nothing to review")
        self.body = review_body(plan.name, self.step, result)
        for name in self.editable:  # the form opens with the agent's text
            artifact = next((a for a in result.get("artifacts", []) if a.get("name") == name), None)
            self.params[name] = str((artifact or {}).get("text", ""))
        RunReporter.for_run(plan, context["run_id"]).step(self.step, "Succeeded", review="awaiting review")
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        answer = super().execute_complete(context, event)
        plan = plan_of(self.dag)
        result = pulled_result(context["ti"], self.step) or {}
        decision = decision_of(answer, timed_out=bool(event.get("timedout")), original=result, editable=self.editable)
        report = RunReporter.for_run(plan, context["run_id"])
        report.step(self.step, "Succeeded" if decision.approved else "Failed", review=decision.summary)
        self.log.info("review of %s: %s", self.step, decision.summary)
        if not decision.approved:
            raise AirflowFailException(f"the review of step {self.step} did not approve it: {decision.summary}")
        return edited_result(result, decision)


def editable_artifacts(artifacts: Sequence[Mapping[str, Any]]) -> list[str]:
    """The artifacts a reviewer may edit: the text ones (JSON answers keep their schema)."""
    return [a["name"] for a in artifacts if not str(a.get("mediaType", "")).endswith("json")]
