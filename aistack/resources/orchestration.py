"""TaskOrchestration: a pipeline of agent steps that becomes one Airflow DAG."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictBool, StrictInt, StrictStr, WithJsonSchema, field_validator, model_validator
from pydantic_core import PydanticCustomError

from aistack.resources.base import CustomResource, PrinterColumn, ResourceStatus, WireModel
from aistack.resources.pipeline_graph import check_pipeline
from aistack.resources.types import Duration, HttpUrl, MediaType, RelativeKey, ResourceName, StepName, text_limit

MAX_STEPS = 100
PIPELINE_GRAPH_ERROR = "pipeline_graph"


MAX_INPUT_TEXT = 65_536
"""The resource's own input: it is stored in the cluster (etcd holds objects of at most 1.5 MB)
and in every parse of the DAG file (the DAG's default params), so it is meant for a question or
a short document; a run's `input` may be larger (MAX_RUN_INPUT)."""
MAX_RUN_INPUT = 1_048_576
MAX_PROMPT = 16_384
LARGE_INPUT_HINT = (
    "pass a large document when triggering a run (the run's `input`, or `aistack run --input-file`), "
    "or put documents in a folder or S3 prefix and list them with a step's forEach.fromStorage"
)

_INPUT_LIMIT = text_limit(MAX_INPUT_TEXT, LARGE_INPUT_HINT, "The input given to the steps (a question or a short document).")
_PROMPT_LIMIT = text_limit(MAX_PROMPT, "keep the instruction short and pass documents as the run's input", "An instruction sent with the step's input.")
InputText = Annotated[StrictStr, *_INPUT_LIMIT]
PromptText = Annotated[StrictStr, *_PROMPT_LIMIT]


class TaskInput(WireModel):
    text: InputText = Field(description="The input given to the steps (a question or a short document).")
    format: MediaType = Field(default=MediaType.TEXT, description="Media type of the text.")


class ArtifactDeclaration(WireModel):
    name: StepName = Field(description="Artifact name, unique within the step.")
    type: MediaType = Field(default=MediaType.TEXT, description="Media type the step must return it as.")
    schema_: dict[str, Any] | None = Field(default=None, alias="schema", description="Optional JSON schema a JSON artifact must satisfy.")


class ArtifactReference(WireModel):
    task_ref: StepName = Field(description="An upstream step (direct or transitive).")
    artifact_name: StepName = Field(description="An artifact that step declares.")


class StepCondition(str, Enum):
    """When a step runs, judged on its upstream steps (Airflow trigger rules)."""

    SUCCESS = "success"  # every upstream step succeeded
    FAILURE = "failure"  # at least one upstream step failed
    ALWAYS = "always"  # every upstream step finished, whatever the outcome
    ANY_SUCCESS = "anySuccess"  # at least one upstream step succeeded


class StepVerdict(str, Enum):
    """What a quality verdict the step returns (a quality check's `passed` with its evidence) does."""

    ENFORCED = "enforced"  # a verdict that did not pass fails the step (condition and errorPolicy take over)
    INFORMATIONAL = "informational"  # the verdict is recorded in the results only


def _cel(rule: str, message: str) -> ConfigDict:
    """A one-line rule the API server enforces too (x-kubernetes-validations), beside the Python check."""
    return ConfigDict(json_schema_extra={"x-kubernetes-validations": [{"rule": rule, "message": message}]})


class StorageType(str, Enum):
    S3 = "s3"
    LOCAL = "local"


class ItemSplit(str, Enum):
    """How the run's input becomes a list of items."""

    JSON = "json"  # a JSON array: each element is an item
    LINES = "lines"  # each non-blank line
    PARAGRAPHS = "paragraphs"  # blocks separated by blank lines
    SEPARATOR = "separator"  # pieces between occurrences of `separator`


class ItemsFromInput(WireModel):
    model_config = _cel("self.split != 'separator' || has(self.separator)", "separator is required when split is separator")

    split: ItemSplit = Field(default=ItemSplit.JSON, description="`json` (a JSON array), `lines`, `paragraphs` or `separator`.")
    separator: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = Field(default=None, description="The text between items (split separator).")

    @model_validator(mode="after")
    def _separator_when_needed(self) -> ItemsFromInput:
        if self.split is ItemSplit.SEPARATOR and not self.separator:
            raise ValueError("separator is required when split is separator")
        return self


JSON_PATH_PATTERN = r"^([A-Za-z0-9_-]+|\[[0-9]+\])(\.[A-Za-z0-9_-]+|\[[0-9]+\])*$"


class ItemsFromArtifact(WireModel):
    task_ref: StepName = Field(description="An upstream step (direct or transitive).")
    artifact_name: StepName = Field(description="A JSON artifact that step declares.")
    path: Annotated[StrictStr, Field(max_length=256), WithJsonSchema({"type": "string", "maxLength": 256, "pattern": JSON_PATH_PATTERN})] | None = Field(
        default=None, description="Where the array is inside the artifact, such as `documents` or `result.items[0]`; the artifact itself when omitted."
    )

    @field_validator("path")
    @classmethod
    def _valid_path(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(JSON_PATH_PATTERN, value):
            raise PydanticCustomError("json_path", f"invalid path {value!r}: write field names and [index] joined by '.', such as result.items[0]")
        return value


class ItemWindow(str, Enum):
    """Which objects of a storage listing become items."""

    DATA_INTERVAL = "dataInterval"  # modified within the run's data interval: what arrived since the last scheduled run
    ALL = "all"  # every object under the prefix


class ItemsFromStorage(WireModel):
    model_config = _cel("self.type != 's3' || has(self.bucket)", "bucket is required when type is s3")

    type: StorageType = Field(description="`s3`, or `local` for a folder below the input directory (AISTACK_INPUT_DIR).")
    bucket: StrictStr | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="S3 bucket (type s3).")
    prefix: RelativeKey = Field(default="", description="Key prefix (S3) or folder (local) listed for items, e.g. `incoming/`.")
    window: ItemWindow = Field(default=ItemWindow.DATA_INTERVAL, description="`dataInterval`: objects modified in the run's data interval; `all`: every object.")
    chunk_tokens: StrictInt | None = Field(
        default=None,
        ge=64,
        le=32_768,
        description="Cut each document into chunks of at most this many tokens (a tenth of them overlapping), one item per chunk, "
        "for documents longer than the agent's context; without it, a document is one item.",
    )

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> ItemsFromStorage:
        if self.type is StorageType.S3 and not self.bucket:
            raise ValueError("bucket is required when type is s3")
        return self


class ItemFailure(str, Enum):
    """What one failed item (after its retries) does to its step."""

    FAIL = "fail"  # the step fails (the other items still finish)
    CONTINUE = "continue"  # the step succeeds with the items that did; the failed ones are reported


MAX_ITEMS = 10_000


class ForEach(WireModel):
    model_config = _cel(
        "(has(self.fromInput) ? 1 : 0) + (has(self.fromArtifact) ? 1 : 0) + (has(self.fromStorage) ? 1 : 0) == 1",
        "set exactly one of fromInput, fromArtifact and fromStorage",
    )

    from_input: ItemsFromInput | None = Field(default=None, description="Items from the run's input.")
    from_artifact: ItemsFromArtifact | None = Field(default=None, description="Items from a JSON array in an upstream step's artifact.")
    from_storage: ItemsFromStorage | None = Field(default=None, description="Items from the objects of an S3 prefix or a folder.")
    max_parallel: StrictInt = Field(default=4, ge=1, le=64, description="Items run at the same time.")
    max_items: StrictInt = Field(default=1000, ge=1, le=MAX_ITEMS, description="More items than this fails the step before any runs.")
    on_item_failure: ItemFailure = Field(
        default=ItemFailure.FAIL, description="`fail`: a failed item fails the step; `continue`: it is reported and the rest go on."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ForEach:
        sources = {"fromInput": self.from_input, "fromArtifact": self.from_artifact, "fromStorage": self.from_storage}
        given = [name for name, value in sources.items() if value is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of fromInput, fromArtifact and fromStorage (given: {', '.join(given) or 'none'})")
        return self


class StepCache(WireModel):
    ttl: Duration = Field(default=timedelta(hours=24), description="How long a result may be reused.")

    @model_validator(mode="after")
    def _bounded_ttl(self) -> StepCache:
        if not timedelta(minutes=1) <= self.ttl <= timedelta(days=365):
            raise ValueError("ttl must be between 1m and 8760h")
        return self


class ReviewTimeout(str, Enum):
    """What a review nobody answered in time means."""

    APPROVE = "approve"
    REJECT = "reject"


SubjectText = Annotated[StrictStr, Field(min_length=1, max_length=256)]


class StepReview(WireModel):
    subject: SubjectText | None = Field(default=None, description="The headline the reviewer sees; `Review <step>` when omitted.")
    allow_edit: StrictBool = Field(default=False, description="The reviewer may replace the step's text artifacts before they go downstream.")
    timeout: Duration = Field(default=timedelta(hours=24), description="How long to wait for a decision.")
    on_timeout: ReviewTimeout = Field(default=ReviewTimeout.REJECT, description="`reject` (the step fails) or `approve` (the output goes on as it is).")

    @model_validator(mode="after")
    def _bounded_timeout(self) -> StepReview:
        if not timedelta(minutes=1) <= self.timeout <= timedelta(days=30):
            raise ValueError("timeout must be between 1m and 720h")
        return self


class InputRequired(WireModel):
    max_rounds: StrictInt = Field(default=3, ge=0, le=20, description="Questions a person may answer before the step fails; 0: fail at the first.")
    timeout: Duration = Field(default=timedelta(hours=1), description="How long each question waits for an answer; unanswered, the step fails.")

    @model_validator(mode="after")
    def _bounded_timeout(self) -> InputRequired:
        if not timedelta(minutes=1) <= self.timeout <= timedelta(days=30):
            raise ValueError("timeout must be between 1m and 720h")
        return self


class PipelineStep(WireModel):
    name: StepName = Field(description="Step name, unique in the pipeline; becomes the Airflow task id.")
    agent_ref: ResourceName = Field(description="The OllamaAgent that performs the step.")
    prompt: PromptText | None = Field(default=None, description="An instruction sent with the step's input.")
    timeout: Duration | None = Field(default=None, description="Time limit; the agent's task is cancelled after it.")
    retries: StrictInt = Field(default=0, ge=0, le=10, description="Retries after a failed attempt.")
    artifacts: list[ArtifactDeclaration] | None = Field(
        default=None,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Artifacts the step must return.",
    )
    depends_on: list[StepName] | None = Field(
        default=None,
        max_length=MAX_STEPS,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Steps that run before this one.",
    )
    input_from: list[ArtifactReference] | None = Field(default=None, max_length=32, description="Upstream artifacts passed to the step as input.")
    condition: StepCondition = Field(default=StepCondition.SUCCESS, description="When the step runs.")
    include_input: StrictBool = Field(
        default=True,
        description="Send the run's input (spec.input, or the run's `input`) with the step, besides its inputFrom "
        "artifacts; false: only the prompt and the artifacts.",
    )
    verdict: StepVerdict = Field(
        default=StepVerdict.ENFORCED,
        description="`enforced`: a quality verdict among the step's results that did not pass fails the step; `informational`: it is only recorded.",
    )
    for_each: ForEach | None = Field(default=None, description="Run the step once per item (Airflow dynamic task mapping).")
    cache: StepCache | None = Field(default=None, description="Reuse an earlier result of the same agent, model build and inputs.")
    review: StepReview | None = Field(default=None, description="A person approves, rejects or edits the step's output before the pipeline goes on.")
    input_required: InputRequired | None = Field(
        default=None, description="When the agent asks for input, a person answers it in Airflow (default: up to 3 questions, 1h each)."
    )

    @model_validator(mode="after")
    def _bounded_timeout(self) -> PipelineStep:
        if self.timeout is not None and not timedelta(seconds=1) <= self.timeout <= timedelta(hours=24):
            raise ValueError("timeout must be between 1s and 24h")
        return self


class PushNotifications(WireModel):
    model_config = _cel("!self.enabled || has(self.endpoint)", "endpoint is required when enabled is true")

    enabled: StrictBool = Field(default=False, description="POST orchestration and step events.")
    endpoint: HttpUrl | None = Field(default=None, description="Webhook URL the events go to.")

    @model_validator(mode="after")
    def _endpoint_when_enabled(self) -> PushNotifications:
        if self.enabled and not self.endpoint:
            raise ValueError("endpoint is required when enabled is true")
        return self


class Communication(WireModel):
    streaming: StrictBool = Field(default=False, description="Stream tokens from the agents into the task logs.")
    push_notifications: PushNotifications | None = Field(default=None, description="Event webhooks.")


class OutputStorage(WireModel):
    model_config = _cel("self.type != 's3' || has(self.bucket)", "bucket is required when type is s3")

    type: StorageType = Field(description="`s3`, or `local` for a directory.")
    bucket: StrictStr | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="S3 bucket (type s3).")
    prefix: RelativeKey = Field(default="", description="Key prefix for the run's objects, e.g. `outputs/`.")
    path: RelativeKey | None = Field(
        default=None, description="Directory for type local, below the output directory (AISTACK_OUTPUT_DIR); the output directory itself when omitted."
    )

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> OutputStorage:
        if self.type is StorageType.S3 and not self.bucket:
            raise ValueError("bucket is required when type is s3")
        return self


class OutputFormat(WireModel):
    type: MediaType = Field(description="A format the run's artifacts are written in.")


class Output(WireModel):
    storage: OutputStorage | None = Field(default=None, description="Where results go; local by default.")
    format: list[OutputFormat] | None = Field(
        default=None,
        max_length=3,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Formats to write.",
    )


class FailureAction(str, Enum):
    """What a failed run does with what it already produced."""

    ROLLBACK = "rollback"  # like continue, then delete what the run published and record it
    ABORT = "abort"  # steps after a failed step do not run; nothing is published; the run fails
    CONTINUE = "continue"  # let independent steps finish; publish what succeeded


class ErrorPolicy(WireModel):
    max_retries: StrictInt = Field(default=0, ge=0, le=10, description="Retries for steps that set none.")
    backoff_limit: StrictInt = Field(default=300, ge=0, le=86_400, description="Cap in seconds of the exponential delay between retries.")
    failure_action: FailureAction = Field(default=FailureAction.CONTINUE, description="What a failed run does.")


PUBLISHED_PREFIX = "aistack://taskorchestrations/"
SCHEDULE_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
ASSET_URI_PATTERN = r"^(aistack://taskorchestrations/[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\\s]+)$"


class Schedule(WireModel):
    model_config = _cel("has(self.cron) != has(self.assets)", "set exactly one of cron and assets")

    cron: Annotated[StrictStr, Field(max_length=128)] | None = Field(
        default=None, description="A cron expression (`0 6 * * *`) or a preset: " + ", ".join(SCHEDULE_PRESETS) + ". Runs cover data intervals."
    )
    assets: list[Annotated[StrictStr, Field(max_length=1024, pattern=ASSET_URI_PATTERN)]] | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="Run when every listed asset was updated: `aistack://taskorchestrations/<namespace>/<name>` (another pipeline of the "
        "same namespace published) or `s3://<bucket>/<key>` (an S3 object, through the Amazon provider).",
    )
    catchup: StrictBool = Field(default=False, description="Also run the intervals missed since the first one (cron only).")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            check_cron(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if (self.cron is None) == (self.assets is None):
            raise ValueError("set exactly one of cron and assets")
        return self


def check_cron(expression: str) -> None:
    """A schedule Airflow accepts: a preset, or a five-field cron expression croniter parses."""
    from croniter import croniter

    if expression.startswith("@"):
        if expression not in SCHEDULE_PRESETS:
            raise ValueError(f"unknown preset {expression!r}: use one of {', '.join(SCHEDULE_PRESETS)} or a cron expression")
        return
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ValueError(f"invalid cron expression {expression!r}: write five fields, minute hour day month weekday, such as '0 6 * * *'")


class OrchestrationSpec(WireModel):
    input: TaskInput = Field(description="The pipeline's input.")
    pipeline: list[PipelineStep] = Field(
        min_length=1,
        max_length=MAX_STEPS,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(s, !has(s.dependsOn) || s.dependsOn.all(d, self.exists(t, t.name == d)))",
                    "message": "every dependsOn entry must name a step of the pipeline",
                }
            ],
        },
        description="The steps, in any order; dependsOn defines the graph.",
    )
    communication: Communication | None = Field(default=None, description="Streaming and event webhooks.")
    output: Output | None = Field(default=None, description="Where and how results are written.")
    error_policy: ErrorPolicy | None = Field(default=None, description="Retries, backoff and failure action.")
    schedule: Schedule | None = Field(default=None, description="Run on a schedule (cron or assets) instead of once per submission; a manual run is still possible.")

    @model_validator(mode="after")
    def _valid_graph(self) -> OrchestrationSpec:
        action = self.error_policy.failure_action if self.error_policy else FailureAction.CONTINUE
        errors = check_pipeline(enumerate(self.pipeline), failure_action=action.value)
        if errors:
            raise PydanticCustomError(PIPELINE_GRAPH_ERROR, "; ".join(str(e) for e in errors))
        return self


