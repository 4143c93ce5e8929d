"""`aistack ollama create -f` and `aistack ollama list` against the embedded server."""

from __future__ import annotations

import subprocess
import sys

import ollama

from aistack.cli import main
from aistack.models.modelfile import parse_modelfile


def test_create_from_a_modelfile_and_list(server, client, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text('FROM smollm2:135m\nPARAMETER temperature 0\nPARAMETER stop "END"\nSYSTEM """Answer briefly.\nNo lists."""\n')
    assert main(["ollama", "create", "cli-model:2", "-f", str(modelfile)]) == 0
    out = capsys.readouterr().out
    assert "writing manifest" in out and out.strip().endswith("success")
    assert main(["ollama", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert any(line.startswith("cli-model:2 ") for line in listing)
    shown = parse_modelfile(client.show("cli-model:2").modelfile)
    assert shown == parse_modelfile(modelfile.read_text())
    client.delete("cli-model:2")


def test_create_reports_server_errors(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text("FROM smollm2\nTEMPLATE {{ .Prompt \n")
    assert main(["ollama", "create", "broken", "-f", str(modelfile)]) == 1
    assert "line 1, column" in capsys.readouterr().err


def test_importing_the_cli_loads_no_runtime_dependency():
    code = (
        "import sys, aistack.cli; "
        "bad = [m for m in ('llama_cpp', 'starlette', 'uvicorn', 'ollama', 'aistack.runtime.api') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_list_without_a_server_says_how_to_start_one(monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    assert main(["ollama", "list"]) == 1
    assert "aistack ollama serve" in capsys.readouterr().err
    assert ollama.ResponseError  # the client is importable
