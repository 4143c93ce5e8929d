"""`aistack airflow [PATH]`: the Airflow UI on this machine, over this repository's DAGs.

What a person gets: `airflow standalone` (api-server with the UI, scheduler, DAG processor,
triggerer; SQLite, LocalExecutor) whose DAG bundle is the repository's dags/ folder, with the
TaskOrchestrations, agents and model definitions of PATH (default: examples/) as the local
sources, the model runtime up, the models built and the agents serving. The generated pipeline
DAGs are unpaused, so a run triggered from the UI (trigger form: edit `input`) or the REST API
starts at once; the cluster-facing DAGs (watcher, agent deployments) stay paused.

Its Airflow home is `$AISTACK_HOME/airflow-ui`, apart from `aistack run`'s, so the two never share
a SQLite database. Ctrl-C stops Airflow, the agents and the model runtime.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aistack import settings
from aistack.local.airflow_home import AirflowHome, shipped_dag_file
from aistack.local.outputs import aws_configuration
from aistack.local.progress import Console
from aistack.local.runner import RunError, logging_to, model_line, wait_for_interrupt
from aistack.pipelines.airflow_rest import AirflowAPI, AirflowAPIError, get_token

logger = logging.getLogger(__name__)

HOME_NAME = "airflow-ui"
USER = "admin"
START_TIMEOUT = 300.0  # the first start migrates the database
STOP_TIMEOUT = 30.0


@dataclass
class UIRequest:
    path: Path
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class UI:
    url: str
    user: str
    password: str
    pipelines: tuple[str, ...]  # the generated DAG ids, unpaused
    log: Path
    process: subprocess.Popen[bytes]  # airflow standalone


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _without_log_servers(home: AirflowHome) -> Path:
    """A folder to put first on PATH, so Airflow's scheduler and triggerer serve no logs.

    `airflow standalone` starts each component as `airflow <component>` from PATH, and the
    scheduler and the triggerer then serve their task logs on every interface (0.0.0.0:8793 and
    :8794; Airflow 3.3 has no setting for the host). On one machine nothing needs them: the
    api-server reads the log files itself. So an `airflow` here starts those two with
    --skip-serve-logs and runs anything else as it is.
    """
    real = shlex.quote(str(Path(sys.executable).parent / "airflow"))
    shim = home.root / "bin" / "airflow"
    shim.parent.mkdir(parents=True, exist_ok=True)
    shim.write_text(f'#!/bin/sh\ncase "$1" in\n  scheduler|triggerer) exec {real} "$@" --skip-serve-logs ;;\nesac\nexec {real} "$@"\n')
    shim.chmod(0o700)
    return shim.parent


def _environment(home: AirflowHome, request: UIRequest, dags: Path, ollama_url: str) -> dict[str, str]:
    base = f"http://{request.host}:{request.port}"
    path = request.path.resolve()
    env = home.environment(os.environ, path, dags_folder=dags)
    env.update(
        {
            "AIRFLOW__API__HOST": request.host,
            "AIRFLOW__API__PORT": str(request.port),
            "AIRFLOW__API__BASE_URL": base,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW_CONN_AISTACK_AIRFLOW_API": base,
            settings.MODELS_PATH: str(path),
            settings.AIRFLOW_UI_URL: base,
            "OLLAMA_HOST": ollama_url,
            "PATH": os.pathsep.join([str(_without_log_servers(home)), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        }
    )
    if (path / "documents").is_dir():  # what forEach.fromStorage lists: the example documents
        env[settings.LOCAL_ITEMS] = str(path / "documents")
    if aws_configuration() is None:  # as `aistack run`: S3 outputs land in the local output directory
        env[settings.LOCAL_OUTPUTS] = "1"
    return env


def _wait(check: Callable[[], object], timeout: float, what: str, process: subprocess.Popen[bytes], log: Path) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if process.poll() is not None:
            raise RunError(f"airflow standalone exited (status {process.returncode}) before {what}; see {log}")
        if time.monotonic() > deadline:
            raise RunError(f"{what} did not happen within {timeout:.0f}s; see {log}")
        time.sleep(0.5)


def _healthy(base: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _password(home: AirflowHome) -> str | None:
    """The password `airflow standalone` generated for USER (kept across restarts); None until written."""
    try:
        return json.loads((home.root / "simple_auth_manager_passwords.json.generated").read_text())[USER]
    except (OSError, ValueError, KeyError):
        return None


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM to a process started with start_new_session (airflow standalone and its components),
    then SIGKILL to what is left of its group: components can outlive their parent."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def airflow_ui(request: UIRequest, console: Console) -> Iterator[UI]:
    """Everything up for the block: runtime, models, agents, airflow standalone with the pipelines unpaused."""
    from aistack.pipelines.plan import dag_id_for
    from aistack.resources import OllamaAgent, OllamaModelDefinition, TaskOrchestration
    from aistack.resources.validation import validate_paths

    if not request.path.is_dir():
        raise RunError(f"no such folder: {request.path}", status=2)
    dag_file = shipped_dag_file()
    result = validate_paths([request.path])
    if not result.ok:
        lines = [line for problem in result.problems for line in problem.lines()]
        raise RunError(f"{len(result.problems)} invalid document(s) in {request.path}; nothing was started:\n  " + "\n  ".join(lines), status=2)
    if not _port_free(request.host, request.port):
        raise RunError(f"port {request.port} on {request.host} is in use: stop what uses it or choose another with --port", 2)
    definitions = {(d.namespace, d.name): d for d in result.of_kind(OllamaModelDefinition)}
    agents = {(a.namespace, a.name): a for a in result.of_kind(OllamaAgent)}  # identical copies in several examples: once
    pairs = [(a, definitions[(a.namespace, a.spec.model_definition.name)]) for a in agents.values()]
    pipelines = tuple(dag_id_for(o.namespace, o.name) for o in result.of_kind(TaskOrchestration))

    home = AirflowHome(name=HOME_NAME)
    home.root.mkdir(parents=True, exist_ok=True)
    log = home.new_log("airflow-ui")
    console.line(f"aistack airflow: the Airflow UI over {dag_file.parent} with the resources of {request.path}")
    console.field("log", str(log))
    configured = aws_configuration()
    console.field(
        "output",
        f"S3 as declared (AWS access configured by {configured})"
        if configured
        else f"{settings.output_dir()}/<namespace>/<name>/<run>/ for every pipeline (no AWS connection is configured)",
    )
    with logging_to(log), contextlib.ExitStack() as stack:
        from aistack.agents.runner import serve_agents
        from aistack.local.models import ModelSetupError, ensure_models, model_runtime

        try:
            runtime = stack.enter_context(model_runtime(log_path=log, restart=True))  # restarted if it dies
            console.field("runtime", runtime.describe())
            ensure_models(runtime, list({d.model_name: d for _, d in pairs}.values()), report=lambda o: console.field("model", model_line(o)))
        except ModelSetupError as exc:
            raise RunError(str(exc)) from None
        try:
            running = stack.enter_context(serve_agents(pairs, ollama_host=runtime.url, registry=True))
        except (RuntimeError, TimeoutError, OSError) as exc:
            raise RunError(f"the agents did not start: {exc} (log: {log})") from None
        for agent in running:
            console.field("agent", f"{agent.namespace}/{agent.name}  {agent.model}  {agent.url}")

        console.field("airflow", "starting airflow standalone (the first start creates its database: about a minute)...")
        output = stack.enter_context(open(log, "ab"))
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "airflow"), "standalone"],
            env=_environment(home, request, dag_file.parent, runtime.url),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        stack.callback(stop_process_group, process)
        base = f"http://{request.host}:{request.port}"
        _wait(lambda: _healthy(base), START_TIMEOUT, "the Airflow API answered", process, log)
        password = str(_wait(lambda: _password(home), 60, "the admin password was written", process, log))
        with AirflowAPI(base, get_token(base, USER, password)) as api:
            _wait(lambda: set(pipelines) <= {d["dag_id"] for d in _dags(api)}, 180, "the generated DAGs appeared", process, log)
            for dag_id in pipelines:
                _wait(functools.partial(_unpaused, api, dag_id), 60, f"{dag_id} was unpaused", process, log)
        yield UI(base, USER, password, pipelines, log, process)


def _unpaused(api: AirflowAPI, dag_id: str) -> bool:
    """Unpause; False on an error worth retrying (SQLite is busy while the DAG processor writes)."""
    try:
        api.set_paused(dag_id, False)
    except AirflowAPIError as exc:
        logger.info("unpausing %s failed, retrying: %s", dag_id, exc)
        return False
    return True


def _dags(api: AirflowAPI) -> list[dict[str, object]]:
    try:
        return api.dags()
    except AirflowAPIError:
        return []


def serve(request: UIRequest, console: Console) -> None:
    """`aistack airflow`: bring everything up, say where it is, wait for Ctrl-C."""
    with airflow_ui(request, console) as ui:
        console.line()
        console.line(f"Airflow UI   {ui.url}   (login: {ui.user} / {ui.password})")
        console.line(f"Pipelines    {', '.join(ui.pipelines)}  (unpaused: trigger one, edit `input` in the form)")
        console.line(f"TaskOrchestrations page   {ui.url}/aistack/")
        console.line(f"Airflow's own logs        {ui.log}")
        console.line("Ctrl-C stops Airflow, the agents and the model runtime.")
        wait_for_interrupt(ended=lambda: ui.process.poll() is not None)
        if ui.process.poll() is not None:
            raise RunError(f"airflow standalone exited (status {ui.process.returncode}); see {ui.log}")
        console.line("stopping")
