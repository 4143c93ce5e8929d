"""aistack's settings, read from the environment in one place so every entry point agrees.

Each setting documents itself here; the README's configuration reference lists them.
"""

from __future__ import annotations

import os
from pathlib import Path

MODELS_PATH = "AISTACK_MODELS_PATH"
BUILD_NAMESPACE = "AISTACK_BUILD_NAMESPACE"
MODEL_BUILDS_SCHEDULE = "AISTACK_MODEL_BUILDS_SCHEDULE"
HOME = "AISTACK_HOME"


def models_path() -> Path | None:
    """A folder of OllamaModelDefinition manifests to build locally; unset means: the cluster's."""
    value = os.environ.get(MODELS_PATH)
    return Path(value) if value else None


def build_namespace() -> str:
    """Where build pods run (their own namespace keeps GPU quota and RBAC apart)."""
    return os.environ.get(BUILD_NAMESPACE, "aistack-builds")


def model_builds_schedule() -> str:
    """Cron expression of the periodic model build run (definitions changes trigger runs too)."""
    return os.environ.get(MODEL_BUILDS_SCHEDULE, "0 3 * * *")


def data_dir() -> Path:
    """aistack's data directory: AISTACK_HOME, else $XDG_DATA_HOME/aistack or ~/.local/share/aistack."""
    if os.environ.get(HOME):
        return Path(os.environ[HOME])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "aistack"


UMASK = "AISTACK_UMASK"
PRIVATE_UMASK = 0o077


def umask() -> int:
    """The umask aistack runs under: AISTACK_UMASK (octal, e.g. 022 to share results with a
    group or everyone), else 077, so only this user reads the data directory."""
    value = os.environ.get(UMASK, "").strip()
    if not value:
        return PRIVATE_UMASK
    try:
        mask = int(value, 8)
    except ValueError:
        raise SystemExit(f"{UMASK}={value!r} is not an octal umask: write e.g. 077 (private) or 022") from None
    if not 0 <= mask <= 0o777:
        raise SystemExit(f"{UMASK}={value!r} is not an octal umask: write e.g. 077 (private) or 022")
    return mask


AGENT_IMAGE = "AISTACK_AGENT_IMAGE"
OLLAMA_URL = "AISTACK_OLLAMA_URL"
AGENT_TOKEN_SECRET = "AISTACK_AGENT_TOKEN_SECRET"


def agent_image() -> str:
    """The image agent Deployments run (built from this repository's agent Dockerfile)."""
    return os.environ.get(AGENT_IMAGE, "ghcr.io/aistack/aistack-agent:0.1.0")


def cluster_ollama_url() -> str:
    """The in-cluster Ollama service agents call (the Ollama chart's Service)."""
    return os.environ.get(OLLAMA_URL, "http://ollama.ollama.svc.cluster.local:11434")


def agent_token_secret() -> str:
    """Name of the Secret (key `token`) with the bearer token agents accept and clients send."""
    return os.environ.get(AGENT_TOKEN_SECRET, "aistack-agent-token")


ORCHESTRATIONS_PATH = "AISTACK_ORCHESTRATIONS_PATH"
OUTPUT_DIR = "AISTACK_OUTPUT_DIR"
AIRFLOW_UI_URL = "AISTACK_AIRFLOW_URL"


def orchestrations_path() -> Path | None:
    """A folder of TaskOrchestration manifests (GitOps checkout, local runs); unset: the cluster's."""
    value = os.environ.get(ORCHESTRATIONS_PATH)
    return Path(value) if value else None


def output_dir() -> Path:
    """Where runs without declared storage write their results."""
    value = os.environ.get(OUTPUT_DIR)
    return Path(value) if value else data_dir() / "outputs"


INPUT_DIR = "AISTACK_INPUT_DIR"


def input_dir() -> Path:
    """Where forEach.fromStorage of type local lists its items: `<input dir>/<namespace>/<prefix>`,
    so a pipeline reads only its own namespace's folder."""
    value = os.environ.get(INPUT_DIR)
    return Path(value) if value else data_dir() / "inputs"


UNATTENDED = "AISTACK_UNATTENDED"


