"""A generated pipeline's step: an A2AAgentOperator that reports its progress on the resource."""

from __future__ import annotations

from typing import Any

from aistack.agents.quality import RUN_INPUT
from aistack.pipelines.plan import PipelinePlan, StepPlan
from aistack.pipelines.status import RunReporter, now
from aistack_airflow.operators.a2a import A2A_TASK_KEY, A2AAgentOperator

PLAN_ATTRIBUTE = "aistack_plan"


def attach_plan(dag: Any, plan: PipelinePlan) -> None:
    """Give a generated DAG its pipeline plan, which every step task reads from its DAG.

    The plan is not an operator argument because Airflow wraps the __init__ of every class in an
    operator's hierarchy, and each wrapper deep-copies the DAG's params: a third level cost about
    0.2 s (10%) of building 1,000 pipelines of 10 steps, on every parse of the DAG file. Nor an
    attribute set on each task: a forEach step is a mapped task, whose task instances Airflow
    builds from its arguments alone; the DAG they belong to is the same object either way.
    """
    setattr(dag, PLAN_ATTRIBUTE, plan)


def plan_of(dag: Any) -> PipelinePlan:
    plan: PipelinePlan = getattr(dag, PLAN_ATTRIBUTE)
    return plan


class PipelineStepOperator(A2AAgentOperator):
    """One step of a generated pipeline; its plan comes from its DAG (see `attach_plan`)."""

    # Nothing of a step is a template: its prompt and names come from a resource, and text from a
    # resource is data. The run's input is read from the run's params when the step executes.
    template_fields = ()

    @property
    def plan(self) -> PipelinePlan:
        return plan_of(self.dag)

    @property
    def step_plan(self) -> StepPlan:
        return self.plan.step(self.task_id)

    def _gather_inputs(self, context: Any) -> list[Any]:
        """The artifacts (see A2AAgentOperator), then the run's input unless the step opts out: last,
        next to where the model starts answering, so a small model draws on the document rather
        than on an upstream step's answer."""
        return [*super()._gather_inputs(context), *self._own_inputs(context)]

    def _own_inputs(self, context: Any) -> list[dict[str, Any]]:
        """What the step sends besides upstream artifacts: the run's input (the run's `input`
        param, else the resource's), unless the step opts out."""
        if not self.step_plan.include_input:
            return []
        text = (context.get("params") or {}).get("input", self.plan.input_text)
        return [{"name": RUN_INPUT, "mediaType": self.plan.input_format.value, "text": str(text)}]

    def _reporter(self, context: Any) -> RunReporter:
        """Where this task's progress goes: the step's node on the resource's status."""
        return RunReporter.for_run(self.plan, context["run_id"])

    def execute(self, context: Any) -> dict[str, Any]:
        report = self._reporter(context)
        report.step(self.task_id, "Running", startedAt=now(), attempts=context["ti"].try_number)
        return self._reported(report, context, super().execute, context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        return self._reported(self._reporter(context), context, super().execute_complete, context, event)

    def _reported(self, report: RunReporter, context: Any, call: Any, *args: Any) -> dict[str, Any]:
        a2a = lambda: (context["ti"].xcom_pull(task_ids=self.task_id, key=A2A_TASK_KEY) or {}).get("taskId")  # noqa: E731
        try:
            result = call(*args)
        except Exception as exc:
            report.step(self.task_id, "Failed", finishedAt=now(), attempts=context["ti"].try_number, a2aTaskId=self._a2a_task_id or a2a(), message=str(exc)[:1000])
            raise
        report.step(
            self.task_id,
            "Succeeded",
            finishedAt=now(),
            attempts=context["ti"].try_number,
            a2aTaskId=result.get("taskId"),
            artifacts=[a["name"] for a in result["artifacts"]],
        )
        return result
