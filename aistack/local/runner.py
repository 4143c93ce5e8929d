"""`run()`: one local run of a TaskOrchestration, from manifests to printed result (see the package docstring)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aistack.local import protocol, standby
from aistack.local.airflow_home import AirflowHome
from aistack.local.outputs import OutputTarget, decide
from aistack.local.progress import Console, pipeline_shape
from aistack.local.project import Project, ProjectError, load_project
from aistack.local.standby import StandbyWorker

WORKER_STOP_SECONDS = 10.0


class RunError(Exception):
    """The run could not start or could not finish; `status` is the exit status to use."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class RunRequest:
    paths: Sequence[Path]
    input_text: str | None = None  # replaces the orchestration's input (the DAG's `input` param)
    input_label: str | None = None  # how to name the input on the console
    keep_running: bool = False
    output_dir: Path | None = None
    orchestration: str | None = None  # name or namespace/name, when the files hold several
    trace: Path | None = None  # write a JSON record of the run (phases, steps, model calls)


@dataclass
class RunOutcome:
    succeeded: bool
    message: str
    dag_id: str | None = None
    run_id: str | None = None
    tasks: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    log: Path | None = None


class Trace:
    """Timestamps of the run's phases and events, and the model calls; written by --trace."""

    def __init__(self) -> None:
        self.started = time.time()
        self.phases: dict[str, float] = {"start": self.started}
        self.events: list[dict[str, Any]] = []
        self.data: dict[str, Any] = {}

    def mark(self, phase: str) -> None:
        self.phases[phase] = time.time()

    def write(self, path: Path, tap: Any) -> None:
        self.mark("end")
        record = {**self.data, "phases": self.phases, "events": self.events, "model_calls": [call.to_json() for call in (tap.calls if tap is not None else [])]}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, default=str, ensure_ascii=False) + "\n")


def worker_job(project: Project, target: OutputTarget) -> dict[str, Any]:
    """What the worker is to run (worker.py's config, besides how it reports)."""
    return {
        "dag_id": project.plan.dag_id,
        "namespace": project.plan.namespace,
        "name": project.plan.name,
        "output_root": str(target.directory) if target.forced else None,
        "items_root": str(project.items_dir) if project.items_dir else None,
    }


def start_worker(home: AirflowHome, project: Project, target: OutputTarget, log_path: Path) -> tuple[Worker, str]:
    """The standby worker the last run left warm, when it takes this job; else a fresh one. And how."""
    env = home.environment(os.environ, project.orchestrations_path)
    taken = StandbyWorker.take(home.root, worker_job(project, target), env, log_path)
    if isinstance(taken, StandbyWorker):
        return taken, "standby"
    return WorkerProcess(home, project, target, log_path), f"fresh: {taken}"


