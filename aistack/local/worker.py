"""The Airflow side of `aistack run`: one process that runs one TaskOrchestration's DAG with DAG.test().

Started by the runner as `python -m aistack.local.worker CONFIG` with its environment pointing at the
private Airflow home (airflow_home.py), stdout and stderr going to the run's log file, and an extra
pipe for progress events (protocol.py). It:

1. migrates the metadata database on first use (`airflow db migrate`, under a file lock);
2. warms Airflow up while the runner starts the model runtime and the agents: imports, the
   in-process execution API (its versioned routes are built on the first request), and a sync of
   the DAG bundle, which parses the generator's DAG file as Airflow's DAG processor would;
3. builds the orchestration's DAG with the generator plugin, points the publish task at the local
   output directory when the runner says so, and adds task callbacks that report progress;
4. reports `ready` and waits for `go` on stdin (with the run conf, e.g. the input);
5. runs `DAG.test(run_conf=...)` and reports the final task states, every step's XCom result and
   what publish wrote; then exits.

End of file on stdin (the runner stopped or died) during the run marks the DAG run failed and exits.

`python -m aistack.local.worker --standby SOCKET` is the same worker started ahead of time (see
standby.py): it does steps 1 and 2, then waits for a runner on a Unix socket, which carries the
job, the events and the commands instead of the pipe and stdin.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

from aistack import settings
from aistack.local import protocol, standby

FINISHED_STATES = {"success", "failed", "skipped", "upstream_failed", "removed"}


class WorkerError(Exception):
    pass


class Events:
    """Progress events to the runner; safe from several threads."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream, self.lock = stream, threading.Lock()

    def __call__(self, event: str, **fields: Any) -> None:
        with self.lock:
            try:
                protocol.send(self.stream, event, **fields)
            except (BrokenPipeError, ValueError):  # the runner is gone: nobody to tell
                pass


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def airflow_command() -> list[str]:
    script = Path(sys.executable).with_name("airflow")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "airflow"]


def ensure_database(events: Events) -> bool:
    """Migrate the metadata database unless this Airflow version already did; True when it ran."""
    home = Path(os.environ["AIRFLOW_HOME"])
    database = home / "airflow.db"
    marker = home / ".aistack-migrated"
    version = importlib.metadata.version("apache-airflow-core")
    with _file_lock(home / ".aistack-run.lock"):
        if database.is_file() and marker.is_file() and marker.read_text().strip() == version:
            return False
        events("migrating", airflow=version)
        sys.stdout.flush()
        done = subprocess.run([*airflow_command(), "db", "migrate"], stdin=subprocess.DEVNULL, stdout=sys.stdout, stderr=sys.stderr, check=False)
        if done.returncode != 0:
            raise WorkerError(f"`airflow db migrate` failed (exit status {done.returncode}) for {database}")
        marker.write_text(version + "\n")
        return True


def warm_up() -> None:
    """Pay Airflow's one-time costs now, while the runner starts the agents."""
    import httpx
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    api = in_process_api_server()  # cached: DAG.test() uses this same instance
    httpx.Client(transport=api.transport, base_url="http://in-process.invalid").get("/health/ping")


