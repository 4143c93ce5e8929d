"""One deployment for the tests of this folder (about 30 s to start): PostgreSQL, Redis, Airflow's
components with two Celery workers (tests/deployment/airflow.py), the Kubernetes API test server
with the CRDs, and the agents the pipelines call, served from this process with deterministic fake
models (the platform is under test here, not the model) and listed in the agent registry that the
workers read.

Where this machine lacks PostgreSQL, Redis or the Celery provider, the tests are skipped with a
reason that names what is missing (pytest's summary lists them); with AISTACK_REQUIRE_DEPLOYMENT=1
(.ci/run sets it) they fail instead, so CI can never pass without them."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncGenerator, Iterator

import pytest

from aistack.agents.backend import ChatChunk, ChatRequest, ModelBackend
from aistack.agents.fakes import EchoModelBackend, ScriptedModel
from tests.aistack.agents.support import model_definition, ollama_agent
from tests.deployment import services
from tests.deployment.stack import Stack, running_stack

REQUIRE = "AISTACK_REQUIRE_DEPLOYMENT"


def require_services() -> None:
    lacks = services.missing()
    if not lacks:
        return
    reason = "not run: the Airflow deployment tests (PostgreSQL, Redis, Celery workers) need " + "; ".join(lacks)
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1: they must run here)")
    pytest.skip(reason)


class RecordingEcho(EchoModelBackend):
    """The echo fake, keeping each request's messages (the agents run in this process's threads)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[ChatRequest] = []
        self._lock = threading.Lock()

    async def chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        with self._lock:
            self.requests.append(request)
        async for chunk in super().chat(request):
            yield chunk

    def asked(self, text: str) -> int:
        """How many requests had `text` in a message."""
        with self._lock:
            return sum(any(text in str(m.get("content", "")) for m in r.messages) for r in self.requests)


def agents() -> dict[str, ModelBackend]:
    """The agents' models: `echo-agent` answers at once with the text it got; `slow-agent` streams
    40 tokens 0.25 s apart (10 s a call)."""
    return {
        "echo-agent": RecordingEcho(),
        "slow-agent": ScriptedModel([" ".join(f"word{i}" for i in range(40))], token_delay=0.25, model="slow:fake"),
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_services()
    models = agents()
    pairs = [(ollama_agent(name, streaming=False), model_definition()) for name in models]
    with running_stack(tmp_path_factory.mktemp("deployment"), pairs, models) as running:
        yield running
