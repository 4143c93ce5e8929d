"""The agent's HTTP edge: bearer authentication and the request body limit, as ASGI middleware.

Both run before any A2A parsing, so an unauthenticated or oversized request costs nothing and
never reaches the SDK. They are plain ASGI (not Starlette's BaseHTTPMiddleware), which keeps
SSE streams untouched and adds microseconds, not milliseconds, per request.

- `BearerAuth`: when the card declares bearer authentication, every path except the open ones
  (the agent cards, /healthz, /readyz, /metrics) needs `Authorization: Bearer <token>`; a
  missing or wrong token gets 401 with `WWW-Authenticate: Bearer` (RFC 6750). The token is
  compared in constant time (tokens.py) and never logged. An accepted token's identity (a
  namespace, or the shared one) becomes the request's Starlette user (`scope["user"]`, as
  Starlette's AuthenticationMiddleware sets it), which the SDK's context builder turns into
  `ServerCallContext.user`: the owner its task and push config stores scope every task by.
- `BodyLimit`: a body over the limit gets 413, judged from Content-Length when there is one,
  otherwise by reading at most the limit.

Refusals are errors in the shape of the binding the path belongs to: on the JSON-RPC URL a
JSON-RPC 2.0 error response (`id` null: the body was never read), elsewhere the HTTP+JSON
binding's google.rpc.Status-like `{"error": {"code", "status", "message"}}`. The HTTP status
(401, 413) and the `WWW-Authenticate` challenge are the same on both.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from typing import Any

from a2a.server.jsonrpc_models import JSONRPCError
from a2a.server.request_handlers import build_error_response
from a2a.utils.errors import InvalidRequestError
from starlette.authentication import AuthCredentials, SimpleUser

from aistack.agents.tokens import TOKEN_ENV, TOKEN_FILE_ENV, TOKENS_DIR_ENV, AgentTokens

log = logging.getLogger("aistack.agents.security")

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]

# A2A names no JSON-RPC code for a refused credential (it leaves that to HTTP: 401 and the
# challenge); -32000 is the JSON-RPC 2.0 range for server-defined errors, outside the codes
# A2A gives a meaning (-32001 to -32009).
UNAUTHENTICATED_CODE = -32000


def _jsonrpc_body(status: int, message: str) -> dict[str, Any]:
    """A JSON-RPC error response: a refused credential gets UNAUTHENTICATED_CODE; a body refused
    unread (too large, a bad Content-Length) is an Invalid Request, as the SDK answers its own
    payload limit."""
    error = JSONRPCError(code=UNAUTHENTICATED_CODE, message=message) if status == 401 else InvalidRequestError(message=message)
    return build_error_response(None, error)


async def _error(
    send: Callable[..., Any], scope: Scope, jsonrpc_paths: frozenset[str], status: int, reason: str, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    if scope["path"] in jsonrpc_paths:
        payload = _jsonrpc_body(status, message)
    else:
        payload = {"error": {"code": status, "status": reason, "message": message}}
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class BearerAuth:
    def __init__(
        self, app: ASGIApp, tokens: AgentTokens, open_paths: Collection[str], jsonrpc_paths: Collection[str] = (), on_reject: Callable[[str], None] | None = None
    ):
        self.app = app
        self.tokens = tokens
        self.open_paths = frozenset(open_paths)
        self.jsonrpc_paths = frozenset(jsonrpc_paths)
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        scheme, _, presented = (_header(scope, b"authorization") or "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            await self._reject(send, scope, 'Bearer realm="aistack"', "this agent requires Authorization: Bearer <token>")
            return
        identity = self.tokens.identify(presented)
        if identity is None:
            await self._reject(
                send,
                scope,
                'Bearer realm="aistack", error="invalid_token"',
                f"the bearer token is not valid for this agent (see {TOKENS_DIR_ENV}, {TOKEN_FILE_ENV} / {TOKEN_ENV})",
            )
            return
        await self.app({**scope, "user": SimpleUser(identity), "auth": AuthCredentials(["authenticated"])}, receive, send)

    async def _reject(self, send: Any, scope: Scope, challenge: str, message: str) -> None:
        if self.on_reject is not None:
            self.on_reject("unauthorized")
        await _error(send, scope, self.jsonrpc_paths, 401, "UNAUTHENTICATED", message, ((b"www-authenticate", challenge.encode()),))


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, jsonrpc_paths: Collection[str] = (), on_reject: Callable[[str], None] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.jsonrpc_paths = frozenset(jsonrpc_paths)
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                await _error(send, scope, self.jsonrpc_paths, 400, "INVALID_ARGUMENT", "invalid Content-Length")
                return
            if size > self.max_bytes:
                await self._too_large(send, scope, f"{size} bytes")
                return
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read up to the limit, then replay the body to the app.
        chunks, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await self._too_large(send, scope, f"more than {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Any, scope: Scope, size: str) -> None:
        if self.on_reject is not None:
            self.on_reject("too_large")
        await _error(
            send,
            scope,
            self.jsonrpc_paths,
            413,
            "RESOURCE_EXHAUSTED",
            f"the request body is {size}; this agent accepts at most {self.max_bytes} bytes (AISTACK_AGENT_MAX_BODY)",
        )
