"""The last tasks of a generated pipeline DAG: publish the run's results, and roll them back.

S3 goes through the Amazon provider's S3Hook (connection `aws_default` unless the DAG says
otherwise); without declared storage, results go to the local output directory.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from aistack import settings
from aistack.agents.usage import run_totals
from aistack.pipelines import output as pipeline_output
from aistack.pipelines.plan import PipelinePlan
from aistack.pipelines.status import RunReporter
from aistack.resources.orchestration import StorageType
from aistack_airflow.operators.a2a import pulled_result


class S3Storage:
    def __init__(self, bucket: str, aws_conn_id: str) -> None:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        self.bucket = bucket
        self.hook = S3Hook(aws_conn_id=aws_conn_id)

    def put(self, key: str, data: bytes, content_type: str) -> str:
        self.hook.load_bytes(data, key=pipeline_output.checked_key(key), bucket_name=self.bucket, replace=True)
        return f"s3://{self.bucket}/{key}"

    def get(self, key: str) -> bytes | None:
        checked = pipeline_output.checked_key(key)
        if not self.hook.check_for_key(checked, bucket_name=self.bucket):
            return None
        body: bytes = self.hook.get_key(checked, bucket_name=self.bucket).get()["Body"].read()
        return body

    def delete(self, key: str) -> None:
        self.hook.delete_objects(bucket=self.bucket, keys=[pipeline_output.checked_key(key)])


def output_target(plan: PipelinePlan, aws_conn_id: str) -> tuple[PipelinePlan, pipeline_output.Storage]:
    """Where the results go, and the plan that names their keys there. AISTACK_LOCAL_OUTPUTS sends
    them to the output directory as is, without the declared bucket, prefix or local path."""
    if settings.local_outputs_only():
        local = dataclasses.replace(plan, storage=StorageType.LOCAL, bucket=None, prefix="", local_path=None)
        return local, pipeline_output.LocalStorage(settings.output_dir())
    if plan.storage is StorageType.S3:
        assert plan.bucket is not None
        return plan, S3Storage(plan.bucket, aws_conn_id)
    root = settings.output_dir() if plan.local_path is None else settings.output_dir() / plan.local_path
    return plan, pipeline_output.LocalStorage(root, within=settings.output_dir())


FAILED_STATES = ("failed", "upstream_failed")


def step_states(plan: PipelinePlan, context: Any) -> dict[str, str]:
    """The run's step states, as the scheduler sees them (a skipped failure handler is not a failure)."""
    ti = context["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[context["run_id"]], task_ids=[s.task_id for s in plan.steps])
    return {task: str(state) for task, state in (states.get(context["run_id"]) or {}).items()}


USAGE_SHOWN = ("promptTokens", "completionTokens", "modelSeconds", "agentCalls")


class PublishResultsOperator(BaseOperator):
    """Writes every step's artifacts in each declared format; returns the locations.

    The run fails (after writing) when a final step did not complete: a failed step whose
    failure a downstream `condition: failure` step handled does not fail the run.
    """

    def __init__(self, *, plan: PipelinePlan, aws_conn_id: str = "aws_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan, self.aws_conn_id = plan, aws_conn_id

    def execute(self, context: Any) -> list[str]:
        ti = context["ti"]
        results = {step.task_id: pulled_result(ti, step.results_task_id) for step in self.plan.steps}
        self._report_fan_outs(context, results)
        plan, storage = output_target(self.plan, self.aws_conn_id)
        locations = pipeline_output.publish(plan, context["run_id"], results, storage)
        for location in locations:
            self.log.info("wrote %s", location)
        missing = [name for name, result in results.items() if not result]
        done = len(results) - len(missing)
        if missing:
            self.log.warning("steps that did not complete: %s", ", ".join(missing))
            message = f"steps that did not complete: {', '.join(missing)}"
        else:
            message = "every step completed"
        states = step_states(self.plan, context)
        unfinished = [leaf for leaf in self.plan.leaves if states.get(leaf) in FAILED_STATES]
        usage = run_totals((result or {}).get("usage") for result in results.values())
        ti.xcom_push(key="usage", value=usage)  # the TaskOrchestrations page shows the latest run's totals
        self.log.info("run usage: %s prompt + %s completion tokens, %.2fs in models, %s agent calls", *(usage[k] for k in USAGE_SHOWN))
        RunReporter.for_run(self.plan, context["run_id"]).finished("Failed" if unfinished else "Succeeded", done, message, locations, usage=usage)
        if unfinished:
            raise AirflowException(f"final steps that did not complete: {', '.join(unfinished)} (results written to {', '.join(locations)})")
        return locations

    def _report_fan_outs(self, context: Any, results: dict[str, Any]) -> None:
        """A forEach step's own node, once its items are done: how many, how many failed."""
        report = RunReporter.for_run(self.plan, context["run_id"])
        for step in self.plan.steps:
            result = results.get(step.task_id)
            if step.for_each and result:
                failed = sum(1 for item in result["items"] if item["state"] != "TASK_STATE_COMPLETED")
                phase = "Succeeded" if result["state"] == "TASK_STATE_COMPLETED" else "Failed"
                report.step(step.task_id, phase, items=len(result["items"]), failedItems=failed, usage=result.get("usage"))


class RollbackResultsOperator(BaseOperator):
    """failureAction rollback: once everything else is done, if a step failed, remove what this run
    published, record it, and fail the run; skipped when every step completed."""

    def __init__(self, *, plan: PipelinePlan, aws_conn_id: str = "aws_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan, self.aws_conn_id = plan, aws_conn_id

    def execute(self, context: Any) -> None:
        states = step_states(self.plan, context)
        failed = [task for task, state in states.items() if state in FAILED_STATES]
        published = context["ti"].xcom_pull(task_ids="publish")
        if not failed and published:
            raise AirflowSkipException("no step failed and the results were published: nothing to roll back")
        if not failed:
            failed = ["publish"]
        plan, storage = output_target(self.plan, self.aws_conn_id)
        removed = []
        for key in pipeline_output.published_keys(plan, context["run_id"]):
            storage.delete(key)
            removed.append(key)
            self.log.info("rolled back %s", key)
        context["ti"].xcom_push(key="rolled_back", value=removed)
        done = sum(1 for step in self.plan.steps if pulled_result(context["ti"], step.results_task_id))
        RunReporter.for_run(self.plan, context["run_id"]).finished("RolledBack", done, f"a step failed; removed {', '.join(removed) or 'nothing'}", [])
        raise AirflowException(f"{', '.join(failed)} failed: rolled back {len(removed)} published objects of run {context['run_id']}")