def sync_bundle(dag_id: str) -> None:
    """Parse the DAG bundle and write it to the metadata database, as the DAG processor does.

    DAG.test() syncs again (cheaply, everything is imported by then); doing it here surfaces a DAG
    file that does not import, or an orchestration the DAG file does not generate, before the run.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        sync_bag_to_db(bag, bundle.name, bundle.version)
        if bag.import_errors:
            errors = "; ".join(f"{path}: {error.strip().splitlines()[-1]}" for path, error in bag.import_errors.items())
            raise WorkerError(f"the DAG bundle at {bundle.path} does not import: {errors}")
        dag = bag.dags.get(dag_id)
        if dag is None:
            raise WorkerError(f"the DAG file in {bundle.path} generated no DAG {dag_id} from {os.environ.get('AISTACK_ORCHESTRATIONS_PATH')}")
        if "invalid" in (dag.tags or ()):
            raise WorkerError(dag.doc_md or f"{dag_id} is invalid")


def build(config: dict[str, Any], events: Events) -> Any:
    """The orchestration's DAG, from the generator plugin, with the run's output and progress hooks."""
    from aistack.pipelines import source as orchestration_source
    from aistack_airflow.generator import build_dag

    snapshot = orchestration_source.from_folder(Path(os.environ["AISTACK_ORCHESTRATIONS_PATH"]))
    wanted = (config["namespace"], config["name"])
    orchestration = next((o for o in snapshot.valid if (o.namespace, o.name) == wanted), None)
    if orchestration is None:
        raise WorkerError(f"TaskOrchestration {wanted[0]}/{wanted[1]} is not among the valid ones in {snapshot.source}")
    dag = build_dag(orchestration)
    root = config.get("output_root")
    if root:  # the tasks run in this process: publish and rollback read these settings
        os.environ[settings.OUTPUT_DIR] = root
        os.environ[settings.LOCAL_OUTPUTS] = "1"
    os.environ[settings.UNATTENDED] = "1"  # nobody answers a review in `aistack run`
    if config.get("items_root"):
        os.environ[settings.LOCAL_ITEMS] = config["items_root"]
    for task in dag.tasks:
        _report(task, events)
    return dag


def _report(task: Any, events: Events) -> None:
    def hook(state: str) -> Any:
        def callback(context: Any) -> None:
            ti = context["ti"]
            error = context.get("exception")
            events(
                "task",
                task=ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]",
                state=state,
                attempt=ti.try_number,
                run_id=context.get("run_id"),
                **({"error": _message(error)} if error is not None and state != "skipped" else {}),
            )

        return callback

    for attribute, state in (
        ("on_execute_callback", "running"),
        ("on_success_callback", "success"),
        ("on_failure_callback", "failed"),
        ("on_retry_callback", "up_for_retry"),
        ("on_skipped_callback", "skipped"),
    ):
        existing = getattr(task, attribute, None)
        existing = list(existing) if isinstance(existing, (list, tuple)) else ([existing] if existing else [])
        setattr(task, attribute, [*existing, hook(state)])


def _message(error: Any) -> str:
    text = str(error).strip() or type(error).__name__
    return text if len(text) <= 2000 else text[:2000] + "..."


def _timestamp(value: Any) -> float | None:
    return value.timestamp() if value is not None else None


def outcome(dag: Any, dag_run: Any) -> dict[str, Any]:
    """The run as plain data: task states and times, step results (XCom), published locations.
    A forEach step's mapped task instances are one task here, and its result their gathered ones."""
    from aistack_airflow.operators.a2a import pulled_result

    by_task: dict[str, list[Any]] = {}
    for ti in dag_run.get_task_instances():
        by_task.setdefault(ti.task_id, []).append(ti)
    instances = {task_id: tis[0] for task_id, tis in by_task.items()}
    tasks = sorted((_task_summary(task_id, tis) for task_id, tis in by_task.items()), key=lambda t: (t["start"] or float("inf"), t["task"]))
    results: dict[str, Any] = {}
    for task_id, ti in instances.items():
        if task_id in ("publish", "rollback"):
            continue
        with contextlib.suppress(Exception):
            results[task_id] = pulled_result(instances.get("publish", ti), task_id)
    outputs: list[str] = []
    rolled_back: list[str] = []
    if "publish" in instances:
        with contextlib.suppress(Exception):
            outputs = list(instances["publish"].xcom_pull(task_ids="publish") or [])
    if "rollback" in instances:
        with contextlib.suppress(Exception):
            rolled_back = list(instances["rollback"].xcom_pull(task_ids="rollback", key="rolled_back") or [])
    state = dag_run.state.value if hasattr(dag_run.state, "value") else str(dag_run.state)
    return {"state": state, "run_id": dag_run.run_id, "tasks": tasks, "results": results, "outputs": outputs, "rolled_back": rolled_back}


