"""Helpers of the generator's tests: a fresh parse of the generator's DAG file, the example
agents, and a run's published result."""

import importlib
import json
import os
import sys
from pathlib import Path

from aistack.resources import OllamaAgent, OllamaModelDefinition
from aistack.resources.validation import validate_paths


def load_dags(folder: Path, monkeypatch) -> dict:
    """The generated DAGs of the manifests in `folder`, from a fresh parse (as the DAG processor does)."""
    monkeypatch.setenv("AISTACK_ORCHESTRATIONS_PATH", str(folder))
    return _parse()


def _parse() -> dict:
    sys.modules.pop("aistack_airflow.dags.task_orchestrations", None)
    module = importlib.import_module("aistack_airflow.dags.task_orchestrations")
    return {k: v for k, v in vars(module).items() if k.startswith("aistack__")}


def example_agents(repo: Path) -> list:
    """(agent, model definition) for every agent of examples/, each once."""
    result = validate_paths([repo / "examples"])
    definitions = {d.name: d for d in result.of_kind(OllamaModelDefinition)}
    seen, pairs = set(), []
    for agent in result.of_kind(OllamaAgent):
        if agent.name not in seen:
            seen.add(agent.name)
            pairs.append((agent, definitions[agent.spec.model_definition.name]))
    return pairs


def outputs_of(outputs: Path, name: str) -> dict:
    """The result.json of the one run of pipeline `name` (namespace default)."""
    (path,) = (outputs / "default" / name).glob("*/result.json")
    return json.loads(path.read_text())


def load_dags_from(folder: Path) -> dict:
    """`load_dags` outside pytest (the benchmarks): AISTACK_ORCHESTRATIONS_PATH set for good."""
    os.environ["AISTACK_ORCHESTRATIONS_PATH"] = str(folder)
    return _parse()
