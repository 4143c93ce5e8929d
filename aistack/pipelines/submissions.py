"""The submission policy: what the watcher DAG does with each event of TaskOrchestrationSensor.

For a submission (each step is idempotent, so a duplicate event or a retried task is harmless):

1. Read the resource again. Gone, replaced (another uid) or already handled (observedGeneration
   at its generation): nothing to do. Its *current* generation is the one started.
2. Validate it with ``parse_resource``. Invalid: condition ``Accepted=False`` (reason
   ``InvalidSpec``) with every error in the message, ``observedGeneration`` set, no run.
3. Make sure its DAG exists and was parsed after the apply: one priority parse request for the
   generator file per batch (Airflow REST ``parseDagFile``; repeated every ``reparse_interval``
   while waiting), then wait until the DAG is there with the generation (``params.generation``
   when the generator sets it, else a ``last_parsed_time`` after the first request).
4. Trigger the run with conf ``{namespace, name, uid, generation}`` and run id
   ``k8s__<uid>__g<generation>`` through the Task SDK (the execution API); "already exists" means
   a previous attempt got this far, which is fine.
5. Record it through the status subresource: ``observedGeneration``, ``phase: Pending``,
   ``dagId``, ``runId``, ``runUrl``, condition ``Accepted=True`` (reason ``RunTriggered``); the last
   run's progress fields are cleared.

A DAG that does not appear in time gets ``Accepted=Unknown`` (reason ``WaitingForDag``) and no
observedGeneration, and the task fails after handling the others, so Airflow retries it and
the next watcher run reports the submission again.

For a deletion: the queued and running runs of that uid are marked failed (REST), and a parse
of the generator is requested so its DAG goes away sooner.

For a resume request (the annotation ``ai.stack/resume``: ``latest``, the run of ``status.runId``,
or a run id; ``#`` and any text may follow, to ask again for the same run): each value is acted on
once, because the status records it. Read the resource again; gone, replaced, or its value is
``status.resume.request`` already: nothing to do. Otherwise resume the run (aistack.pipelines.resume,
REST ``clearTaskInstances``) and record ``status.resume``: the value, the run id, when, the tasks
cleared or why it was refused, and the number of resumes so far. A resumed run is the status's
run again: ``phase: Pending`` until a resumed step reports Running, ``finishedAt`` and
``message`` of its failed end removed. A duplicate event or a restarted watcher finds the value
recorded; a retried task that cleared but died before recording finds the run resumed by its
request (the note on the cleared tasks) and records it then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aistack.kube.watch import DELETED, RESUME, SUBMITTED
from aistack.pipelines.plan import dag_id_for
from aistack.pipelines.resume import ResumeRefused, RunsAPI, resume_run
from aistack.resources import GROUP, VERSION, Condition, InvalidResource, TaskOrchestration, parse_resource
from aistack.resources.conditions import set_condition

log = logging.getLogger(__name__)


def parse_api_time(value: str | None) -> datetime | None:
    """A timestamp of Airflow's REST API ("...Z" or with an offset)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


RUN_ID_PREFIX = "k8s__"
PLURAL = TaskOrchestration.PLURAL


def run_id_for(uid: str, generation: int) -> str:
    """The Airflow run id of a (uid, generation): the same submission can never start two runs."""
    return f"{RUN_ID_PREFIX}{uid}__g{generation}"


def is_pending(obj: dict[str, Any]) -> bool:
    """True when the object's current generation has not been handled (no run, no rejection) yet."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    generation = meta.get("generation") or 1
    observed = (obj.get("status") or {}).get("observedGeneration")
    return not isinstance(observed, int) or observed < generation


RESUME_ANNOTATION = "ai.stack/resume"
LATEST = "latest"
MAX_REQUEST = 512  # a run id is at most 250 characters


def resume_request(obj: dict[str, Any]) -> str | None:
    """The object's ai.stack/resume value while its status has not recorded it as handled."""
    meta = obj.get("metadata") or {}
    value = (meta.get("annotations") or {}).get(RESUME_ANNOTATION)
    handled = ((obj.get("status") or {}).get("resume") or {}).get("request")
    return value if value and value != handled and not meta.get("deletionTimestamp") else None


