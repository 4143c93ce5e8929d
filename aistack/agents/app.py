"""One OllamaAgent as an A2A server: a Starlette application built from the SDK's route factories.

Routes, in matching order (the REST routes end with the SDK's catch-all tenant mount, so
everything else comes first):

- `/healthz` (the process is up), `/readyz` (the model answers: `ollama show` succeeds; cached
  for a few seconds; with the model's name and build digest, which pipeline step caches key on), `/metrics` (Prometheus, this agent's own registry);
- the agent card at `/.well-known/agent-card.json`, also under `agentCard.endpoint` when that
  is not `/`, with `Cache-Control: public, max-age=300` (CARD_CACHE_CONTROL) beside the SDK's
  ETag. Nothing is served at `/.well-known/agent.json`, the A2A 0.2/0.3 name: a client that
  reads it expects a 0.3 card and would then speak 0.3, which this server refuses;
- JSON-RPC at `agentCard.endpoint` (with or without a trailing slash);
- HTTP+JSON under `agentCard.endpoint` (`/message:send`, `/tasks/{id}`...).

Middleware: bearer authentication when the card declares it (everything but the cards and the
three operational paths), then the body size limit (security.py); their refusals on the JSON-RPC
URL are JSON-RPC error responses. Clients must send `A2A-Version: 1.0`; the SDK answers
VersionNotSupported otherwise (0.3 compatibility is off).

Callers are told apart by their bearer token (tokens.py: the shared one, or one per namespace):
each task, its push configs, its message ids and its conversation belong to the identity that
created it, and any other caller gets TaskNotFound for it (the SDK's stores, scoped by
`ServerCallContext.user`). An agent without bearer authentication has one anonymous caller.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import InMemoryPushNotificationConfigStore
from a2a.types import AgentCard
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from a2a.utils.errors import InvalidParamsError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aistack.agents.backend import ModelBackend, ModelError
from aistack.agents.card import build_agent_card, interface_url
from aistack.agents.config import ConfigError, ServerOptions
from aistack.agents.conversation import ConversationStore
from aistack.agents.executor import MessageIndex, OllamaAgentExecutor
from aistack.agents.handler import AgentRequestHandler, TransportContextBuilder
from aistack.agents.metrics import AgentMetrics
from aistack.agents.profile import AgentProfile
from aistack.agents.push import PushDispatcher
from aistack.agents.security import BearerAuth, BodyLimit
from aistack.agents.store import AgentTaskStore
from aistack.agents.webhooks import RetrySchedule, UnsafeWebhookURL, WebhookGuard
from aistack.resources.agent import OllamaAgent
from aistack.resources.model_definition import OllamaModelDefinition

OPERATIONAL_PATHS = ("/healthz", "/readyz", "/metrics")
# A2A 0.2/0.3's name of the card, not served: open like the card, so that every client gets its
# 404 (there is no 0.3 card) rather than a 401 (as if a token would get one).
LEGACY_CARD_PATH = "/.well-known/agent.json"
# The card changes only when its OllamaAgent does (a new rollout): five minutes bounds how long a
# client may use a card the agent no longer serves; the ETag makes each revalidation a 304.
# `public`: the card is the same for every caller and served without credentials.
CARD_CACHE_CONTROL = "public, max-age=300"


@dataclass
class AgentApp:
    """The application and the parts tests and the runner look at."""

    app: Starlette
    profile: AgentProfile
    card: AgentCard
    base_url: str
    metrics: AgentMetrics
    backend: ModelBackend
    executor: OllamaAgentExecutor
    handler: AgentRequestHandler
    push: PushDispatcher | None

    @property
    def card_url(self) -> str:
        return self.base_url.rstrip("/") + AGENT_CARD_WELL_KNOWN_PATH

    @property
    def interface_url(self) -> str:
        return interface_url(self.base_url, self.profile.endpoint)


class Readiness:
    """Whether the model answers, asked at most every `ttl` seconds."""

    def __init__(self, backend: ModelBackend, ttl: float):
        self.backend = backend
        self.ttl = ttl
        self._checked = -1e9
        self._result: tuple[bool, str] = (False, "not checked")
        self.digest: str | None = None  # the model's build digest, learnt with each check

    async def check(self) -> tuple[bool, str]:
        now = time.monotonic()
        if now - self._checked >= self.ttl:
            try:
                await self.backend.check()
                self._result = (True, f"model {self.backend.describe()} answers")
                self.digest = await self.backend.digest()
            except ModelError as exc:
                self._result = (False, str(exc))
            except Exception as exc:  # a readiness probe reports, it does not crash
                self._result = (False, f"{type(exc).__name__}: {exc}")
            self._checked = now
        return self._result


def create_agent_app(
    agent: OllamaAgent,
    definition: OllamaModelDefinition,
    backend: ModelBackend,
    *,
    base_url: str,
    options: ServerOptions | None = None,
) -> AgentApp:
    """Build the server for `agent`; `base_url` is where clients reach it (the card advertises it)."""
    options = options or ServerOptions()
    profile = AgentProfile.from_resources(agent, definition)
    tokens = options.accepted_tokens()
    if profile.bearer and not tokens.configured():
        raise ConfigError(
            f"OllamaAgent {agent.namespace}/{agent.name} requires bearer authentication but no token is configured: "
            "set AISTACK_AGENT_TOKEN_FILE (a mounted Secret), AISTACK_AGENT_TOKEN, or AISTACK_AGENT_TOKENS_DIR "
            "(one token file per namespace)"
        )
    card = build_agent_card(profile, options.public_url or base_url)
    metrics = AgentMetrics()
    task_store = AgentTaskStore(metrics, max_tasks=options.max_tasks)
    messages = MessageIndex()
    executor = OllamaAgentExecutor(
        profile,
        backend,
        conversations=ConversationStore(),
        metrics=metrics,
        messages=messages,
        json_retries=options.json_retries,
    )
    guard = WebhookGuard(options.webhook_allow)
    push = None
    push_store = None
    if profile.push_notifications:
        push_store = InMemoryPushNotificationConfigStore()
        server = agent.spec.server
        push = PushDispatcher(
            push_store,
            task_store,
            schedule=RetrySchedule.from_webhook_config(server.webhook_config if server else None, options.webhook_base_delay, options.webhook_max_delay),
            guard=guard,
            timeout=options.webhook_timeout,
            metrics=metrics,
        )

    async def validate_push_url(url: str) -> bool:
        try:
            await guard.check(url)
        except UnsafeWebhookURL as exc:
            raise InvalidParamsError(message=f"push notification URL refused: {exc}") from None
        return True

    handler = AgentRequestHandler(
        executor,
        task_store,
        card,
        push_config_store=push_store,
        push_sender=push,
        push_url_validator=validate_push_url,
        validate_input_modes=True,
        metrics=metrics,
        messages=messages,
        json_agent=profile.json_output,
    )
    readiness = Readiness(backend, options.ready_cache_seconds)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "agent": profile.name})

    async def readyz(request: Request) -> Response:
        ready, detail = await readiness.check()
        body = {"status": "ready" if ready else "not ready", "model": profile.model, "digest": readiness.digest, "detail": detail}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics_endpoint(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    prefix = "" if profile.endpoint == "/" else profile.endpoint
    card_paths = [AGENT_CARD_WELL_KNOWN_PATH] + ([prefix + AGENT_CARD_WELL_KNOWN_PATH] if prefix else [])
    legacy_card_paths = [LEGACY_CARD_PATH] + ([prefix + LEGACY_CARD_PATH] if prefix else [])
    jsonrpc_paths = [prefix or "/"] + ([prefix + "/"] if prefix else [])
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    for path in card_paths:
        routes += create_agent_card_routes(card, card_url=path, cache_control=CARD_CACHE_CONTROL)
    rpc_routes = create_jsonrpc_routes(handler, rpc_url=jsonrpc_paths[0], context_builder=TransportContextBuilder("jsonrpc"))
    routes += rpc_routes
    routes += [Route(path, rpc_routes[0].endpoint, methods=["POST"]) for path in jsonrpc_paths[1:]]
    routes += create_rest_routes(handler, context_builder=TransportContextBuilder("rest"), path_prefix=prefix)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await handler.aclose()
            if push is not None:
                await push.aclose()
            await backend.aclose()

    middleware = []
    if profile.bearer:
        middleware.append(
            Middleware(
                BearerAuth,
                tokens=tokens,
                open_paths=[*card_paths, *legacy_card_paths, *OPERATIONAL_PATHS],
                jsonrpc_paths=jsonrpc_paths,
                on_reject=lambda reason: metrics.rejections.labels(reason).inc(),
            )
        )
    middleware.append(
        Middleware(
            BodyLimit,
            max_bytes=options.max_body_bytes,
            jsonrpc_paths=jsonrpc_paths,
            on_reject=lambda reason: metrics.rejections.labels(reason).inc(),
        )
    )
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    return AgentApp(
        app=app,
        profile=profile,
        card=card,
        base_url=(options.public_url or base_url).rstrip("/"),
        metrics=metrics,
        backend=backend,
        executor=executor,
        handler=handler,
        push=push,
    )
