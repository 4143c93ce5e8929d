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
import shutil
import threading
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aistack.agents.backend import ChatChunk, ChatRequest, ModelBackend
from aistack.agents.fakes import EchoModelBackend, ScriptedModel
from aistack.agents.runner import serve_agents
from tests.aistack.agents.support import model_definition, ollama_agent
from tests.deployment import services
from tests.deployment.airflow import AirflowDeployment, deployment
from tests.kubeapi import KubeAPIServer, Kubectl

REPO = Path(__file__).resolve().parents[2]
REQUIRE = "AISTACK_REQUIRE_DEPLOYMENT"


def require_services() -> None:
    lacks = services.missing()
    if not lacks:
        return
    reason = "not run: the Airflow deployment tests (PostgreSQL, Redis, Celery workers) need " + "; ".join(lacks)
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1: they must run here)")
    pytest.skip(reason)


@dataclass
class Stack:
    airflow: AirflowDeployment
    kube: KubeAPIServer
    kubectl: Kubectl
    models: dict[str, ModelBackend]
    outputs: Path


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
    root = tmp_path_factory.mktemp("deployment")
    dags, home, outputs = root / "dags", root / "airflow", root / "outputs"
    dags.mkdir()
    for name in ("task_orchestration_watcher.py", "task_orchestrations.py"):
        shutil.copy(REPO / "dags" / name, dags)
    patch = pytest.MonkeyPatch()
    patch.setenv("AISTACK_HOME", str(home / "aistack"))  # the agent registry the workers read
    models = agents()
    pairs = [(ollama_agent(name, streaming=False), model_definition()) for name in models]
    try:
        with KubeAPIServer() as kube:
            kubeconfig = kube.write_kubeconfig(root / "kubeconfig")
            kubectl = Kubectl(kubeconfig)
            kubectl("apply", "-f", str(REPO / "crds"))
            env = {"KUBECONFIG": str(kubeconfig), "AISTACK_OUTPUT_DIR": str(outputs)}
            with (
                services.postgres(root / "postgresql") as database,
                services.redis(root / "redis") as broker,
                serve_agents(pairs, backends=lambda agent, definition: models[agent.name], registry=True),
                deployment(home, dags, database, broker, env) as airflow,
            ):
                yield Stack(airflow, kube, kubectl, models, outputs)
    finally:
        patch.undo()
