"""How a TaskOrchestration maps onto an Airflow DAG, decided without Airflow.

The generator plugin turns a plan into a DAG; `aistack run` and the golden tests read the
same plan, so the mapping (ids, edges, trigger rules, retries, timeouts) is defined once.

dag_id rule: `aistack__<namespace>__<name>`. Kubernetes names cannot contain "_", so the
id is unique and reversible; when it would exceed Airflow's 250 characters (or the names are
not Kubernetes names, as in an invalid resource), the name part is shortened and "_" and a
hash of the pair appended (see `dag_id_for`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta

from aistack.resources import TaskOrchestration
from aistack.resources.orchestration import (
    PUBLISHED_PREFIX,
    ArtifactDeclaration,
    ArtifactReference,
    FailureAction,
    ForEach,
    MediaType,
    Schedule,
    StepCondition,
    StepReview,
    StepVerdict,
    StorageType,
)
from aistack.resources.types import DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN, format_duration

DAG_ID_PREFIX = "aistack__"
MAX_DAG_ID = 250
HASH_LENGTH = 16  # 64 bits: no two resources of one cluster collide by chance
_K8S_NAMESPACE = re.compile(DNS_LABEL_PATTERN)
_K8S_NAME = re.compile(DNS_SUBDOMAIN_PATTERN)
TRIGGER_RULES = {
    StepCondition.SUCCESS: "all_success",
    StepCondition.FAILURE: "one_failed",
    StepCondition.ALWAYS: "all_done",
    StepCondition.ANY_SUCCESS: "one_success",
}
FIRST_RETRY_DELAY = timedelta(seconds=5)
ITEMS_SUFFIX = "__items"
REVIEW_SUFFIX = "__review"
"""Task ids of the tasks a step adds: step names are RFC 1123 labels, which never hold "_", so
these never equal a step's own id."""


