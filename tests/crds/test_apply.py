"""The generated CRDs and every example, applied with a real kubectl to the test API server."""

import json
from pathlib import Path

import pytest

EXAMPLES = ["summarization-pipeline", "question-answering", "multi-model-chat"]


@pytest.fixture
def with_crds(kubectl, repo: Path):
    kubectl("apply", "-f", str(repo / "crds"))
    return kubectl


def test_crds_apply_and_register_their_kinds(with_crds):
    listed = with_crds("api-resources", "--api-group=ai.stack", "-o", "name").stdout.split()
    assert sorted(listed) == [
        "ollamaagents.ai.stack",
        "ollamamodeldefinitions.ai.stack",
        "taskorchestrations.ai.stack",
    ]


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_applies_and_reads_back(with_crds, repo: Path, example: str):
    folder = repo / "examples" / example
    with_crds("apply", "-f", str(folder))
    task = json.loads(with_crds("get", "taskorchestration", example if example != "summarization-pipeline" else "document-analysis", "-o", "json").stdout)
    assert task["spec"]["pipeline"][0]["agentRef"]
    assert task["metadata"]["generation"] == 1
    names = with_crds("get", "aistack", "-o", "name").stdout.split()
    assert any(name.startswith("ollamaagent.ai.stack/") for name in names)
    assert any(name.startswith("ollamamodeldefinition.ai.stack/") for name in names)


def test_seed_examples_read_back_unchanged(with_crds, repo: Path):
    seed = repo / "tests" / "resources" / "seed"
    for name in ("ollamaagent.yaml", "ollamamodeldefinition.yaml", "taskorchestration.yaml"):
        with_crds("apply", "-f", str(seed / name))
    task = json.loads(with_crds("get", "taskorchestration", "document-analysis", "-o", "json").stdout)
    assert task["spec"]["pipeline"][0]["timeout"] == "5m"
    assert task["spec"]["errorPolicy"] == {"maxRetries": 3, "backoffLimit": 600, "failureAction": "rollback"}
    agent = json.loads(with_crds("get", "ollamaagent", "summarizer-agent", "-o", "json").stdout)
    assert agent["spec"]["resources"] == {"gpu": 1, "memory": "8Gi", "cpu": "2"}
    model = json.loads(with_crds("get", "omd", "summarizer-model", "-o", "json").stdout)
    assert model["spec"]["build"]["functions"][0]["parameters"]["properties"]["themes"]["items"] == {"type": "string"}
    assert "status" not in model or "phase" not in model.get("status", {}), "status is not writable through the main resource"


def test_kubectl_get_aistack_shows_printer_columns(with_crds, repo: Path):
    with_crds("apply", "-f", str(repo / "examples" / "summarization-pipeline"))
    with_crds(
        "patch",
        "taskorchestration",
        "document-analysis",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Running", "progress": "1/3", "observedGeneration": 1}}),
    )
    table = with_crds("get", "taskorchestrations").stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "PROGRESS", "AGE"]
    assert table[1].split()[:3] == ["document-analysis", "Running", "1/3"]
    everything = with_crds("get", "aistack").stdout
    assert "ollamaagent.ai.stack/summarizer-agent" in everything
    assert "ollamamodeldefinition.ai.stack/summarizer-model" in everything
    assert "taskorchestration.ai.stack/document-analysis" in everything
    agents = with_crds("get", "oagent").stdout.splitlines()
    assert agents[0].split() == ["NAME", "ROLE", "MODEL", "PHASE", "READY", "URL", "AGE"]


def test_status_patch_is_seen_by_kubectl_wait(with_crds, repo: Path):
    with_crds("apply", "-f", str(repo / "examples" / "question-answering" / "task.yaml"))
    with_crds("patch", "tasko", "question-answering", "--subresource=status", "--type=merge", "-p", '{"status": {"phase": "Succeeded", "progress": "2/2"}}')
    result = with_crds("wait", "tasko/question-answering", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=10s")
    assert "condition met" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("retries: 1", "retries: 11"), "spec.pipeline[0].retries"),
        (('timeout: "2m"', 'timeout: "two minutes"'), "spec.pipeline[0].timeout"),
        (("agentRef: chat-agent", "agentRef: Chat_Agent"), "spec.pipeline[0].agentRef"),
        (("  pipeline:", "  pipelines:"), "pipelines"),
        (('dependsOn: ["answer"]', 'dependsOn: ["answr"]'), "every dependsOn entry must name a step of the pipeline"),
    ],
)
def test_server_rejects_malformed_resources(with_crds, repo: Path, tmp_path: Path, change, message):
    source = (repo / "examples" / "question-answering" / "task.yaml").read_text()
    assert change[0] in source
    bad = tmp_path / "task.yaml"
    bad.write_text(source.replace(change[0], change[1]))
    result = with_crds("apply", "-f", str(bad), check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert with_crds("get", "tasko", "-o", "name").stdout.strip() == ""
