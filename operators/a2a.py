"""A2AAgentOperator: one Airflow task = one message to an A2A agent, its artifacts as XCom.

The agent is named (`agent`, resolved locally or from the cluster), given by URL, or by an
Airflow connection of type `a2a`. Modes: non-streaming; streaming (tokens appear live in the
task log); deferrable (send with returnImmediately, then wait in the triggerer). A timeout, a
killed task or a failed wait cancels the agent's task. The message id is derived from the
task instance and the message it sends, so a re-run of the same attempt gets the task the first
send started instead of running the model twice, a re-run whose inputs changed (an upstream
step cleared and run again) starts a new task, and a retry after a failed agent task sends anew.
The agent is called with the token of `agent_namespace` (the pipeline's namespace) when one is
configured, else the shared token (aistack.agents.tokens), so the agent keeps each namespace's
tasks to itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowTaskTimeout
from airflow.sdk.execution_time.xcom import XCom
from opentelemetry.trace import SpanKind, Status, StatusCode

from aistack import telemetry
from aistack.agents.client import INTERRUPTED, AgentError, SyncAgentClient, TaskResult, artifact_body
from aistack.agents.directory import resolve_agent_url
from aistack.agents.quality import is_verdict
from aistack.agents.usage import describe as describe_usage
from aistack.pipelines.items import step_result
from aistack.pipelines.review import Unanswered, answer_of
from aistack_airflow.hooks.a2a import A2AHook
from aistack_airflow.operators.a2a_questions import ask_person, timeout_words

CARD_URL_KEY = "agent_card_url"
A2A_TASK_KEY = "a2a_task"
RESERVED_XCOM_KEYS = frozenset({"return_value", CARD_URL_KEY, A2A_TASK_KEY, "agent_question"})
SHOWN_LINES, SHOWN_LINE = 80, 400  # of an artifact, in the task log (the whole is in XCom)

# The SDK logs every agent card it fetches, whole, at INFO: one screen of the task log per call.
logging.getLogger("a2a.client.card_resolver").setLevel(logging.WARNING)


def artifact_xcom_key(name: str) -> str:
    """Each artifact is also an XCom of its own name (plain text or JSON), one click away in the
    UI; a name Airflow or this operator already uses gets the prefix `artifact_`."""
    return f"artifact_{name}" if name in RESERVED_XCOM_KEYS or name.startswith("_") else name


def artifact_lines(artifact: Mapping[str, Any]) -> list[str]:
    """An artifact for the task log: a header, then its text (JSON indented) line by line, so the
    log panel shows it whole instead of one long line cut off at its edge; bounded."""
    body = artifact_body(artifact)
    lines = body.splitlines() or [""]
    shown = [line if len(line) <= SHOWN_LINE else line[:SHOWN_LINE] + "..." for line in lines[:SHOWN_LINES]]
    more = [f"  ... {len(lines) - SHOWN_LINES} more lines (XCom {artifact_xcom_key(artifact['name'])!r} has it all)"] if len(lines) > SHOWN_LINES else []
    return [f"artifact {artifact['name']} ({artifact['mediaType']}, {len(body):,} characters):", *(f"  {line}" for line in shown), *more]


class AgentCardLink(BaseOperatorLink):
    """Opens the agent card of the agent the task called."""

    name = "Agent card"

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        return XCom.get_value(ti_key=ti_key, key=CARD_URL_KEY) or ""


def _task_id_of(response: Any) -> str | None:
    """The task id carried by a streamed event, whatever its kind."""
    kind = response.WhichOneof("payload")
    if kind == "task":
        return response.task.id
    if kind in ("status_update", "artifact_update"):
        return getattr(response, kind).task_id
    return None


def pulled_result(ti: Any, task_id: str) -> dict[str, Any] | None:
    """An upstream task's result: its XCom, or for a mapped task (a forEach step) its items'
    results gathered in item order (aistack.pipelines.items.step_result)."""
    return step_result(ti.xcom_pull(task_ids=task_id))


class _TokenLog:
    """Streams tokens into the task log a line at a time, not a token at a time."""

    def __init__(self, log: Any, prefix: str) -> None:
        self.log, self.prefix, self.buffer = log, prefix, ""

    def __call__(self, token: str) -> None:
        self.buffer += token
        *lines, self.buffer = self.buffer.split("\n")
        for line in lines:
            self.log.info("%s%s", self.prefix, line)

    def flush(self) -> None:
        if self.buffer:
            self.log.info("%s%s", self.prefix, self.buffer)
            self.buffer = ""


class A2AAgentOperator(BaseOperator):
    """Send one message to an A2A agent and return its artifacts (XCom: ``{"state", "taskId", "artifacts"}``).

    :param agent: the OllamaAgent to call, by name: the local agent registry, else the resource's
        status URL in the cluster. One of ``agent``, ``agent_url`` or ``a2a_conn_id`` is required.
    :param agent_namespace: the namespace of ``agent``; also the identity the call is made as (its
        namespace token, when one is configured). Default ``default``.
    :param agent_url: the agent's base URL, instead of a name.
    :param a2a_conn_id: an Airflow connection of type ``a2a`` (host: the URL, password: the token).
    :param text: the instruction sent first (templated).
    :param inputs: further message parts: strings, or ``{"name", "mediaType", "text" | "data"}`` (templated).
    :param input_from: ``(task_id, artifact_name)`` pairs: named artifacts of upstream tasks, sent as
        parts; a missing one fails the task.
    :param upstream_results: task ids whose every artifact is sent (a task that did not run adds nothing).
    :param artifacts: the artifacts the agent must return, ``{"name", "mediaType", "schema"?}``; one
        missing fails the task.
    :param streaming: stream the answer's tokens into the task log.
    :param deferrable: send with ``returnImmediately`` and wait for the task in the triggerer.
    :param poll_interval: seconds between the trigger's looks at a deferred task.
    :param enforce_verdict: a quality verdict among the artifacts that did not pass fails the task
        without retries (``False``: it is only recorded).
    :param input_rounds: questions (``TASK_STATE_INPUT_REQUIRED``) a person may answer through
        Airflow's human-in-the-loop requests before the task fails; 0 (default): fail at the first.
    :param input_timeout: how long each question waits for its answer.
    """

    template_fields = ("text", "inputs", "agent", "agent_namespace", "agent_url")
    operator_extra_links = (AgentCardLink(),)
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        agent: str | None = None,
        agent_namespace: str = "default",
        agent_url: str | None = None,
        a2a_conn_id: str | None = None,
        text: str | None = None,
        inputs: Sequence[Mapping[str, Any] | str] = (),
        input_from: Sequence[tuple[str, str]] = (),
        upstream_results: Sequence[str] = (),
        artifacts: Sequence[Mapping[str, Any]] | None = None,
        streaming: bool = False,
        deferrable: bool = False,
        poll_interval: float = 1.0,
        enforce_verdict: bool = True,
        input_rounds: int = 0,
        input_timeout: timedelta | None = timedelta(hours=1),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (agent or agent_url or a2a_conn_id):
            raise ValueError("A2AAgentOperator needs agent, agent_url or a2a_conn_id")
        self.agent, self.agent_namespace, self.agent_url, self.a2a_conn_id = agent, agent_namespace, agent_url, a2a_conn_id
        self.text, self.inputs, self.artifacts = text, list(inputs), [dict(a) for a in artifacts or ()]
        self.input_from = [tuple(ref) for ref in input_from]
        self.upstream_results = list(upstream_results)
        self.streaming, self.deferrable, self.poll_interval = streaming, deferrable, poll_interval
        self.enforce_verdict = enforce_verdict
        self.input_rounds, self.input_timeout = input_rounds, input_timeout
        self._client: SyncAgentClient | None = None
        self._a2a_task_id: str | None = None
        self._agent_url = ""

    # -- resolving and calling the agent -------------------------------------------------

    def _endpoint(self) -> tuple[str, str | None]:
        if self.a2a_conn_id or self.agent_url:
            return A2AHook(a2a_conn_id=self.a2a_conn_id, agent_url=self.agent_url).endpoint()
        assert self.agent is not None
        return resolve_agent_url(self.agent, self.agent_namespace), None

    def _message_id(self, context: Any, inputs: list[Any], attempt: int | None = None) -> str:
        """The same for the same task instance sending the same message: an agent refuses a message
        id re-sent with other content, so the content is part of it."""
        ti = context["ti"]
        key = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}" + (f"/try-{attempt}" if attempt else "")
        content = json.dumps([self.text, inputs, self.artifacts], sort_keys=True, default=str)
        return hashlib.sha256(f"{key}\n{content}".encode()).hexdigest()[:32]

    def _gather_inputs(self, context: Any) -> list[Any]:
        """`inputs`, then the named artifacts of `input_from`, then every artifact of `upstream_results`.

        An upstream step that did not run or returned nothing (possible under a trigger rule
        such as anySuccess) contributes nothing; a named artifact that is missing is an error.
        """
        ti = context["ti"]
        gathered = list(self.inputs)
        for task_id, name in self.input_from:
            result = pulled_result(ti, task_id) or {}
            artifact = next((a for a in result.get("artifacts", []) if a["name"] == name), None)
            if artifact is None and result:
                raise AirflowException(f'step "{task_id}" returned no artifact "{name}"')
            if artifact is not None:
                gathered.append(artifact)
        for task_id in self.upstream_results:
            gathered.extend((pulled_result(ti, task_id) or {}).get("artifacts", []))
        return gathered

    def _send(self, client: SyncAgentClient, message_id: str, inputs: list[Any], context: Any) -> TaskResult:
        """Start the agent's task, learning its id at once so a timeout or kill can cancel it.

        Deferrable: SendMessage with returnImmediately. Otherwise SendStreamingMessage, which
        reports the task id with its first event and the end without polling; its tokens go to
        the task log when `streaming` is set.
        """
        kwargs = {"inputs": inputs, "artifact": self.artifacts or None, "message_id": message_id, "raise_on_failure": False}
        if self.deferrable:
            return client.send(self.text, return_immediately=True, **kwargs)
        tokens = _TokenLog(self.log, f"[{self.task_id}] ") if self.streaming else None

        def remember(response: Any) -> None:
            if self._a2a_task_id is None:
                self._a2a_task_id = _task_id_of(response)
                self._record(context)

        try:
            return client.stream(self.text, on_token=tokens, on_event=remember, **kwargs)
        finally:
            if tokens is not None:
                tokens.flush()

    def _record(self, context: Any) -> None:
        context["ti"].xcom_push(key=A2A_TASK_KEY, value={"agentUrl": self._agent_url, "taskId": self._a2a_task_id})

    def execute(self, context: Any) -> dict[str, Any]:
        with self._traced(context), self._connected(context) as url:
            return self._run(context, url)

    @contextlib.contextmanager
    def _connected(self, context: Any) -> Iterator[str]:
        """A client of the agent in `self._client` for the block (yields the agent's URL): a
        timeout cancels the agent's task, an agent error fails the task saying which agent."""
        url, token = self._endpoint()
        context["ti"].xcom_push(key=CARD_URL_KEY, value=f"{url}/.well-known/agent-card.json")
        self._client = SyncAgentClient(url, token=token, namespace=self.agent_namespace)
        try:
            yield url
        except AirflowTaskTimeout:
            self._cancel("the task timed out")
            raise
        except AgentError as exc:
            raise AirflowException(f"agent {self.agent or url}: {exc}") from exc
        finally:
            self._client.close()
            self._client = None

    @contextlib.contextmanager
    def _traced(self, context: Any) -> Iterator[None]:
        """The call as a span `invoke_agent <agent>` (GenAI conventions): a child of Airflow's task
        span when Airflow traces, else in the run's own trace (aistack.telemetry); the A2A requests
        carry it, so the agent's and the model's spans are its children."""
        telemetry.configure("aistack-pipeline")
        ti = context["ti"]
        attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": self.agent or self.agent_url or self.a2a_conn_id or "",
            "airflow.dag_id": ti.dag_id,
            "airflow.task_id": ti.task_id,
            "airflow.dag_run.run_id": ti.run_id,
            "airflow.task_instance.try_number": ti.try_number,
            "airflow.task_instance.map_index": ti.map_index,
        }
        name = f"invoke_agent {attributes['gen_ai.agent.name']}"
        span_options = {"kind": SpanKind.CLIENT, "attributes": attributes, "record_exception": False, "set_status_on_exception": False}
        try:
            with telemetry.tracer().start_as_current_span(name, context=telemetry.run_context(ti.dag_id, ti.run_id), **span_options) as span:
                try:
                    yield
                except Exception as exc:  # a failure; parking for a person or deferring is none
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, str(exc)[:500]))
                    raise
        finally:
            telemetry.flush()

    def _run(self, context: Any, url: str) -> dict[str, Any]:
        assert self._client is not None
        self._agent_url = url
        inputs = self._gather_inputs(context)
        reused = self._reused_result(context, inputs)
        if reused is not None:
            return self._finish(reused, context)
        result = self._send(self._client, self._message_id(context, inputs), inputs, context)
        attempt = context["ti"].try_number
        if attempt > 1 and result.terminal and not result.succeeded:
            self.log.info("the previous attempt's agent task ended %s: sending again", result.state)
            self._a2a_task_id = None
            result = self._send(self._client, self._message_id(context, inputs, attempt), inputs, context)
        if self._a2a_task_id != result.task_id:
            self._a2a_task_id = result.task_id
            self._record(context)
        if not (result.terminal or result.state in INTERRUPTED):
            if self.deferrable:
                from aistack_airflow.triggers.a2a import A2ATaskTrigger

                deadline = time.time() + self.execution_timeout.total_seconds() if self.execution_timeout else None
                self.defer(
                    trigger=A2ATaskTrigger(url, result.task_id, self.poll_interval, deadline, self.a2a_conn_id, self.agent_namespace),
                    method_name="execute_complete",
                )
            result = self._client.wait(result.task_id, poll=self.poll_interval, raise_on_failure=False)
        return self._settle(result.to_json(), context)

    def _reused_result(self, context: Any, inputs: list[Any]) -> dict[str, Any] | None:
        """A result to return instead of calling the agent (a pipeline step's cache); None: call it."""
        return None

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        if event["status"] == "timeout":
            raise AirflowException(f"agent task {event['result']['taskId']} did not finish in time and was cancelled")
        if event["status"] == "error":
            raise AirflowException(f"waiting for the agent failed: {event['message']}")
        return self._settle(event["result"], context)

    # -- an agent's questions, answered by a person (operators/a2a_questions.py) -------------

    def _questions(self) -> tuple[int, timedelta | None]:
        """How many questions a person may answer, and how long each may wait."""
        return self.input_rounds, self.input_timeout

    def _settle(self, result: dict[str, Any], context: Any, round_: int = 0) -> dict[str, Any]:
        """`_finish`, unless the agent asks a question a person may answer: then the task waits."""
        rounds, timeout = self._questions()
        if result["state"] == "TASK_STATE_INPUT_REQUIRED" and rounds:
            agent = self.agent or self._agent_url
            ask_person(context, agent=agent, step=self.task_id, result=result, round_=round_ + 1, rounds=rounds, timeout=timeout, log=self.log)
        return self._finish(result, context)

    def answer_agent(self, context: Any, event: dict[str, Any], round_: int, a2a_task_id: str, context_id: str) -> dict[str, Any]:
        """Resumed with a person's answer: send it to the agent's task, then settle as after a send."""
        try:
            answer = answer_of(event, timeout=timeout_words(self._questions()[1]))
        except Unanswered as exc:
            raise AirflowFailException(str(exc)) from None
        ti = context["ti"]
        message_id = hashlib.sha256(f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}/answer-{round_}\n{answer}".encode()).hexdigest()[:32]
        with self._traced(context), self._connected(context) as url:
            assert self._client is not None
            self._agent_url, self._a2a_task_id = url, a2a_task_id
            self.log.info("sending the answer to question %d to agent task %s", round_, a2a_task_id)
            result = self._client.send(answer, task_id=a2a_task_id, context_id=context_id or None, message_id=message_id, raise_on_failure=False)
            if not (result.terminal or result.state in INTERRUPTED):
                result = self._client.wait(result.task_id, poll=self.poll_interval, raise_on_failure=False)
            return self._settle(result.to_json(), context, round_)

    def _finish(self, result: dict[str, Any], context: Any) -> dict[str, Any]:
        """Fail with what the agent said unless it completed with every declared artifact; fail,
        without retries (the same work gets the same verdict), when a quality verdict among the
        artifacts did not pass and `enforce_verdict` is set. The result stays in XCom either way."""
        state = result["state"]
        if state != "TASK_STATE_COMPLETED":
            reason = {
                "TASK_STATE_INPUT_REQUIRED": "the agent needs more input, and this task takes no answers (input_rounds, a step's inputRequired.maxRounds, is 0)",
                "TASK_STATE_AUTH_REQUIRED": "the agent needs authorization: check the token or connection",
                "TASK_STATE_REJECTED": "the agent rejected the request",
            }.get(state, "the agent task did not complete")
            raise AirflowException(f"{reason} ({state}): {result.get('message') or 'no message'}")
        produced = {a["name"] for a in result["artifacts"]}
        missing = [a["name"] for a in self.artifacts if a["name"] not in produced]
        if missing:
            raise AirflowException(f"the agent returned no artifact {', '.join(missing)} (it returned: {', '.join(sorted(produced)) or 'none'})")
        if result.get("usage"):
            result = {**result, "usage": {**result["usage"], "attempt": context["ti"].try_number}}
        for artifact in result["artifacts"]:
            for line in artifact_lines(artifact):
                self.log.info("%s", line)
            context["ti"].xcom_push(key=artifact_xcom_key(artifact["name"]), value=artifact.get("text") if "text" in artifact else artifact.get("data"))
        if result.get("usage"):
            self.log.info("%s", describe_usage(result["usage"]))
            telemetry.annotate(telemetry.usage_attributes(result["usage"]))
        failed = [a for a in result["artifacts"] if is_verdict(a) and not a["data"]["passed"]]
        if failed and self.enforce_verdict:
            context["ti"].xcom_push(key="return_value", value=result)
            issues = "; ".join(str(issue) for a in failed for issue in a["data"].get("issues") or ())[:1500]
            raise AirflowFailException(f"the quality check did not pass (score {failed[0]['data'].get('score', '?')}): {issues or 'no issues given'}")
        return result

    def _cancel(self, why: str) -> None:
        if self._client is not None and self._a2a_task_id:
            try:
                self._client.cancel(self._a2a_task_id)
                self.log.info("cancelled agent task %s: %s", self._a2a_task_id, why)
            except AgentError as exc:
                self.log.warning("could not cancel agent task %s: %s", self._a2a_task_id, exc)

    def on_kill(self) -> None:
        self._cancel("the Airflow task was killed")
