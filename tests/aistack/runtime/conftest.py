"""One embedded server for the whole runtime suite (the model loads once), on a free port,
with its store in a temporary AISTACK_HOME; the official ollama client talks to it."""

from __future__ import annotations

from pathlib import Path

import ollama
import pytest

from aistack.models.modelfile import build_request
from aistack.runtime.config import RuntimeConfig
from aistack.runtime.endpoint import embedded_server

from .support import definitions


@pytest.fixture(scope="session")
def ollama_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("aistack-home")


@pytest.fixture(scope="session")
def server(ollama_home):
    # Only llama2 is mapped, so an unknown base model stays an error the tests can see.
    config = RuntimeConfig(store=ollama_home / "ollama", substitutions={"llama2": "smollm2:135m"})
    with embedded_server(config, log_path=ollama_home / "runtime.log") as running:  # its own process, logging there
        yield running


@pytest.fixture(scope="session")
def client(server) -> ollama.Client:
    return ollama.Client(host=server.url, timeout=120)


@pytest.fixture(scope="session")
def built(client):
    """Every definition in models/, created through the official client; name -> (definition, request)."""
    result = {}
    for definition in definitions():
        request = build_request(definition, {})  # from: llama2, mapped by the server
        for _ in client.create(**request.create_kwargs(), stream=True):
            pass
        result[definition.name] = (definition, request)
    return result
