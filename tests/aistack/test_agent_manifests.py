"""The Kubernetes objects rendered for an OllamaAgent."""

from pathlib import Path

import yaml

from aistack.agents.workload import render, service_url
from aistack.cli import _parser
from aistack.resources import OllamaAgent, OllamaModelDefinition, parse_resource
from aistack.resources.manifests import load_text
from aistack.resources.validation import validate_documents, validate_paths

REPO = Path(__file__).resolve().parents[2]


def _example(name: str = "summarization-pipeline", agent: str = "qa-agent"):
    result = validate_paths([REPO / "examples" / name])
    agents = {a.name: a for a in result.of_kind(OllamaAgent)}
    definitions = {d.name: d for d in result.of_kind(OllamaModelDefinition)}
    chosen = agents[agent]
    return chosen, definitions[chosen.spec.model_definition.name]


def test_objects_for_an_agent():
    agent, definition = _example()
    config, deployment, service = render(agent, definition)
    assert [o["kind"] for o in (config, deployment, service)] == ["ConfigMap", "Deployment", "Service"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}
    assert "nvidia.com/gpu" not in str(container["resources"]), "GPUs belong to the Ollama servers"
    assert deployment["metadata"]["annotations"] == {"ai.stack/model-gpus": "1"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {v["name"] for v in pod["volumes"]} == {"config", "token", "namespace-tokens", "tmp"}
    tokens = next(v for v in pod["volumes"] if v["name"] == "namespace-tokens")
    assert tokens["secret"] == {"secretName": "aistack-agent-namespace-tokens", "optional": True}, "agents start before any team exists"
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["AISTACK_AGENT_TOKENS_DIR"] == mounts["namespace-tokens"], "the agent reads the namespaces' tokens where they are mounted"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service_url(agent) == "http://qa-agent.default.svc.cluster.local/api/v1/agent"


def test_container_arguments_are_accepted_by_the_agents_serve_command():
    agent, definition = _example()
    args = render(agent, definition)[1]["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = _parser().parse_args(args)
    assert parsed.public_url == "http://qa-agent.default.svc.cluster.local"
    assert parsed.host == "0.0.0.0" and parsed.port == 8000


def test_config_map_holds_the_agent_and_its_model_definition():
    agent, definition = _example()
    config = render(agent, definition)[0]
    result = validate_documents(load_text(config["data"]["agent.yaml"], Path("agent.yaml")))
    assert result.ok
    assert [r.name for _, r in result.resources] == ["qa-agent", "qa-model"]


def test_replicas_get_a_disruption_budget_and_owner_references_follow_the_resource():
    agent, definition = _example()
    data = agent.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["spec"]["replicas"] = 3
    data["metadata"]["uid"] = "1234"
    objects = render(parse_resource(data), definition)
    assert objects[-1]["kind"] == "PodDisruptionBudget" and objects[-1]["spec"]["minAvailable"] == 1
    assert objects[1]["metadata"]["ownerReferences"][0] == {
        "apiVersion": "ai.stack/v1alpha1",
        "kind": "OllamaAgent",
        "name": "qa-agent",
        "uid": "1234",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_agents_manifests_command_prints_applyable_yaml(capsys):
    from aistack.cli import main

    assert main(["agents", "manifests", str(REPO / "examples" / "question-answering")]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("ConfigMap", "chat-agent-config"),
        ("Deployment", "chat-agent"),
        ("Service", "chat-agent"),
        ("ConfigMap", "qa-agent-config"),
        ("Deployment", "qa-agent"),
        ("Service", "qa-agent"),
    ]