class RunPhase(str, Enum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"


Count = Annotated[StrictInt, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0)]


class RunUsage(WireModel):
    """What a run, or a forEach step's items, cost in all (the agents' own reports, added up)."""

    prompt_tokens: Count | None = Field(default=None, description="Prompt tokens the models read.")
    completion_tokens: Count | None = Field(default=None, description="Tokens the models generated.")
    total_tokens: Count | None = Field(default=None, description="Both.")
    model_seconds: Seconds | None = Field(default=None, description="Time spent in model calls.")
    agent_calls: Count | None = Field(default=None, description="Agent tasks that reported usage (a cached step reports none).")


class StepUsage(WireModel):
    """What one agent call cost, as the agent reported it (counts and durations, never content)."""

    model: StrictStr | None = Field(default=None, description="The model that answered.")
    digest: StrictStr | None = Field(default=None, description="Its build digest.")
    prompt_tokens: Count | None = Field(default=None, description="Prompt tokens, the model's own count.")
    completion_tokens: Count | None = Field(default=None, description="Generated tokens, the model's own count.")
    total_tokens: Count | None = None
    time_to_first_token_seconds: Seconds | None = Field(default=None, description="From the model call to its first token.")
    duration_seconds: Seconds | None = Field(default=None, description="The agent's task, from start to end.")
    model_seconds: Seconds | None = Field(default=None, description="Time in model calls (a JSON answer may take two).")
    model_calls: Count | None = None
    attempt: Count | None = Field(default=None, description="The Airflow try that made the call.")
    agent_calls: Count | None = Field(default=None, description="A forEach step: its items that reported usage.")


