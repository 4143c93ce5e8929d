"""Helpers for the A2A tests: resources, agent servers on free 127.0.0.1 ports, a webhook receiver,
SDK clients. Servers run in background threads; tests drive async clients with `run()`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from a2a.client import ClientConfig, ClientFactory
from a2a.types import Message, Part, Role, SendMessageConfiguration, SendMessageRequest
from a2a.utils.constants import PROTOCOL_VERSION_1_0, VERSION_HEADER, TransportProtocol
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aistack.agents.backend import ModelBackend
from aistack.agents.config import ServerOptions
from aistack.agents.runner import RunningAgent, serve_agents
from aistack.resources import parse_resource

TOKEN = "test-agent-token"
BINDINGS = {"jsonrpc": TransportProtocol.JSONRPC, "rest": TransportProtocol.HTTP_JSON}
CLASSIFY_SCHEMA = {
    "type": "object",
    "required": ["label", "confidence"],
    "properties": {
        "label": {"type": "string", "enum": ["question", "request", "complaint", "report", "other"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
}


def token_files(directory: Path, **tokens: str) -> Path:
    """A tokens directory as a projected volume of one Secret per namespace mounts it: one file per
    namespace (keyword names use _ for -), plus the volume's own `..data` entry, which is no token."""
    directory.mkdir(parents=True, exist_ok=True)
    for namespace, token in tokens.items():
        (directory / namespace.replace("_", "-")).write_text(token + "\n")
    (directory / "..data").mkdir(exist_ok=True)
    return directory


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def model_definition(
    name: str = "test-model",
    *,
    json_schema: dict[str, Any] | None = None,
    system: str = "Answer briefly.",
    parameters: dict[str, Any] | None = None,
    base: str = "llama2",
) -> Any:
    build: dict[str, Any] = {"system": system, "tags": {"version": "1.0.0"}}
    params = dict(parameters or {})
    if json_schema is not None:
        params["responseFormat"] = "json"
        build["functions"] = [{"name": "classify", "description": "Assign a label", "parameters": json_schema}]
    if params:
        build["parameters"] = params
    return parse_resource(
        {
            "apiVersion": "ai.stack/v1alpha1",
            "kind": "OllamaModelDefinition",
            "metadata": {"name": name},
            "spec": {"from": base, "build": build},
        }
    )


def ollama_agent(
    name: str = "test-agent",
    *,
    model: str = "test-model",
    role: str = "chat",
    capabilities: tuple[str, ...] = ("chat",),
    endpoint: str | None = None,
    bearer: bool = False,
    streaming: bool = True,
    push: bool = False,
    webhook: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
) -> Any:
    card: dict[str, Any] = {"capabilities": list(capabilities)}
    if endpoint:
        card["endpoint"] = endpoint
    if bearer:
        card["authentication"] = {"type": "bearer"}
    server: dict[str, Any] = {"streaming": streaming, "pushNotifications": push}
    if webhook:
        server["webhookConfig"] = webhook
    spec: dict[str, Any] = {
        "modelDefinition": {"name": model, "version": "1.0.0"},
        "role": role,
        "agentCard": card,
        "server": server,
    }
    if model_config:
        spec["modelConfig"] = model_config
    return parse_resource({"apiVersion": "ai.stack/v1alpha1", "kind": "OllamaAgent", "metadata": {"name": name}, "spec": spec})


@contextlib.contextmanager
def serve(agent: Any, definition: Any, backend: ModelBackend, **options: Any) -> Iterator[RunningAgent]:
    """One agent with `backend` on a free port, stopped when the block ends."""
    with serve_agents([(agent, definition)], backends=lambda a, d: backend, options=ServerOptions(**options)) as running:
        yield running[0]


def sdk_client(running: RunningAgent, transport: str, *, streaming: bool = True, token: str | None = None, http: httpx.AsyncClient | None = None) -> Any:
    """The a2a-sdk's own client for one transport (the caller closes `http`)."""
    headers = {VERSION_HEADER: PROTOCOL_VERSION_1_0}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    http = http or httpx.AsyncClient(headers=headers, timeout=30)
    config = ClientConfig(streaming=streaming, httpx_client=http, supported_protocol_bindings=[BINDINGS[transport]])
    return ClientFactory(config).create(running.served.card)


def user_message(
    text: str = "hello", *, context_id: str = "", message_id: str | None = None, parts: list[Part] | None = None, metadata: dict[str, Any] | None = None
) -> Message:
    message = Message(role=Role.ROLE_USER, message_id=message_id or uuid.uuid4().hex, context_id=context_id, parts=parts if parts is not None else [Part(text=text)])
    if metadata:
        message.metadata.update(metadata)
    return message


def send_request(message: Message, **configuration: Any) -> SendMessageRequest:
    return SendMessageRequest(message=message, configuration=SendMessageConfiguration(**configuration))


def jsonrpc(method: str, params: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class ThreadedServer:
    """A Starlette app on a free 127.0.0.1 port in a background thread."""

    def __init__(self, app: Any):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", log_config=None))
        self.server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class WebhookReceiver(ThreadedServer):
    """Records every POST; answers with the scripted statuses in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None):
        self.statuses = list(statuses or [])
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

        async def hook(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                status = self.statuses.pop(0) if self.statuses else 200
                self.requests.append({"headers": dict(request.headers), "body": body, "status": status, "path": request.url.path})
            return JSONResponse({"status": status}, status_code=status)

        super().__init__(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
        self.hook_url = f"{self.url}/hook"

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["status"] < 300]