ACCEPTED = "Accepted"
GENERATION_PARAM = "generation"
GENERATOR_FILE = "task_orchestrations.py"
# Where the generator is, when not beside the watcher DAG in the same bundle.
# A DAG processor's clock may be a little behind the worker's.
CLOCK_SKEW = timedelta(seconds=1)
# The run's progress fields, cleared when a new run is started (merge patch: null removes).
RUN_FIELDS = ("progress", "startedAt", "finishedAt", "nodes", "outputs", "message")


class Airflow(RunsAPI, Protocol):
    def request_parse(self, bundle_name: str, relative_fileloc: str) -> bool: ...
    def active_runs(self, dag_id: str) -> list[dict[str, Any]]: ...
    def fail_run(self, dag_id: str, run_id: str, note: str | None = None) -> None: ...


@dataclass
class Outcome:
    action: str  # triggered | existed | rejected | skipped | waiting | stopped | resumed | refused
    namespace: str
    name: str
    uid: str
    generation: int
    dag_id: str
    run_id: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DagNotReady(RuntimeError):
    pass


class TaskOrchestrationDispatcher:
    """Turns watch events into DAG runs and status; see the module docstring.

    ``trigger_run(dag_id, run_id, conf)`` returns True when it created the run, False when the
    run already existed. ``objects`` is a ``kubernetes.client.CustomObjectsApi``.
    """

    def __init__(
        self,
        *,
        objects: Any,
        airflow: Airflow,
        trigger_run: Callable[[str, str, dict[str, Any]], bool],
        generator: tuple[str, str],
        ui_base_url: str | None = None,
        dag_timeout: float = 60.0,
        poll_interval: float = 0.25,
        reparse_interval: float = 5.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.objects = objects
        self.airflow = airflow
        self.trigger_run = trigger_run
        self.generator = generator
        self.ui_base_url = ui_base_url.rstrip("/") if ui_base_url else None
        self.dag_timeout = dag_timeout
        self.poll_interval = poll_interval
        self.reparse_interval = reparse_interval
        self.now = now
        self._parse_requested_at: datetime | None = None

    # -- the batch -----------------------------------------------------------------------

    def handle(self, events: Iterable[dict[str, Any]]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        self._parse_requested_at = None
        for event in events:
            if event["type"] == SUBMITTED:
                outcomes.append(self.submit(event))
            elif event["type"] == DELETED:
                outcomes.extend(self.stop(event))
            elif event["type"] == RESUME:
                outcomes.append(self.resume(event))
        waiting = [o for o in outcomes if o.action == "waiting"]
        if waiting:
            raise DagNotReady("; ".join(f"{o.namespace}/{o.name}: {o.detail}" for o in waiting))
        return outcomes

    def request_parse(self) -> None:
        """One priority parse of the generator per batch, at the first need."""
        if self._parse_requested_at is None:
            self._parse_requested_at = self.now()
            self.airflow.request_parse(*self.generator)

    # -- submissions ---------------------------------------------------------------------

    def submit(self, event: dict[str, Any]) -> Outcome:
        obj, outcome = self._current(event)
        if obj is None:
            return outcome
        namespace, name, dag_id, meta = outcome.namespace, outcome.name, outcome.dag_id, obj["metadata"]
        generation = outcome.generation = meta.get("generation") or 1
        if not is_pending(obj):
            outcome.detail = f"generation {generation} is handled already"
            return outcome
        try:
            parse_resource(obj)
        except InvalidResource as exc:
            message = "; ".join(str(e) for e in exc.errors)
            self._write_status(
                obj, {"observedGeneration": generation, "phase": "Failed", "message": f"invalid TaskOrchestration: {message}"}, False, "InvalidSpec", message
            )
            outcome.action, outcome.detail = "rejected", message
            log.warning("%s/%s generation %d is invalid: %s", namespace, name, generation, message)
            return outcome

        run_id = outcome.run_id = run_id_for(meta["uid"], generation)
        dag = self._wait_for_dag(dag_id, generation)
        if dag is None:
            outcome.action = "waiting"
            outcome.detail = f"DAG {dag_id} did not appear within {self.dag_timeout:.0f}s of a parse request"
            self._write_status(obj, {}, None, "WaitingForDag", outcome.detail)
            return outcome
        conf = {"namespace": namespace, "name": name, "uid": meta["uid"], "generation": generation}
        created = self.trigger_run(dag_id, run_id, conf)
        outcome.action = "triggered" if created else "existed"
        message = f"run {run_id} of DAG {dag_id}"
        if dag.get("is_paused"):
            message += " (the DAG is paused: the run starts when it is unpaused)"
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "phase": "Pending",
            "dagId": dag_id,
            "runId": run_id,
            **{field: None for field in RUN_FIELDS},
        }
        if self.ui_base_url:
            status["runUrl"] = self._run_url(dag_id, run_id)
        self._write_status(obj, status, True, "RunTriggered", message)
        log.info("%s/%s generation %d: %s %s", namespace, name, generation, outcome.action, message)
        return outcome

    def _wait_for_dag(self, dag_id: str, generation: int) -> dict[str, Any] | None:
        """The DAG, once parsed from this generation (or later); None after ``dag_timeout``."""
        self.request_parse()
        assert self._parse_requested_at is not None
        deadline = time.monotonic() + self.dag_timeout
        next_request = time.monotonic() + self.reparse_interval
        while True:
            dag = self.airflow.get_dag(dag_id)
            if dag is not None and self._is_fresh(dag, generation):
                return dag
            if time.monotonic() >= deadline:
                return None
            if time.monotonic() >= next_request:
                # A parse may have served an older listing (a cache, a slow cluster): ask again.
                self.airflow.request_parse(*self.generator)
                next_request = time.monotonic() + self.reparse_interval
            time.sleep(self.poll_interval)

    def _is_fresh(self, dag: dict[str, Any], generation: int) -> bool:
        """Whether the DAG Airflow would run now was generated from ``generation`` (or later).

        Exact when the generator puts the generation in the DAG's params (``params.generation``,
        serialized with the DAG version a run is created from). Otherwise: a parse after the
        first request, which is right as long as every parse writes the serialized DAG (set
        ``[core] min_serialized_dag_update_interval`` low: by default Airflow keeps a DAG's
        serialized form up to 30 s although its file was parsed again).
        """
        marker = (dag.get("params") or {}).get(GENERATION_PARAM)
        if isinstance(marker, dict):
            marker = marker.get("value")
        if isinstance(marker, int) and not isinstance(marker, bool):
            return marker >= generation
        parsed = parse_api_time(dag.get("last_parsed_time"))
        assert self._parse_requested_at is not None
        return parsed is not None and parsed >= self._parse_requested_at - CLOCK_SKEW

    # -- deletions -----------------------------------------------------------------------

    def stop(self, event: dict[str, Any]) -> list[Outcome]:
        """Fail the queued and running runs of a deleted object (its uid: not a namesake's)."""
        namespace, name, uid = event["namespace"], event["name"], event["uid"]
        dag_id = dag_id_for(namespace, name)
        outcomes = []
        for run in self.airflow.active_runs(dag_id):
            run_id = run["dag_run_id"]
            if run_id.startswith(f"{RUN_ID_PREFIX}{uid}__") or (run.get("conf") or {}).get("uid") == uid:
                self.airflow.fail_run(dag_id, run_id, note=f"TaskOrchestration {namespace}/{name} was deleted")
                outcomes.append(Outcome("stopped", namespace, name, uid, event["generation"], dag_id, run_id))
                log.info("%s/%s was deleted: run %s of %s marked failed", namespace, name, run_id, dag_id)
        self.request_parse()  # the generator drops its DAG at this parse
        if not outcomes:
            outcomes.append(Outcome("skipped", namespace, name, uid, event["generation"], dag_id, detail="deleted; no active run"))
        return outcomes

    # -- resume requests -----------------------------------------------------------------

    def resume(self, event: dict[str, Any]) -> Outcome:
        """Act once on the object's ai.stack/resume value (see the module docstring)."""
        obj, outcome = self._current(event)
        if obj is None:
            return outcome
        request = resume_request(obj)
        if request is None:
            outcome.detail = "its resume request is handled already"
            return outcome
        status = obj.get("status") or {}
        previous = status.get("resume") or {}
        target = request.partition("#")[0].strip()
        run_id = outcome.run_id = status.get("runId") if target == LATEST else target
        record: dict[str, Any] = {
            "request": request,
            "runId": run_id,
            "handledAt": self.now().isoformat(timespec="seconds"),
            "resumes": previous.get("resumes") or 0,
        }
        fields: dict[str, Any] = {}
        try:
            if len(request) > MAX_REQUEST:
                raise ResumeRefused(f"{RESUME_ANNOTATION} is longer than {MAX_REQUEST} characters: write `latest` or a run id")
            if not run_id:
                raise ResumeRefused("no run was started yet (status.runId is empty)" if target == LATEST else f"{RESUME_ANNOTATION}={request!r} names no run")
            note = f"resumed by the annotation {RESUME_ANNOTATION}={request} of TaskOrchestration {outcome.namespace}/{outcome.name}"
            resumed = resume_run(self.airflow, outcome.dag_id, run_id, note=note)
        except ResumeRefused as exc:
            outcome.action, outcome.detail = "refused", str(exc)
            record.update(result="Refused", cleared=None, message=str(exc))
        else:
            outcome.action, outcome.detail = "resumed", resumed.describe()
            record.update(result="Resumed", cleared=list(resumed.cleared), message=resumed.describe(), resumes=record["resumes"] + 1)
            # The resumed run is the status's run again; a run other than the last one brings none of its progress.
            cleared = ("finishedAt", "message") if run_id == status.get("runId") else RUN_FIELDS
            fields = {"phase": "Pending", "dagId": outcome.dag_id, "runId": run_id, **{field: None for field in cleared}}
            if self.ui_base_url:
                fields["runUrl"] = self._run_url(outcome.dag_id, run_id)
        self._patch_status(obj, {**fields, "resume": record})
        log.info("%s/%s %s=%s: %s", outcome.namespace, outcome.name, RESUME_ANNOTATION, request, outcome.detail)
        return outcome

    # -- the resource --------------------------------------------------------------------

    def _current(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, Outcome]:
        """The event's object as it is now (None when deleted or replaced since) and its outcome, skipped so far."""
        namespace, name = event["namespace"], event["name"]
        outcome = Outcome("skipped", namespace, name, event["uid"], event["generation"], dag_id_for(namespace, name))
        obj = self._get(namespace, name)
        if obj is None:
            outcome.detail = "deleted since"
        elif obj["metadata"].get("uid") != event["uid"]:
            outcome.detail = "replaced by a new object since"
        else:
            return obj, outcome
        return None, outcome

    def _run_url(self, dag_id: str, run_id: str) -> str:
        return f"{self.ui_base_url}/dags/{dag_id}/runs/{run_id}"

    def _get(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.rest import ApiException

        try:
            return self.objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _write_status(self, obj: dict[str, Any], fields: dict[str, Any], accepted: bool | None, reason: str, message: str) -> None:
        meta = obj["metadata"]
        generation = meta.get("generation") or 1
        existing = []
        for raw in (obj.get("status") or {}).get("conditions") or ():
            try:
                existing.append(Condition.model_validate(raw))
            except ValueError:
                continue
        conditions = set_condition(existing, ACCEPTED, accepted, reason, message[:32768], self.now(), generation)
        self._patch_status(obj, {**fields, "conditions": [c.to_wire() for c in conditions]})

    def _patch_status(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        """A merge patch of the status subresource: null removes a field."""
        meta = obj["metadata"]
        self.objects.patch_namespaced_custom_object_status(GROUP, VERSION, meta.get("namespace") or "default", PLURAL, meta["name"], {"status": status})
