"""A generated pipeline's step: an A2AAgentOperator that reports its progress on the resource."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from airflow.sdk.exceptions import TaskAwaitingInput

from aistack.agents.quality import RUN_INPUT
from aistack.agents.usage import status_usage
from aistack.pipelines.cache import StepCache, cache_key, model_build
from aistack.pipelines.plan import PipelinePlan, StepPlan
from aistack.pipelines.status import RunReporter, now
from aistack_airflow.operators.a2a import A2A_TASK_KEY, A2AAgentOperator
from aistack_airflow.operators.pipeline_output import output_target

PLAN_ATTRIBUTE = "aistack_plan"


def attach_plan(dag: Any, plan: PipelinePlan) -> None:
    """Give a generated DAG its pipeline plan, which every step task reads from its DAG.

    The plan is not an operator argument because Airflow wraps the __init__ of every class in an
    operator's hierarchy, and each wrapper repeats its argument handling: a third level cost about
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

    def _reused_result(self, context: Any, inputs: list[Any]) -> dict[str, Any] | None:
        """With `cache`, a result of an earlier run of the same agent, model build and message
        (aistack.pipelines.cache); remembers the key so a fresh result is stored after the call."""
        self._cache_entry: tuple[StepCache, str, str] | None = None
        ttl = self.step_plan.cache_ttl
        if ttl is None:
            return None
        build = model_build(self._agent_url)
        if build is None:
            self.log.warning("the agent did not say which model build it serves: the step runs without its cache")
            return None
        spec = {"artifacts": self.artifacts, "includeInput": self.step_plan.include_input, "enforceVerdict": self.enforce_verdict}
        key = cache_key(namespace=self.agent_namespace, agent=self.agent or self._agent_url, build=build, text=self.text, inputs=inputs, spec=spec)
        plan, storage = output_target(self.plan, "aws_default")
        cache = StepCache.for_step(storage, plan.prefix, plan.namespace, plan.name, self.task_id, ttl)
        self._cache_entry = (cache, key, build.digest)
        hit = cache.get(key)
        if hit is None:
            self.log.info("cache: no result of model %s (digest %s) for this message yet", build.model, build.digest)
            return None
        self.log.info(
            "cache: reused the result of run %s (cached at %s, model %s, digest %s); the agent was not called",
            hit.run_id,
            hit.created.isoformat(),
            build.model,
            build.digest,
        )
        reused = {k: v for k, v in hit.result.items() if k != "usage"}  # no tokens spent in this run
        return {**reused, "cached": {"fromRun": hit.run_id, "at": hit.created.isoformat()}}

    def _finish(self, result: dict[str, Any], context: Any) -> dict[str, Any]:
        finished = super()._finish(result, context)
        entry = getattr(self, "_cache_entry", None)
        if entry is not None and "cached" not in finished:
            cache, key, digest = entry
            try:
                cache.put(key, finished, context["run_id"], digest)
            except Exception as exc:  # the step succeeded; only its reuse is lost
                self.log.warning("cache: could not store the result: %s", exc)
        return finished

    def _questions(self) -> tuple[int, timedelta | None]:
        return self.step_plan.input_rounds, self.step_plan.input_timeout

    def _reporter(self, context: Any) -> RunReporter:
        """Where this task's progress goes: the step's node on the resource's status."""
        return RunReporter.for_run(self.plan, context["run_id"])

    def execute(self, context: Any) -> dict[str, Any]:
        report = self._reporter(context)
        report.step(self.task_id, "Running", startedAt=now(), attempts=context["ti"].try_number)
        return self._reported(report, context, super().execute, context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        return self._reported(self._reporter(context), context, super().execute_complete, context, event)

    def answer_agent(self, context: Any, event: dict[str, Any], round_: int, a2a_task_id: str, context_id: str) -> dict[str, Any]:
        answer = partial(super().answer_agent, round_=round_, a2a_task_id=a2a_task_id, context_id=context_id)
        return self._reported(self._reporter(context), context, answer, context, event)

    def _reported(self, report: RunReporter, context: Any, call: Any, *args: Any) -> dict[str, Any]:
        a2a = lambda: (context["ti"].xcom_pull(task_ids=self.task_id, key=A2A_TASK_KEY) or {}).get("taskId")  # noqa: E731
        try:
            result = call(*args)
        except TaskAwaitingInput as parked:  # the agent asked a question; a person answers it
            asked = (parked.kwargs or {}).get("round_")
            report.step(self.task_id, "AwaitingInput", attempts=context["ti"].try_number, a2aTaskId=self._a2a_task_id or a2a(), questions=asked)
            raise
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
            cached=(result.get("cached") or {}).get("fromRun"),
            usage=status_usage(result["usage"]) if result.get("usage") else None,
        )
        return result
