"""The README cannot rot: every command in its code blocks is run, here when it is quick, otherwise
by the test named for it in ELSEWHERE (which this file checks exists)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import ollama
import yaml

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
AISTACK = Path(sys.executable).with_name("aistack")

# Commands whose run takes minutes: the test that runs each (path, and a name in that file).
ELSEWHERE = {
    "make demo": ("tests/test_fresh_clone.py", "def test_make_demo_in_a_fresh_clone"),
    "make test": (".ci/run", "make test"),
    "make airflow": ("tests/aistack/local/test_standalone.py", "def test_a_pipeline_triggered_with_another_input_runs_to_completion_in_standalone"),
    "TOKEN=$(curl -s -X POST http://localhost:8080/auth/token": (
        "tests/airflow_api/test_rest_trigger.py",
        "def test_trigger_a_generated_dag_with_conf_and_read_the_run_back",
    ),
    "curl -s -X POST http://localhost:8080/api/v2/dags/": (
        "tests/airflow_api/test_rest_trigger.py",
        "def test_trigger_a_generated_dag_with_conf_and_read_the_run_back",
    ),
    "curl -s http://localhost:8080/api/v2/dags/": ("tests/airflow_api/test_rest_trigger.py", "def test_trigger_a_generated_dag_with_conf_and_read_the_run_back"),
}
# Commands run below, each by a test of this file.
HERE = {
    "aistack validate examples/ models/",
    "aistack validate task.yaml",
    "aistack crds generate",
    "aistack crds generate --check",
    "kubectl apply -f crds/",
    "aistack ollama serve --port 11434 &",
    "OLLAMA_HOST=127.0.0.1:11434 aistack ollama create my-model:1.0 -f Modelfile",
}


def readme_commands() -> list[str]:
    """The commands of ```bash blocks (continuation lines joined, comments dropped) and the
    `$ ` lines of ```console blocks."""
    found = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", README, re.S):
        if lang == "bash":
            for command in body.replace("\\\n", " ").splitlines():
                command = re.sub(r"\s+#.*$", "", command).strip()
                if command:
                    found.append(re.sub(r"\s+", " ", command))
        elif lang == "console":
            found += [line[2:].strip() for line in body.splitlines() if line.startswith("$ ")]
    return found


def shown_output(command: str) -> list[str]:
    """The lines the README's console block shows after `$ command`."""
    for body in re.findall(r"```console\n(.*?)```", README, re.S):
        lines = body.splitlines()
        if f"$ {command}" in lines:
            rest = lines[lines.index(f"$ {command}") + 1 :]
            return [line for line in rest[: next((i for i, text in enumerate(rest) if text.startswith("$ ")), len(rest))] if line]
    raise AssertionError(f"no console block shows {command}")


def test_every_readme_command_is_exercised():
    commands = readme_commands()
    assert "make demo" in commands and "make test" in commands
    unexercised = [c for c in commands if c not in HERE and not any(c.startswith(k) for k in ELSEWHERE)]
    assert unexercised == [], "README commands no test runs: add them to HERE (and run them) or to ELSEWHERE"
    for path, name in ELSEWHERE.values():
        assert name in (REPO / path).read_text(), f"{path} no longer has {name}"
    stale = [c for c in HERE if c not in commands]
    assert stale == [], "commands tested here that the README no longer shows"


def test_make_airflow_is_aistack_airflow_on_the_examples():
    recipe = re.search(r"^airflow:.*\n\t(.+)$", (REPO / "Makefile").read_text(), re.M)
    assert recipe and recipe.group(1) == "$(BIN)/aistack airflow examples"


def run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AISTACK), *args], cwd=kwargs.pop("cwd", REPO), capture_output=True, text=True, timeout=kwargs.pop("timeout", 300), **kwargs)


def test_validate_prints_what_the_readme_shows(tmp_path: Path):
    result = run("validate", "examples/", "models/")
    assert (result.returncode, result.stdout.splitlines()) == (0, shown_output("aistack validate examples/ models/"))

    task = yaml.safe_load((REPO / "examples" / "summarization-pipeline" / "task.yaml").read_text())
    task["spec"]["errorPolcy"] = task["spec"].pop("errorPolicy")
    task["spec"]["pipeline"][1]["dependsOn"] = ["documnet-analyzer"]
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    result = run("validate", "task.yaml", cwd=tmp_path)
    assert (result.returncode, result.stdout.splitlines()) == (1, shown_output("aistack validate task.yaml"))


def test_crds_commands(tmp_path: Path, kubectl):
    assert run("crds", "generate", "--check").returncode == 0
    written = run("crds", "generate", "--root", str(tmp_path))
    assert written.returncode == 0
    for crd in (REPO / "crds").glob("*.yaml"):
        assert (tmp_path / "crds" / crd.name).read_text() == crd.read_text()
    applied = kubectl("apply", "-f", str(REPO / "crds") + "/").stdout  # `kubectl get aistack`: tests/crds
    assert applied.count("customresourcedefinition.apiextensions.k8s.io/") == 3 and applied.count(" created") == 3


def test_ollama_serve_and_create(tmp_path: Path):
    from tests.standalone import free_port

    port = free_port()  # the README's 11434, unless something here already uses it
    env = {"AISTACK_HOME": str(tmp_path / "home"), "PATH": str(AISTACK.parent), "HOME": str(tmp_path)}
    server = subprocess.Popen([str(AISTACK), "ollama", "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        client = ollama.Client(host=f"http://127.0.0.1:{port}", timeout=30)
        deadline = time.monotonic() + 120
        while True:
            try:
                client.list()
                break
            except Exception:
                assert server.poll() is None and time.monotonic() < deadline, "aistack ollama serve did not answer"
                time.sleep(0.5)
        (tmp_path / "Modelfile").write_text("FROM smollm2:135m\nSYSTEM You answer in one sentence.\n")
        created = run("ollama", "create", "my-model:1.0", "-f", "Modelfile", cwd=tmp_path, env={**env, "OLLAMA_HOST": f"127.0.0.1:{port}"})
        assert created.returncode == 0, created.stderr
        assert "my-model:1.0" in [m.model for m in client.list().models]
    finally:
        server.terminate()
        server.wait(30)


def test_every_setting_is_in_the_readme_configuration_table():
    from aistack import settings

    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = {value for key, value in vars(settings).items() if key.isupper() and isinstance(value, str) and value.startswith("AISTACK_")}
    assert len(names) >= 15
    assert sorted(n for n in names if f"`{n}`" not in table) == []