@dataclass(frozen=True)
class StepPlan:
    task_id: str
    agent_ref: str
    upstream: tuple[str, ...]
    trigger_rule: str
    retries: int
    retry_delay: timedelta
    max_retry_delay: timedelta
    execution_timeout: timedelta | None
    prompt: str | None
    inputs: tuple[ArtifactReference, ...]
    artifacts: tuple[ArtifactDeclaration, ...]
    include_input: bool = True
    enforce_verdict: bool = True
    for_each: ForEach | None = None
    cache_ttl: timedelta | None = None
    review: StepReview | None = None
    input_rounds: int = 3
    input_timeout: timedelta = timedelta(hours=1)

    @property
    def items_task_id(self) -> str | None:
        """The task that lists a forEach step's items (None for a plain step)."""
        return self.task_id + ITEMS_SUFFIX if self.for_each else None

    @property
    def review_task_id(self) -> str | None:
        """The task where a person reviews the step's output (None without review)."""
        return self.task_id + REVIEW_SUFFIX if self.review else None

    @property
    def results_task_id(self) -> str:
        """The task whose XCom holds the step's results as downstream steps see them: the
        reviewed (possibly edited) ones when the step is reviewed."""
        return self.review_task_id or self.task_id

    @property
    def last_task_id(self) -> str:
        """The step's last task: downstream steps and publish run after it."""
        return self.results_task_id

    @property
    def takes_upstream_results(self) -> bool:
        """Steps without inputFrom get every artifact of their upstream steps (so the seed's quality
        check sees the summary it checks); the others get exactly their inputFrom. A step whose
        items come from an upstream artifact gets its item, not the whole artifact again."""
        return not self.inputs and not (self.for_each and self.for_each.from_artifact)

    def receives(self) -> str:
        """What the step's message holds, in words (the DAG docs and the README say the same)."""
        parts = ["the prompt"] if self.prompt else [] if self.include_input else ["a generic instruction"]
        from_input = bool(self.for_each and self.for_each.from_input)
        if self.include_input and not from_input:
            parts.append("the run's input")
        if self.for_each:
            parts.append(f"one item ({_items_source(self.for_each)})")
        if self.inputs:
            parts += [f"{ref.artifact_name} from {ref.task_ref}" for ref in self.inputs]
        elif self.upstream:
            parts.append(f"every artifact of {', '.join(self.upstream)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class PipelinePlan:
    dag_id: str
    namespace: str
    name: str
    tags: tuple[str, ...]
    doc_md: str
    input_text: str
    input_format: MediaType
    steps: tuple[StepPlan, ...]
    streaming: bool
    events_endpoint: str | None
    output_formats: tuple[MediaType, ...]
    storage: StorageType
    bucket: str | None
    prefix: str
    local_path: str | None
    failure_action: FailureAction
    schedule: Schedule | None = None

    def step(self, task_id: str) -> StepPlan:
        return next(s for s in self.steps if s.task_id == task_id)

    @property
    def leaves(self) -> tuple[str, ...]:
        upstream = {u for s in self.steps for u in s.upstream}
        return tuple(s.task_id for s in self.steps if s.task_id not in upstream)


def dag_id_for(namespace: str, name: str) -> str:
    """The DAG id of a resource: defined for any two strings (an invalid resource's DAG needs one
    too), always a valid Airflow id of at most 250 characters, and different for different pairs.

    Valid names that fit give the plain `aistack__<namespace>__<name>`. Anything else (a name too
    long, or not a Kubernetes name at all) keeps a readable part, made of the characters Airflow
    allows except "_", followed by "_" and a hash of the exact pair. Kubernetes names never hold
    "_", so a plain id can never equal a hashed one, and two hashed ids differ unless the hash does.
    """
    plain = f"{DAG_ID_PREFIX}{namespace}__{name}"
    if len(plain) <= MAX_DAG_ID and _K8S_NAMESPACE.fullmatch(namespace) and _K8S_NAME.fullmatch(name):
        return plain
    digest = hashlib.sha256(json.dumps([namespace, name]).encode()).hexdigest()[:HASH_LENGTH]
    readable_namespace = _readable(namespace)[:63]
    keep = MAX_DAG_ID - len(f"{DAG_ID_PREFIX}{readable_namespace}__") - len(digest) - 1
    return f"{DAG_ID_PREFIX}{readable_namespace}__{_readable(name)[:keep]}_{digest}"


def _readable(text: str) -> str:
    """`text` in the characters a DAG id allows, except the "_" that marks a hashed id."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", text) or "-"


def published_asset(namespace: str, name: str) -> str:
    """The asset a pipeline's publish task updates: other pipelines of the namespace can be
    scheduled on it (spec.schedule.assets)."""
    return f"{PUBLISHED_PREFIX}{namespace}/{name}"


def parse_dag_id(dag_id: str) -> tuple[str, str] | None:
    """(namespace, name) of a generated DAG's id; None for other ids (and hashed ones)."""
    if not dag_id.startswith(DAG_ID_PREFIX):
        return None
    namespace, sep, name = dag_id[len(DAG_ID_PREFIX) :].partition("__")
    if not sep or dag_id_for(namespace, name) != dag_id:
        return None
    return namespace, name


def _items_source(for_each: ForEach) -> str:
    if for_each.from_input is not None:
        return f"of the run's input, split by {for_each.from_input.split.value}"
    if for_each.from_artifact is not None:
        ref = for_each.from_artifact
        return f"of {ref.artifact_name}{'.' + ref.path if ref.path else ''} from {ref.task_ref}"
    assert for_each.from_storage is not None
    source = for_each.from_storage
    where = f"s3://{source.bucket}/{source.prefix}" if source.bucket else f"the input folder's {source.prefix or '/'}"
    return f"an object of {where}, {source.window.value}"


def features(step: StepPlan) -> list[str]:
    """A step's extras in words: fan-out, cache, review (the DAG docs list them)."""
    notes = []
    if step.for_each:
        failure = step.for_each.on_item_failure.value
        notes.append(f"once per item, {step.for_each.max_parallel} at a time, at most {step.for_each.max_items}; a failed item: {failure}")
    if step.cache_ttl:
        notes.append(f"results reused for {format_duration(step.cache_ttl)}")
    if step.review:
        edit = ", may edit" if step.review.allow_edit else ""
        notes.append(f"reviewed by a person{edit} (timeout {format_duration(step.review.timeout)}: {step.review.on_timeout.value})")
    return notes


def plan(orchestration: TaskOrchestration) -> PipelinePlan:
    spec = orchestration.spec
    policy = spec.error_policy
    default_retries = policy.max_retries if policy else 0
    backoff_cap = timedelta(seconds=policy.backoff_limit if policy else 300)
    steps = tuple(
        StepPlan(
            task_id=step.name,
            agent_ref=step.agent_ref,
            upstream=tuple(step.depends_on or ()),
            trigger_rule=TRIGGER_RULES[step.condition],
            retries=step.retries if "retries" in step.model_fields_set else default_retries,
            retry_delay=min(FIRST_RETRY_DELAY, backoff_cap),
            max_retry_delay=backoff_cap,
            execution_timeout=step.timeout,
            prompt=step.prompt,
            inputs=tuple(step.input_from or ()),
            artifacts=tuple(step.artifacts or ()),
            include_input=step.include_input,
            enforce_verdict=step.verdict is StepVerdict.ENFORCED,
            for_each=step.for_each,
            cache_ttl=step.cache.ttl if step.cache else None,
            review=step.review,
            input_rounds=step.input_required.max_rounds if step.input_required else 3,
            input_timeout=step.input_required.timeout if step.input_required else timedelta(hours=1),
        )
        for step in spec.pipeline
    )
    output = spec.output
    storage = output.storage if output else None
    labels = orchestration.metadata.labels or {}
    return PipelinePlan(
        dag_id=dag_id_for(orchestration.namespace, orchestration.name),
        namespace=orchestration.namespace,
        name=orchestration.name,
        tags=("aistack", orchestration.namespace, *(f"{k}={v}" for k, v in sorted(labels.items()))),
        doc_md=_doc(orchestration, steps),
        input_text=spec.input.text,
        input_format=spec.input.format,
        steps=steps,
        streaming=bool(spec.communication and spec.communication.streaming),
        events_endpoint=_events_endpoint(orchestration),
        output_formats=tuple(f.type for f in (output.format if output and output.format else ())) or (MediaType.JSON,),
        storage=storage.type if storage else StorageType.LOCAL,
        bucket=storage.bucket if storage else None,
        prefix=storage.prefix if storage else "",
        local_path=storage.path if storage else None,
        failure_action=policy.failure_action if policy else FailureAction.CONTINUE,
        schedule=spec.schedule,
    )


def _events_endpoint(orchestration: TaskOrchestration) -> str | None:
    communication = orchestration.spec.communication
    push = communication.push_notifications if communication else None
    return push.endpoint if push and push.enabled else None


def _doc(orchestration: TaskOrchestration, steps: tuple[StepPlan, ...]) -> str:
    """The DAG's documentation in the Airflow UI: what runs, on which agents, in what order."""
    lines = [f"# {orchestration.name}", "", f"TaskOrchestration `{orchestration.namespace}/{orchestration.name}`.", ""]
    lines += ["| step | agent | after | when | receives | retries | timeout | returns |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for step, spec in zip(steps, orchestration.spec.pipeline):
        after = ", ".join(step.upstream) or "start"
        returns = ", ".join(f"{a.name} ({a.type.value})" for a in step.artifacts) or "text"
        timeout = format_duration(step.execution_timeout) if step.execution_timeout else "-"
        lines.append(f"| {step.task_id} | {step.agent_ref} | {after} | {spec.condition.value} | {step.receives()} | {step.retries} | {timeout} | {returns} |")
    extras = [f"- {step.task_id}: {'; '.join(notes)}" for step in steps if (notes := features(step))]
    if extras:
        lines += ["", *extras]
    schedule = orchestration.spec.schedule
    if schedule is not None:
        when = f"cron `{schedule.cron}`, one run per data interval" if schedule.cron else "updates of " + ", ".join(f"`{a}`" for a in schedule.assets or ())
        lines += ["", f"Schedule: {when}{' (catchup)' if schedule.catchup else ''}."]
    lines += ["", "Input:", "", "```", orchestration.spec.input.text.strip(), "```"]
    return "\n".join(lines)
