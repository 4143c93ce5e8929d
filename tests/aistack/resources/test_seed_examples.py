"""The seed's three example manifests are the contract: they load, typed, and round-trip unchanged."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from aistack.resources import OllamaAgent, OllamaModelDefinition, TaskOrchestration, parse_resource
from aistack.resources.orchestration import FailureAction, StepCondition
from aistack.resources.types import MediaType

SEED = Path(__file__).resolve().parents[2] / "resources" / "seed"


def _load(name: str) -> dict:
    return yaml.safe_load((SEED / name).read_text())


def _round_trip(resource) -> dict:
    return resource.model_dump(mode="json", by_alias=True, exclude_unset=True)


@pytest.mark.parametrize("name", ["ollamaagent.yaml", "ollamamodeldefinition.yaml", "taskorchestration.yaml", "gitops-model.yaml"])
def test_seed_manifest_round_trips_unchanged(name: str):
    data = _load(name)
    resource = parse_resource(data)
    dumped = _round_trip(resource)
    assert dumped["spec"] == data["spec"]
    assert dumped["metadata"] == data["metadata"]


def test_seed_agent_is_typed():
    agent = parse_resource(_load("ollamaagent.yaml"))
    assert isinstance(agent, OllamaAgent)
    assert agent.spec.model_definition.name == "summarizer-model"
    assert agent.spec.model_definition.version == "1.0.0"
    assert agent.spec.resources.memory.value == Decimal(8 * 2**30)
    assert agent.spec.resources.cpu.value == Decimal(2)
    assert agent.spec.resources.gpu == 1
    assert agent.spec.agent_card.endpoint == "/api/v1/agent"
    assert agent.spec.server.webhook_config.max_retries == 3
    assert agent.spec.model_config_.context_window == 4096


def test_seed_model_definition_is_typed():
    model = parse_resource(_load("ollamamodeldefinition.yaml"))
    assert isinstance(model, OllamaModelDefinition)
    assert model.spec.from_ == "llama2"
    assert model.model_name == "summarizer-model:1.0.0"
    assert model.spec.build.functions[0].parameters["properties"]["themes"]["type"] == "array"
    assert model.spec.build.build_resources.memory.value == Decimal(16 * 2**30)
    assert model.status.phase.value == "Building"
    assert model.status.conditions[0].status.value == "True"


def test_unversioned_model_definition_uses_latest_tag():
    model = parse_resource(_load("gitops-model.yaml"))
    assert model.model_name == "summarizer-model:latest"


def test_seed_orchestration_is_typed():
    task = parse_resource(_load("taskorchestration.yaml"))
    assert isinstance(task, TaskOrchestration)
    analyzer, summarizer, qa = task.spec.pipeline
    assert analyzer.timeout == timedelta(minutes=5)
    assert analyzer.retries == 2
    assert analyzer.artifacts[0].type is MediaType.JSON
    assert summarizer.depends_on == ["document-analyzer"]
    assert summarizer.input_from[0].artifact_name == "analysis-result"
    assert qa.condition is StepCondition.SUCCESS
    assert task.spec.error_policy.failure_action is FailureAction.ROLLBACK
    assert task.spec.output.storage.bucket == "ai-results"
    assert task.namespace == "default"
