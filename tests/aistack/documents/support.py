"""Test helpers of the documents tests (shared with tests/dags/test_batch_summarization.py):
a real S3 endpoint (moto in server mode on 127.0.0.1), and deterministic summarizers."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator

from aistack.agents.backend import ChatChunk, ChatRequest, ModelBackend

BUCKET = "aistack-documents"


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """A moto S3 server on a free 127.0.0.1 port for the block; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


_BETWEEN = re.compile(r"^--- (?:document|part \d+ of \d+) ---\n(.*?)\n--- end of", re.DOTALL | re.MULTILINE)
_TITLE = re.compile(r'document "([^"]+)"')


def first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    match = re.match(r"(.+?[.!?])(?:\s|$)", flat)
    return (match.group(1) if match else flat)[:160]


def fake_answer(prompt: str) -> str:
    """What the fake summarizer answers: JSON shaped like the seed summarizer's function schema.

    A part (or a whole document) gives its first sentence as the main point; a combine prompt
    gives back the main points of the summaries it combines.
    """
    title = (_TITLE.search(prompt) or [None, "?"])[1]
    between = _BETWEEN.search(prompt)
    if between:
        points = [first_sentence(between.group(1))]
    else:
        points = [line[2:] for line in prompt.splitlines() if line.startswith("- ")][:6]
    return json.dumps({"main_points": points, "themes": [title]})


class ExtractiveFakeModel(ModelBackend):
    """Fake model backend (for agents in tests): answers `fake_answer(prompt)`, records prompts."""

    model = "extractive:fake"

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self._lock = threading.Lock()

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        prompt = next(m["content"] for m in reversed(request.messages) if m.get("role") == "user")
        with self._lock:
            self.prompts.append(prompt)
        yield ChatChunk(fake_answer(prompt), done=True, tokens=1)

    async def check(self) -> None:
        return None

    def reset(self) -> None:
        with self._lock:
            self.prompts.clear()


class RecordingSummarizer:
    """A `Summarizer` for the core tests: answers `fake_answer`, records (prompt, message id)."""

    def __init__(self, answers: dict[int, str | Exception] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.answers = answers or {}
        self.closed = 0

    def __call__(self, prompt: str, mid: str) -> str:
        self.calls.append((prompt, mid))
        answer = self.answers.get(len(self.calls) - 1)
        if isinstance(answer, Exception):
            raise answer
        return answer if answer is not None else fake_answer(prompt)

    def close(self) -> None:
        self.closed += 1


def summarizer_pair(repo, *, model_name: str = "summarizer-model", parameters: dict | None = None, system: str | None = None, response_format: str | None = None):
    """The seed's summarizer-agent and summarizer-model from the repository, the model renamed
    (so tests do not replace the models other tests build) and optionally re-parameterized;
    `response_format` overrides the agent's modelConfig.responseFormat."""
    from pathlib import Path

    import yaml

    from aistack.resources import parse_resource

    agent = yaml.safe_load((Path(repo) / "examples" / "summarization-pipeline" / "summarizer-agent.yaml").read_text())
    model = yaml.safe_load((Path(repo) / "models" / "summarizer" / "model.yaml").read_text())
    model["metadata"]["name"] = model_name
    agent["spec"]["modelDefinition"]["name"] = model_name
    if parameters:
        model["spec"]["build"]["parameters"] = {**model["spec"]["build"].get("parameters", {}), **parameters}
    if system is not None:
        model["spec"]["build"]["system"] = system
    if response_format is not None:
        agent["spec"]["modelConfig"]["responseFormat"] = response_format
    return parse_resource(agent), parse_resource(model)


def create_model(ollama_url: str, definition) -> str:
    """Build the definition in the (embedded) Ollama at `ollama_url`; returns the digest it lists."""
    import ollama

    from aistack.models.modelfile import build_request

    client = ollama.Client(host=ollama_url, timeout=120)
    client.create(**build_request(definition, {}).create_kwargs())
    return next(m.digest for m in client.list().models if m.model == definition.model_name)


def closed_port_url() -> str:
    """A 127.0.0.1 URL where nothing listens (connections are refused at once)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
