"""The README's first command on a fresh clone: `make demo` creates the virtual environment,
installs the pinned dependencies (from pip's cache, as a second clone on a machine would) and runs
the seed pipeline through Airflow and real agents; a second `make demo` skips the installation."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.aistack.local.support import stop_standbys

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def make_demo(clone: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=2200)


def test_make_demo_in_a_fresh_clone(tmp_path: Path):
    clone = tmp_path / "aistack"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    # A new user's shell: no virtual environment, no Airflow, aistack, Ollama or AWS settings.
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV" and not k.startswith(("AIRFLOW", "AISTACK_", "OLLAMA_", "AWS_", "PYTEST", "KUBECONFIG"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if "/.venv/" not in p + "/")
    env["AISTACK_HOME"] = str(tmp_path / "home")

    try:
        first = make_demo(clone, env)
        assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-4000:]
        assert "Installing aistack and its pinned dependencies" in first.stdout
        wheels = [line for line in first.stdout.splitlines() if "llama_cpp_python-" in line and ".whl" in line]
        assert wheels and all("/aistack/wheels/llama-cpp-python-" in line for line in wheels), (
            "llama-cpp-python comes from aistack's flag-keyed wheel cache, never from pip's"
        )
        assert "ok: " in first.stdout, "the examples and models are validated first"
        assert "quality-check        succeeded" in first.stdout
        assert "of default/document-analysis succeeded in" in first.stdout
        assert (clone / ".venv" / ".installed").is_file()
        results = list((tmp_path / "home" / "outputs").rglob("result.json"))
        assert len(results) == 1

        second = make_demo(clone, env)
        assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-4000:]
        assert "Installing aistack" not in second.stdout, "a second make demo does not install again"
        assert "up to date" in second.stdout, "the models built by the first run are reused"
        assert len(list((tmp_path / "home" / "outputs").rglob("result.json"))) == 2
    finally:
        stop_standbys(tmp_path / "home")  # the worker each run leaves warm for the next
