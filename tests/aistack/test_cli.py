"""The `aistack` console script as a user runs it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

AISTACK = str(Path(sys.executable).parent / "aistack")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([AISTACK, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_validate_examples_and_models_succeeds(repo: Path):
    result = run("validate", "examples/", "models/", cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: ")
    pipelines = sum(f.read_text().count("\nkind: TaskOrchestration") for f in (repo / "examples").rglob("*.yaml"))
    assert pipelines > 3 and f"{pipelines} TaskOrchestration" in result.stdout


def test_validate_reports_every_error_with_its_location(repo: Path, tmp_path: Path):
    bad = tmp_path / "task.yaml"
    source = (repo / "examples" / "summarization-pipeline" / "task.yaml").read_text()
    bad.write_text(
        source.replace('dependsOn: ["document-analyzer"]', 'dependsOn: ["documnet-analyzer"]').replace("retries: 2", "retries: 20")
        + "---\napiVersion: ai.stack/v1alpha1\nkind: OllamaAgent\nmetadata: {name: a}\nspec: {role: qa}\n"
    )
    result = run("validate", "--external-refs", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"{bad}#0 TaskOrchestration/document-analysis: spec.pipeline[0].retries: must be less than or equal to 10" in lines
    assert (
        f'{bad}#0 TaskOrchestration/document-analysis: spec.pipeline[1].dependsOn[0]: unknown step "documnet-analyzer" (did you mean "document-analyzer"?)'
    ) in lines
    assert f"{bad}#1 OllamaAgent/a: spec.modelDefinition: required field is missing" in lines
    assert f"{bad}#1 OllamaAgent/a: spec.agentCard: required field is missing" in lines
    assert "Traceback" not in result.stderr


def test_validate_missing_path_is_a_usage_error(tmp_path: Path):
    result = run("validate", "nope/", cwd=tmp_path)
    assert result.returncode == 2
    assert "no such file or folder: nope" in result.stderr


def test_crds_generate_leaves_the_tree_unchanged(repo: Path, tmp_path: Path):
    assert run("crds", "generate", "--check", cwd=repo).returncode == 0
    result = run("crds", "generate", "--root", str(tmp_path), cwd=repo)
    assert result.returncode == 0
    for name in ("ollamaagent_crd.yaml", "ollamamodeldefinition_crd.yaml", "taskorchestration_crd.yaml"):
        assert (tmp_path / "crds" / name).read_bytes() == (repo / "crds" / name).read_bytes()
    assert run("crds", "generate", "--root", str(tmp_path), cwd=repo).stdout.strip() == "up to date"


def test_crds_generate_check_detects_drift(repo: Path, tmp_path: Path):
    shutil.copytree(repo / "crds", tmp_path / "crds")
    shutil.copytree(repo / "docs", tmp_path / "docs")
    path = tmp_path / "crds" / "taskorchestration_crd.yaml"
    path.write_text(path.read_text().replace("maxItems: 100", "maxItems: 101", 1))
    result = run("crds", "generate", "--check", "--root", str(tmp_path), cwd=repo)
    assert result.returncode == 1
    assert "out of date" in result.stderr and "taskorchestration_crd.yaml" in result.stderr


def test_core_imports_without_airflow_or_cluster_clients():
    code = (
        "import sys, aistack.cli, aistack.resources.validation, aistack.kube.crds\n"
        "heavy = [m for m in ('airflow', 'kubernetes', 'kubernetes_asyncio', 'ollama', 'a2a') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_data_directory_is_created_for_this_user_only_and_an_open_one_is_closed(tmp_path: Path, repo: Path):
    home = tmp_path / "new" / "aistack"
    env = {**os.environ, "AISTACK_HOME": str(home)}
    env.pop("AISTACK_UMASK", None)
    subprocess.run([AISTACK, "validate", str(repo / "examples")], env=env, check=True, capture_output=True, timeout=60)
    assert home.stat().st_mode & 0o777 == 0o700
    home.chmod(0o755)  # as an earlier version left it
    subprocess.run([AISTACK, "validate", str(repo / "examples")], env=env, check=True, capture_output=True, timeout=60)
    assert home.stat().st_mode & 0o777 == 0o700


def test_a_user_can_ask_to_share_the_data_directory(tmp_path: Path):
    home = tmp_path / "shared"
    env = {**os.environ, "AISTACK_HOME": str(home), "AISTACK_UMASK": "022"}
    script = (
        "from aistack import settings\n"
        "from aistack.files import keep_private, write_atomic\n"
        "keep_private(settings.data_dir(), settings.umask())\n"
        "print(oct(write_atomic(settings.data_dir() / 'f', 'x').stat().st_mode & 0o777))\n"
    )
    shared = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True, timeout=60)
    assert home.stat().st_mode & 0o777 == 0o755 and shared.stdout.strip() == "0o644"
    env["AISTACK_UMASK"] = "rw"
    refused = subprocess.run([AISTACK, "validate", str(tmp_path)], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "AISTACK_UMASK='rw' is not an octal umask" in refused.stderr