class WorkerProcess(protocol.EventReader):
    """The Airflow worker (worker.py) as seen from the runner: its events, its stdin, its end."""

    def __init__(self, home: AirflowHome, project: Project, target: OutputTarget, log_path: Path) -> None:
        read_fd, write_fd = os.pipe()
        config = {"events_fd": write_fd, **worker_job(project, target)}
        self.log = open(log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aistack.local.worker", json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                env=home.environment(os.environ, project.orchestrations_path),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        super().__init__()
        self.running = False  # `go` was sent
        self.listen(os.fdopen(read_fd, encoding="utf-8"))

    def go(self, conf: dict[str, Any] | None) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"go": True, "conf": conf}) + "\n").encode())
        self.process.stdin.flush()
        self.running = True

    def exit_status(self) -> int | None:
        try:
            return self.process.wait(5)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """During the run, close its stdin: it marks the DAG run failed and exits. Before the run
        (still warming up), terminate it. Then wait, then kill."""
        if self.process.poll() is None:
            if not self.running:
                self.process.terminate()
            with contextlib.suppress(OSError):
                if self.process.stdin is not None:
                    self.process.stdin.close()
            try:
                self.process.wait(WORKER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        self.log.close()


Worker = WorkerProcess | StandbyWorker


@contextlib.contextmanager
def logging_to(path: Path) -> Iterator[None]:
    """This process's own logs (agents, model runtime) go to the run's log file, not the console."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "uvicorn.access")}
    for old in saved_handlers:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        for old in saved_handlers:
            root.addHandler(old)
        root.setLevel(saved_level)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def wait_for_interrupt(ended: Callable[[], bool] = lambda: False) -> None:
    """Until Ctrl-C or SIGTERM (or until `ended()` says what was kept up has gone).

    The handler only flips a flag: taking a lock in it (Event.set) deadlocks when the signal
    arrives while the main thread holds that same lock inside Event.wait."""
    interrupted: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _: interrupted.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not interrupted and not ended():
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(request: RunRequest, console: Console | None = None) -> RunOutcome:
    """Run the orchestration in `request.paths` once; raise RunError when it cannot start or the
    worker fails; return the outcome (succeeded or not) otherwise."""
    console = console or Console()
    trace = Trace()
    try:
        project = load_project(request.paths, request.orchestration)
    except ProjectError as exc:
        raise RunError(str(exc), status=2) from None
    plan = project.plan
    trace.mark("validated")
    home = AirflowHome()
    home.install_bundle()
    log_path = home.new_log(plan.name)
    target = decide(plan, request.output_dir)
    worker, how = start_worker(home, project, target, log_path)
    trace.mark("worker_started")
    warm = isinstance(worker, StandbyWorker)
    trace.data.update(dag_id=plan.dag_id, orchestration=f"{plan.namespace}/{plan.name}", log=str(log_path), worker=how)

    where = " ".join(str(p) for p in request.paths)
    console.line(f"aistack run: TaskOrchestration {plan.namespace}/{plan.name} from {where}")
    console.field("pipeline", f"{pipeline_shape(plan)}  (Airflow DAG {plan.dag_id})")
    console.field("input", request.input_label or f"the orchestration's own ({len(plan.input_text.split())} words)")
    console.field("output", target.describe())
    console.field("log", str(log_path))
    tap = None
    ended = False
    try:
        with logging_to(log_path), contextlib.ExitStack() as stack:
            from aistack.local.models import ModelSetupError, ensure_models, model_runtime

            try:
                runtime = stack.enter_context(model_runtime(log_path=log_path))
                console.field("runtime", runtime.describe())
                if runtime.process is not None:  # a runtime that dies ends the run at once, with the cause
                    runtime.process.on_exit.append(lambda cause: worker.events.put({"event": "runtime_died", "message": cause}))
                ensure_models(runtime, project.definitions, report=lambda o: console.field("model", model_line(o)))
            except ModelSetupError as exc:
                raise RunError(str(exc)) from None
            trace.mark("models_ready")

            from aistack.agents.runner import serve_agents
            from aistack.local.tap import ModelTap

            tap = ModelTap(on_start=console.model_call, on_token=console.token if plan.streaming else None)
            try:
                running = stack.enter_context(
                    serve_agents(
                        list(project.agents), ollama_host=runtime.url, backends=tap.backends(runtime.url, embedded=runtime.kind == "embedded"), registry=True
                    )
                )
            except (RuntimeError, TimeoutError, OSError) as exc:
                raise RunError(f"the agents did not start: {exc} (log: {log_path})") from None
            for agent in running:
                console.field("agent", f"{agent.name}  {agent.model}  {agent.url}")
            trace.mark("agents_ready")
            stack.callback(worker.stop)  # on the way out, the worker stops before the agents do

            ready = _wait_ready(worker, console, log_path)
            trace.mark("airflow_ready")
            trace.data.update(airflow=ready.get("airflow"), airflow_warmup=ready.get("warmup"), migrated=ready.get("migrated"))
            started_how = "the warm worker the last run left" if warm else "a new worker"
            console.field("airflow", f"Airflow {ready.get('airflow')} ready in {started_how} ({home.root}; DAG bundle {home.bundle})")
            if plan.streaming:
                console.line("  (the orchestration asks for streaming: model tokens are shown as they are generated)")
            console.line()
            worker.go({"input": request.input_text} if request.input_text is not None else None)
            trace.mark("go")
            finished = _follow(worker, console, trace, log_path)
            trace.mark("finished")
            outcome = _outcome(plan, finished, trace, log_path)
            console.result(plan, outcome, f"locally, instead of {target.declared}" if target.replaces_s3 else None)
            if request.keep_running:
                _keep_running(console, runtime, running)
            ended = True
            return outcome
    except RunError:
        ended = True
        raise
    finally:
        worker.stop()
        if ended:  # not after Ctrl-C or a crash: then everything stops
            standby.start(home.root, home.environment(os.environ, project.orchestrations_path))
        if request.trace is not None:
            trace.write(request.trace, tap)


def model_line(outcome: Any) -> str:
    if not outcome.built:
        return f"{outcome.model} up to date"
    base = outcome.base or "?"
    substituted = f" (substituted for {outcome.requested_base})" if outcome.requested_base and outcome.requested_base != base else ""
    return f"{outcome.model} built from {base}{substituted} in {outcome.seconds:.1f}s"


def _wait_ready(worker: Worker, console: Console, log_path: Path) -> dict[str, Any]:
    said = False
    while True:
        try:
            event = worker.events.get(timeout=0.3)
        except queue.Empty:
            if not said:
                console.field("airflow", "starting (imports, execution API, DAG bundle parse)...")
                said = True
            continue
        if event is None:
            status = worker.exit_status()
            raise RunError(f"the Airflow worker exited (status {status}) before it was ready; see {log_path}")
        if event["event"] == "migrating":
            console.field("airflow", "first run: creating Airflow's database (`airflow db migrate`, once)...")
            said = True
        elif event["event"] == "error":
            raise RunError(f"Airflow could not start the run: {event['message']} (log: {log_path})")
        elif event["event"] == "runtime_died":
            raise RunError(f"{event['message']} before the run started")
        elif event["event"] == "ready":
            return event


def _follow(worker: Worker, console: Console, trace: Trace, log_path: Path) -> dict[str, Any]:
    shown: dict[str, str] = {}  # the last state printed per task
    while True:
        event = worker.next_event()
        if event is None:
            status = worker.exit_status()
            raise RunError(f"the Airflow worker stopped during the run (exit status {status}); see {log_path}")
        trace.events.append(event)
        kind = event["event"]
        if kind == "task":
            detail = ""
            if event["state"] == "running":
                detail = f"(attempt {event['attempt']})" if event.get("attempt", 1) > 1 else ""
            elif event.get("error"):
                detail = f"— {event['error']}"
            console.step(event["task"], event["state"], detail)
            shown[event["task"]] = event["state"]
        elif kind == "finished":
            for task in event.get("tasks", []):  # tasks that never ran (trigger rules, fail-fast) have no callbacks
                if task["state"] != shown.get(task["task"]) and task["state"] in ("skipped", "upstream_failed", "failed"):
                    console.step(task["task"], task["state"])
            return event
        elif kind == "error":
            raise RunError(f"the Airflow run failed: {event['message']} (log: {log_path})")
        elif kind == "runtime_died":
            running = [task for task, state in shown.items() if state == "running"]
            during = f" during step {', '.join(running)}" if running else ""
            cause = event["message"]
            for task in running:
                console.step(task, "failed", f"— {cause}")
            raise RunError(f"the run failed: {cause.replace('; see', during + '; see', 1) if during else cause}")


def _outcome(plan: Any, finished: dict[str, Any], trace: Trace, log_path: Path) -> RunOutcome:
    tasks = finished.get("tasks", [])
    states = {t["task"]: t["state"] for t in tasks}
    errors: dict[str, str] = {}
    for event in trace.events:
        if event.get("event") == "task" and event.get("state") in ("failed", "up_for_retry") and event.get("error"):
            errors[event["task"]] = event["error"]
    publish_ok = states.get("publish", "success") == "success"
    succeeded = finished.get("state") == "success" and publish_ok
    if succeeded:
        message = "every step completed"
    else:
        failed = [t for t, s in states.items() if s in ("failed", "upstream_failed") and t != "rollback"]
        reasons = [f"{t}: {errors[t]}" if t in errors else f"{t}: {states[t].replace('_', ' ')}" for t in failed]
        message = "; ".join(reasons) or f"the DAG run ended {finished.get('state')}"
    return RunOutcome(
        succeeded,
        message,
        plan.dag_id,
        finished.get("run_id"),
        tasks,
        finished.get("results") or {},
        finished.get("outputs") or [],
        finished.get("rolled_back") or [],
        log_path,
    )


def _keep_running(console: Console, runtime: Any, running: Sequence[Any]) -> None:
    console.line()
    console.line("--keep-running: the agents and the model runtime stay up until Ctrl-C:")
    console.field("runtime", runtime.url)
    for agent in running:
        console.field("agent", f"{agent.name}  {agent.url}  (card: {agent.card_url})")
    wait_for_interrupt()
    console.line("stopping")
