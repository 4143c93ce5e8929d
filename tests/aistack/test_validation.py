"""Validating sets of manifests: bad resources never hide good ones."""

from pathlib import Path

from aistack.resources import OllamaAgent, TaskOrchestration
from aistack.resources.validation import validate_paths

GOOD_TASK = """\
apiVersion: ai.stack/v1alpha1
kind: TaskOrchestration
metadata: {{name: {name}}}
spec:
  input: {{text: hello}}
  pipeline:
    - {{name: only, agentRef: some-agent}}
"""


def test_one_bad_resource_never_hides_the_others(tmp_path: Path):
    for index in range(10):
        (tmp_path / f"good-{index}.yaml").write_text(GOOD_TASK.format(name=f"task-{index}"))
    (tmp_path / "bad.yaml").write_text(GOOD_TASK.format(name="broken").replace("pipeline:", "pipelines:"))
    (tmp_path / "syntax.yaml").write_text("kind: [\n")
    result = validate_paths([tmp_path], check_references=False)
    assert len(result.of_kind(TaskOrchestration)) == 10
    assert sorted(p.document.source.name for p in result.problems) == ["bad.yaml", "syntax.yaml"]


def test_multi_document_errors_name_their_document(tmp_path: Path):
    path = tmp_path / "all.yaml"
    path.write_text(GOOD_TASK.format(name="a") + "---\n" + GOOD_TASK.format(name="b") + "---\n" + GOOD_TASK.format(name="c").replace("text: hello", "text: 2"))
    result = validate_paths([path], check_references=False)
    assert [p.document.index for p in result.problems] == [2]
    assert result.problems[0].lines() == [f'{path}#2 TaskOrchestration/c: spec.input.text: expected a string, got the number 2: quote it, e.g. "2"']


def test_other_kubernetes_objects_are_skipped_not_rejected(tmp_path: Path):
    (tmp_path / "kustomization.yaml").write_text("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n")
    (tmp_path / "secret.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
    (tmp_path / "task.yaml").write_text(GOOD_TASK.format(name="t"))
    result = validate_paths([tmp_path], check_references=False)
    assert result.ok
    assert len(result.skipped) == 2


def test_identical_copies_are_one_resource_but_different_copies_conflict(repo: Path, tmp_path: Path):
    copy = tmp_path / "copy.yaml"
    copy.write_text((repo / "models" / "qa" / "model.yaml").read_text())
    assert validate_paths([repo / "models", copy]).ok
    copy.write_text(copy.read_text().replace("temperature: 0.0", "temperature: 0.5"))
    result = validate_paths([repo / "models", copy])
    assert [p.document.source for p in result.problems] == [copy]


def test_references_resolve_per_namespace(repo: Path, tmp_path: Path):
    agents = (repo / "examples" / "question-answering" / "agents.yaml").read_text()
    (tmp_path / "agents.yaml").write_text(agents.replace("  name: chat-agent\n", "  name: chat-agent\n  namespace: other\n"))
    for name in ("chat-model.yaml", "qa-model.yaml", "task.yaml"):
        (tmp_path / name).write_text((repo / "examples" / "question-answering" / name).read_text())
    result = validate_paths([tmp_path])
    errors = [str(e) for p in result.problems for e in p.errors]
    assert 'spec.modelDefinition.name: no OllamaModelDefinition "chat-model" in namespace "other"' in errors
    assert any(e.startswith('spec.pipeline[0].agentRef: no OllamaAgent "chat-agent" in namespace "default"') for e in errors)
    assert len(result.of_kind(OllamaAgent)) == 1