def _task_summary(task_id: str, instances: list[Any]) -> dict[str, Any]:
    """One task's state and times; a mapped task's over all its instances (failed if one failed)."""
    states = [str(ti.state.value if hasattr(ti.state, "value") else ti.state) for ti in instances]
    state = next((s for s in ("failed", "upstream_failed", "running", "up_for_retry") if s in states), states[0])
    starts = [t for ti in instances if (t := _timestamp(ti.start_date)) is not None]
    ends = [t for ti in instances if (t := _timestamp(ti.end_date)) is not None]
    duration = instances[0].duration if len(instances) == 1 else (max(ends) - min(starts) if starts and ends else None)
    return {
        "task": task_id,
        "state": state,
        "attempts": max(ti.try_number for ti in instances),
        "start": min(starts) if starts else None,
        "end": max(ends) if ends else None,
        "duration": duration,
        **({"items": len(instances)} if len(instances) > 1 or instances[0].map_index >= 0 else {}),
    }


def abandon(dag_id: str) -> None:
    """Mark this DAG's unfinished runs and their unfinished tasks failed (the runner stopped)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    with create_session() as session:
        for dag_run in session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.state == DagRunState.RUNNING):
            for ti in dag_run.get_task_instances(session=session):
                if ti.state is None:
                    ti.state = TaskInstanceState.UPSTREAM_FAILED
                elif str(ti.state.value if hasattr(ti.state, "value") else ti.state) not in FINISHED_STATES:
                    ti.state = TaskInstanceState.FAILED
            dag_run.state = DagRunState.FAILED


def _watch(commands: IO[str], dag_id: str, events: Events) -> None:
    """During the run: any line or end of file on the commands stream means stop now."""
    commands.readline()
    events("stopped")
    with contextlib.suppress(Exception):
        abandon(dag_id)
    os._exit(130)


def prepare(events: Events) -> bool:
    """Airflow's one-time costs: the database (True when it was migrated), imports, the execution API."""
    migrated = ensure_database(events)
    import airflow  # noqa: F401

    warm_up()
    return migrated


def serve(config: dict[str, Any], events: Events, commands: IO[str], migrated: bool, started: float) -> int:
    """Run the job: the bundle synced, the DAG built, `ready`; then wait for `go` on `commands`."""
    import airflow

    sync_bundle(config["dag_id"])
    dag = build(config, events)
    events("ready", dag_id=dag.dag_id, airflow=airflow.__version__, migrated=migrated, warmup=time.time() - started)
    line = commands.readline()
    command = json.loads(line) if line.strip() else {"go": False}
    if not command.get("go"):
        return 0
    threading.Thread(target=_watch, args=(commands, dag.dag_id, events), name="aistack-run-stop", daemon=True).start()
    began = time.time()
    dag_run = dag.test(run_conf=command.get("conf") or None)
    events("finished", started=began, ended=time.time(), **outcome(dag, dag_run))
    return 0


def run_guarded(events: Events, job: Callable[[], int]) -> int:
    """The job's exit status; a failure is reported as an `error` event (the traceback, if a bug, in the log)."""
    try:
        return job()
    except WorkerError as exc:
        events("error", message=str(exc))
        print(f"aistack run worker: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # reported, with the traceback in the log
        import traceback

        traceback.print_exc()
        events("error", message=f"{type(exc).__name__}: {exc}")
        return 1


def main(argv: list[str] | None = None) -> NoReturn:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--standby":
        status = standby.wait(Path(argv[1]), prepare, serve)
    else:
        config = json.loads(argv[0])
        events = Events(os.fdopen(config["events_fd"], "w", encoding="utf-8"))
        started = time.time()
        status = run_guarded(events, lambda: serve(config, events, sys.stdin, prepare(events), started))
    # Exit now: threads Airflow's in-process execution API leaves behind kept a standby that had
    # done its job alive (and busy) at interpreter shutdown; everything is flushed and reported.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
