"""Shared fixtures: the repository layout, the localhost Kubernetes API test server, and a
private Airflow home (SQLite) that is set before anything imports Airflow."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="aistack-test-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
REPO = Path(__file__).resolve().parent.parent
# dag.test() runs only DAGs found in a bundle: the project's dags/ and the tests' own tests/airflow_dags/.
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {"name": name, "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {"path": str(path)}}
        for name, path in (("aistack", REPO / "dags"), ("aistack-tests", REPO / "tests" / "airflow_dags"))
    ]
)

pytest_plugins = ["tests.kubeapi.fixtures"]


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database, for tests that run DAGs with dag.test()."""
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, timeout=300)
    return _AIRFLOW_HOME


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_ollama(tmp_path_factory):
    """One embedded Ollama-compatible server for the session (the real SmolLM2 model behind it)."""
    from aistack.runtime.config import RuntimeConfig
    from aistack.runtime.endpoint import embedded_server

    store = tmp_path_factory.mktemp("embedded-ollama") / "ollama"
    with embedded_server(RuntimeConfig(store=store, substitutions={"*": "smollm2:135m"})) as server:
        yield server.url


@pytest.fixture
def recorded_spans():
    """aistack's spans, recorded in memory for the test (aistack.telemetry.use), then let go."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from aistack import telemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use(provider)
    try:
        yield exporter
    finally:
        telemetry.use(None)
