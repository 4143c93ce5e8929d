"""The agent's HTTP edge: bearer authentication and the request body limit, as ASGI middleware.

Both run before any A2A parsing, so an unauthenticated or oversized request costs nothing and
never reaches the SDK. They are plain ASGI (not Starlette's BaseHTTPMiddleware), which keeps
SSE streams untouched and adds microseconds, not milliseconds, per request.

- `BearerAuth`: when the card declares bearer authentication, every path except the open ones
  (the agent cards, /healthz, /readyz, /metrics) needs `Authorization: Bearer <token>`; a
  missing or wrong token gets 401 with `WWW-Authenticate: Bearer` (RFC 6750). The token is
  compared in constant time (tokens.py) and never logged.
- `BodyLimit`: a body over the limit gets 413, judged from Content-Length when there is one,
  otherwise by reading at most the limit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from typing import Any

from aistack.agents.tokens import TokenSource

log = logging.getLogger("aistack.agents.security")

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]


async def _error(send: Callable[..., Any], status: int, reason: str, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": {"code": status, "status": reason, "message": message}}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class BearerAuth:
    def __init__(self, app: ASGIApp, tokens: TokenSource, open_paths: Collection[str], on_reject: Callable[[str], None] | None = None):
        self.app = app
        self.tokens = tokens
        self.open_paths = frozenset(open_paths)
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        scheme, _, presented = (_header(scope, b"authorization") or "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            await self._reject(send, 'Bearer realm="aistack"', "this agent requires Authorization: Bearer <token>")
            return
        if not self.tokens.matches(presented):
            await self._reject(
                send, 'Bearer realm="aistack", error="invalid_token"',
                "the bearer token is not valid for this agent (see AISTACK_AGENT_TOKEN_FILE / AISTACK_AGENT_TOKEN)",
            )
            return
        await self.app(scope, receive, send)

    async def _reject(self, send: Any, challenge: str, message: str) -> None:
        if self.on_reject is not None:
            self.on_reject("unauthorized")
        await _error(send, 401, "UNAUTHENTICATED", message, [(b"www-authenticate", challenge.encode())])


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, on_reject: Callable[[str], None] | None = None):
        self.app = app
        self.max_bytes = max_bytes
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
                await _error(send, 400, "INVALID_ARGUMENT", "invalid Content-Length")
                return
            if size > self.max_bytes:
                await self._too_large(send, f"{size} bytes")
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
                await self._too_large(send, f"more than {self.max_bytes} bytes")
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

    async def _too_large(self, send: Any, size: str) -> None:
        if self.on_reject is not None:
            self.on_reject("too_large")
        await _error(
            send, 413, "RESOURCE_EXHAUSTED",
            f"the request body is {size}; this agent accepts at most {self.max_bytes} bytes (AISTACK_AGENT_MAX_BODY)",
        )