class StepStatus(WireModel):
    phase: StrictStr | None = Field(default=None, description="The step's state.")
    attempts: StrictInt | None = Field(default=None, ge=0, description="Attempts so far.")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    a2a_task_id: StrictStr | None = Field(default=None, alias="a2aTaskId", description="The agent's task id.")
    artifacts: list[StrictStr] | None = Field(default=None, description="Names of the artifacts produced.")
    locations: list[StrictStr] | None = Field(default=None, description="Where the artifacts were stored.")
    message: StrictStr | None = Field(default=None, description="The error, when the step failed.")
    item: StrictStr | None = Field(default=None, description="A forEach item's label (its node is `<step>[<index>]`).")
    items: StrictInt | None = Field(default=None, ge=0, description="A forEach step's number of items.")
    failed_items: StrictInt | None = Field(default=None, ge=0, description="A forEach step's items that failed (onItemFailure continue).")
    cached: StrictStr | None = Field(default=None, description="The run whose result the step reused (cache), instead of calling its agent.")
    review: StrictStr | None = Field(default=None, description="The review: awaiting review, approved/edited/rejected by whom, or timed out.")
    questions: StrictInt | None = Field(default=None, ge=0, description="Questions the agent asked a person (inputRequired) so far.")
    usage: StepUsage | None = Field(default=None, description="Tokens and times of the agent call (a forEach step: of its items, added up).")


