"""Where a run's results go: always below the output root, whatever a resource or a run id says."""

from pathlib import Path

import pytest

from aistack.pipelines.output import LocalStorage, UnsafeKey, checked_key, publish, published_keys, run_folder
from aistack.pipelines.plan import plan
from aistack.resources import InvalidResource, parse_resource

RESULTS = {"answer": {"artifacts": [{"name": "answer", "mediaType": "text/plain", "text": "4"}]}}


def orchestration(storage: dict | None = None):
    spec = {"input": {"text": "2 + 2?"}, "pipeline": [{"name": "answer", "agentRef": "chat-agent"}]}
    if storage:
        spec["output"] = {"storage": storage}
    return parse_resource({"apiVersion": "ai.stack/v1alpha1", "kind": "TaskOrchestration", "metadata": {"name": "qa"}, "spec": spec})


@pytest.mark.parametrize(
    "storage",
    [
        {"type": "local", "path": "/tmp/x", "prefix": "../../../tmp/elsewhere/"},
        {"type": "local", "prefix": "a/../../b/"},
        {"type": "local", "path": "results/../../.."},
        {"type": "s3", "bucket": "ai-results", "prefix": "/etc/"},
        {"type": "s3", "bucket": "ai-results", "prefix": "outputs//x/"},
    ],
)
def test_prefixes_and_folders_that_leave_the_output_root_are_refused_with_their_field(storage):
    with pytest.raises(InvalidResource) as raised:
        orchestration(storage)
    fields = {error.path for error in raised.value.errors}
    assert fields <= {"spec.output.storage.prefix", "spec.output.storage.path"} and fields
    assert "no '..'" in str(raised.value)


@pytest.mark.parametrize("run_id", ["..", ".", "../../etc", "manual__2026-12-02T19:00:00+00:00", "", "a/../.."])
def test_a_run_id_never_names_a_folder_outside_the_pipelines_own(run_id: str, tmp_path: Path):
    root = tmp_path / "outputs"
    p = plan(orchestration())
    folder = run_folder(p, run_id)
    assert folder.startswith("default/qa/") and folder.count("/") == 3
    written = publish(p, run_id, RESULTS, LocalStorage(root))
    assert all(Path(location).resolve().is_relative_to(root.resolve()) for location in written)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("result.*")) == sorted(Path(location).relative_to(tmp_path) for location in written)


def test_a_symbolic_link_out_of_the_output_root_is_not_followed(tmp_path: Path):
    root, elsewhere = tmp_path / "outputs", tmp_path / "elsewhere"
    (root / "default").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "default" / "qa").symlink_to(elsewhere)
    (elsewhere / "keep.txt").write_text("mine")
    with pytest.raises(UnsafeKey, match="outside the output directory"):
        publish(plan(orchestration()), "run-1", RESULTS, LocalStorage(root))
    with pytest.raises(UnsafeKey):
        LocalStorage(root).delete("default/qa/keep.txt")
    assert [p.name for p in elsewhere.iterdir()] == ["keep.txt"]


def test_a_declared_local_folder_stays_inside_the_output_directory(tmp_path: Path):
    p = plan(orchestration({"type": "local", "path": "team-a/results", "prefix": "daily/"}))
    storage = LocalStorage(tmp_path / "outputs" / "team-a" / "results", within=tmp_path / "outputs")
    written = publish(p, "run-1", RESULTS, storage)
    assert written == [str(tmp_path / "outputs/team-a/results/daily/default/qa/run-1/result.json")]
    assert published_keys(p, "run-1") == ["daily/default/qa/run-1/result.json"]


@pytest.mark.parametrize("key", ["/abs/key", "a/../b", "a//b", "./a", "a/.", "a\\..\\b", "a\x00b"])
def test_object_keys_are_held_to_the_same_rule_for_every_store(key: str):
    with pytest.raises(UnsafeKey):
        checked_key(key)
