"""`aistack run`: run one TaskOrchestration locally, end to end, through Airflow.

    aistack run examples/summarization-pipeline --input-file examples/summarization-pipeline/document.md

What a run does, in order (runner.py):

1. Load and validate the manifests (project.py): the TaskOrchestration, the OllamaAgents its steps
   name and their OllamaModelDefinitions. Anything missing or invalid stops the run here, before a
   model, an agent or Airflow is started.
2. Start the Airflow worker process (worker.py, see below) so that Airflow warms up while the rest
   starts.
3. Pick the model runtime (models.py): a real Ollama at OLLAMA_HOST when it answers, else the
   embedded llama.cpp runtime started in this process (cluster base models such as `llama2` are
   substituted by `smollm2:135m`, visibly). Build the models the agents need; a model whose
   definition is unchanged since this machine built it is skipped.
4. Serve the agents on free ports (aistack.agents.runner) and list them in the local agent registry,
   where the generated DAG's steps look them up by name.
5. Run the DAG that the generator plugin (plugins/generator.py) makes of the
   orchestration, printing each step's state as it changes and, when the orchestration asks for
   streaming, the tokens as the models produce them (tap.py, progress.py).
6. Print the artifacts and where the results were written; stop what it started (unless
   --keep-running); exit non-zero with the reason when the run failed.

How Airflow runs, and why
-------------------------
The DAG runs with `DAG.test()` in a child process (`python -m aistack.local.worker`) that owns all of
Airflow: its own AIRFLOW_HOME under `$AISTACK_HOME/airflow` with a SQLite database (migrated with
`airflow db migrate` on first use only), a DAG bundle holding an installed copy of
`dags/task_orchestrations.py` (the very file Airflow deployments parse), and
AISTACK_ORCHESTRATIONS_PATH set to PATH (for several files: the file holding the orchestration). The DAG it runs is built by the same
generator, with the same plan; `DAG.test()` runs every task in the worker process through
Airflow's task runner and execution API, with retries, trigger rules, timeouts, XComs and
callbacks as in a deployment.

Why `DAG.test()` in a child process rather than in this process or `airflow dags test`:

- Speed. Starting Airflow in a fresh process costs about 5 seconds of CPU on a 2-core machine
  (imports, the execution API's versioned routes, the bundle parse). The worker does that while
  this process starts the model runtime and the agents, so on two cores the two overlap, and the
  worker is ready (DAG parsed and synced, execution API warm) when the agents are. Better still,
  a run's end starts the next run's worker (standby.py), which pays that start while nobody
  waits; the next run takes it when it is the same code and settings. `airflow dags
  test` would start all of that only after the agents are up, and parse the DAG twice.
- A readable console. Everything Airflow logs (and it logs a lot) goes to the worker's stdout and
  stderr, which is a log file under `$AISTACK_HOME/logs`, whose path is printed. The worker
  reports progress to this process as JSON lines on a pipe (task callbacks: running, success,
  failed, up_for_retry, skipped; then the run's final states, XCom results and published outputs),
  and this process prints them. No log filtering, no monkeypatching of Airflow.
- One model process. The agents and the embedded runtime stay in this process; llama.cpp is
  fastest with the model in one process, and the worker only waits on HTTP while a model runs.
- Isolation. A Ctrl-C or a failure on either side stops the other cleanly: the worker runs in its
  own session, is told to stop through its stdin, and exits when this process goes away.

Local output: a TaskOrchestration that declares S3 storage writes its results locally, to
`--output-dir` or `$AISTACK_OUTPUT_DIR` (default `$AISTACK_HOME/outputs`), unless an AWS connection
is configured (AIRFLOW_CONN_AWS_DEFAULT, AWS_* credentials variables, or ~/.aws); the console says
which, and why. `--output-dir` always writes locally.

Public API: `RunRequest`, `RunOutcome`, `RunError` and `run()` (runner.py); `Console`
(progress.py) prints a run; `aistack.local.cli.main(args)` is the `aistack run` command. With
`--trace FILE` a run also writes a JSON record (phase times, step events, every model call with
its messages, options and timings), which the tests and bench/pipeline_overhead.py read.

Measured on the 2-core reference machine (bench/pipeline_overhead.py, the seed pipeline on the
demo document, warm runtime, medians of 3 rounds): 20.3 s through `aistack run` taking the warm
worker the last run left, 25.6 s with a fresh worker, against 14.3 s for the same three model
calls made directly (1.44x and 1.81x). A fresh worker's start beyond what overlaps this
process's setup was 7.7 s of that; with the warm worker it is 0, and the rest is about 2 s
(CLI start 0.9, setup 1.0, A2A 0.6, Airflow's task overhead 0.5, the end 0.7).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Console", "RunError", "RunOutcome", "RunRequest", "run"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `python -m aistack.local.worker` and `import aistack.cli` stay light.
    if name in ("RunRequest", "RunOutcome", "RunError", "run"):
        from aistack.local import runner

        return getattr(runner, name)
    if name == "Console":
        from aistack.local.progress import Console

        return Console
    raise AttributeError(name)