class ResumeStatus(WireModel):
    """The last `ai.stack/resume` request the watcher handled: each annotation value is acted on once."""

    request: StrictStr | None = Field(default=None, description="The annotation value handled: `latest` or a run id, optionally followed by `#` and any text.")
    run_id: StrictStr | None = Field(default=None, description="The run it named.")
    handled_at: datetime | None = Field(default=None, description="When the watcher handled it.")
    result: Literal["Resumed", "Refused"] | None = Field(default=None, description="Resumed, or Refused (see message).")
    cleared: list[StrictStr] | None = Field(default=None, description="The tasks cleared to run again (`task`, or `task[index]` for a forEach item).")
    message: StrictStr | None = Field(default=None, description="What was done, or why it was refused and what to do.")
    resumes: StrictInt | None = Field(default=None, ge=0, description="How many times the watcher resumed a run of this resource.")


class OrchestrationStatus(ResourceStatus):
    phase: RunPhase | None = Field(default=None, description="Pending, Running, Succeeded, Failed or RolledBack.")
    progress: StrictStr | None = Field(default=None, pattern=r"^[0-9]+/[0-9]+$", description="Finished steps over all steps, e.g. 2/3.")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: StrictStr | None = None
    dag_id: StrictStr | None = Field(default=None, description="The Airflow DAG of this orchestration.")
    run_id: StrictStr | None = Field(default=None, description="The current or last Airflow run.")
    run_url: StrictStr | None = Field(default=None, description="Link to the run in the Airflow UI.")
    nodes: dict[str, StepStatus] | None = Field(default=None, description="Per-step status, by step name.")
    outputs: list[StrictStr] | None = Field(default=None, description="Locations of the written outputs.")
    resume: ResumeStatus | None = Field(default=None, description="The last resume request (annotation ai.stack/resume) and what came of it.")
    usage: RunUsage | None = Field(default=None, description="The run's tokens and model time, over every step.")