def unattended() -> bool:
    """A run nobody can answer human-in-the-loop requests in (`aistack run`): a step's review fails
    at once, saying where it can be answered, instead of waiting for its timeout."""
    return os.environ.get(UNATTENDED, "") == "1"


LOCAL_ITEMS = "AISTACK_LOCAL_ITEMS"


def local_items_dir() -> Path | None:
    """A folder every forEach.fromStorage source lists instead of its S3 prefix or input folder:
    set by local runs (`aistack run`, `aistack airflow`) to the `documents/` folder beside the
    resources, as AISTACK_LOCAL_OUTPUTS sends the results to the local output directory."""
    value = os.environ.get(LOCAL_ITEMS)
    return Path(value) if value else None


LOCAL_OUTPUTS = "AISTACK_LOCAL_OUTPUTS"


def local_outputs_only() -> bool:
    """Write every run's results to output_dir() as is, whatever storage an orchestration declares:
    set by `aistack run` (--output-dir, or S3 declared without AWS access) and `aistack airflow`."""
    return os.environ.get(LOCAL_OUTPUTS, "").strip().lower() in ("1", "true", "yes", "on")


def airflow_ui_url() -> str:
    """Base URL of the Airflow UI, for the run links written to TaskOrchestration status."""
    return os.environ.get(AIRFLOW_UI_URL, "http://localhost:8080").rstrip("/")


WATCH_NAMESPACE = "AISTACK_WATCH_NAMESPACE"
GENERATOR_BUNDLE = "AISTACK_GENERATOR_BUNDLE"
GENERATOR_FILE = "AISTACK_GENERATOR_FILE"


def watch_namespace() -> str | None:
    """The one namespace whose TaskOrchestrations the submission watcher follows; unset: every namespace."""
    return os.environ.get(WATCH_NAMESPACE) or None


def generator_location() -> tuple[str | None, str | None]:
    """(bundle, file) of the generator's DAG file, for the watcher's parse requests; unset: the
    watcher's own bundle and the file beside it."""
    return os.environ.get(GENERATOR_BUNDLE) or None, os.environ.get(GENERATOR_FILE) or None


RUN_STANDBY = "AISTACK_RUN_STANDBY"
DEFAULT_RUN_STANDBY = 600.0


def run_standby_seconds() -> float:
    """How long the warm Airflow worker started after an `aistack run` waits for the next run
    (aistack.local.standby); 0 starts none."""
    value = os.environ.get(RUN_STANDBY, "").strip()
    if not value:
        return DEFAULT_RUN_STANDBY
    try:
        seconds = float(value)
    except ValueError:
        raise SystemExit(f"{RUN_STANDBY}={value!r} is not a number of seconds: write e.g. 600, or 0 for no warm worker") from None
    return max(seconds, 0.0)


OLLAMA_THREADS = "AISTACK_OLLAMA_THREADS"
RUNTIME_MAX_BODY = "AISTACK_RUNTIME_MAX_BODY"  # read by aistack.runtime.config


def ollama_threads(default: int) -> int:
    """llama.cpp threads per loaded model of the embedded runtime."""
    value = os.environ.get(OLLAMA_THREADS, "").strip()
    return int(value) if value else default


# Read by the agent server's options (aistack.agents.config), which take the environment as an
# argument so that tests and `aistack agents serve` can pass their own.
AGENT_PUBLIC_URL = "AISTACK_AGENT_PUBLIC_URL"
AGENT_MAX_BODY = "AISTACK_AGENT_MAX_BODY"
# The bearer tokens agents accept and clients send (aistack.agents.tokens).
AGENT_TOKEN = "AISTACK_AGENT_TOKEN"
AGENT_TOKEN_FILE = "AISTACK_AGENT_TOKEN_FILE"
AGENT_TOKENS_DIR = "AISTACK_AGENT_TOKENS_DIR"


OTLP_ENDPOINT = "AISTACK_OTLP_ENDPOINT"


def otlp_endpoint() -> str | None:
    """Where aistack's processes export their spans (OTLP over HTTP, e.g.
    http://otel-collector:4318/v1/traces); unset: nothing is exported (aistack/telemetry.py)."""
    return os.environ.get(OTLP_ENDPOINT, "").strip() or None
