"""Fixtures of the generator's tests: a private aistack home, and generated pipelines run with
dag.test() against real A2A agent servers whose models are deterministic fakes."""

import shutil
from pathlib import Path

import pytest

from aistack.agents.fakes import ScriptedModel, SwappableModel
from aistack.agents.runner import serve_agents
from tests.plugins.support import example_agents, load_dags


@pytest.fixture(autouse=True)
def aistack_home(tmp_path: Path, monkeypatch) -> Path:
    """Each test's own aistack home: the generator keeps its cache of validated manifests there."""
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def pipeline(repo: Path, tmp_path: Path, monkeypatch, airflow_db):
    """Runs a TaskOrchestration (YAML text) through its generated DAG; agents answer from `fakes`
    (by agent name; ScriptedModel("ok") otherwise). `run(manifest, dag_id, **kwargs)` passes
    kwargs to dag.test() (run_conf, logical_date)."""
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AISTACK_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("AISTACK_INPUT_DIR", str(tmp_path / "inputs"))
    monkeypatch.setenv("AISTACK_AGENT_TOKEN", "pipeline-test-token")
    fakes: dict = {}
    routes: dict = {}

    def backend(agent, definition):
        routes[agent.name] = SwappableModel(ScriptedModel(["ok"]))
        return routes[agent.name]

    def run(manifest: str, dag_id: str, **test_kwargs):
        folder = tmp_path / "pipelines"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        (folder / "task.yaml").write_text(manifest)
        for name, fake in fakes.items():
            routes[name].current = fake
        dags = load_dags(folder, monkeypatch)
        return dags[dag_id].test(**test_kwargs)

    with serve_agents(example_agents(repo), backends=backend, registry=True):
        yield run, fakes, tmp_path / "outputs"