class TaskOrchestration(CustomResource):
    """A multi-agent pipeline; applying one makes Airflow run it."""

    KIND = "TaskOrchestration"
    PLURAL = "taskorchestrations"
    SHORT_NAMES = ("tasko",)
    PRINTER_COLUMNS = (
        PrinterColumn(name="Phase", type="string", json_path=".status.phase", description="Run phase."),
        PrinterColumn(name="Progress", type="string", json_path=".status.progress", description="Steps done."),
        PrinterColumn(name="DAG", type="string", json_path=".status.dagId", description="Airflow DAG id.", priority=1),
        PrinterColumn(name="Run", type="string", json_path=".status.runId", description="Airflow run id.", priority=1),
        PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp", description="Age."),
    )

    kind: Literal["TaskOrchestration"] = Field(description="TaskOrchestration.")
    spec: OrchestrationSpec = Field(description="The pipeline and where its results go.")

    @model_validator(mode="after")
    def _own_namespace_assets(self) -> TaskOrchestration:
        """A pipeline is scheduled only on what its own namespace publishes, and not on itself."""
        schedule = self.spec.schedule
        for position, uri in enumerate(schedule.assets or () if schedule else ()):
            if not uri.startswith(PUBLISHED_PREFIX):
                continue
            namespace, _, name = uri[len(PUBLISHED_PREFIX) :].partition("/")
            if namespace != self.namespace:
                raise PydanticCustomError(
                    "asset_namespace",
                    f"spec.schedule.assets[{position}]: {uri} belongs to namespace {namespace!r}; a pipeline may only be scheduled on "
                    f"pipelines of its own namespace ({self.namespace!r})",
                )
            if name == self.name:
                raise PydanticCustomError("asset_self", f"spec.schedule.assets[{position}]: a pipeline cannot be scheduled on its own results")
        return self

    status: OrchestrationStatus | None = Field(default=None, description="Progress of the latest run, written by Airflow.")
