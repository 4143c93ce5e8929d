"""The runtime's request body limit, as ASGI middleware: a body over the limit gets 413 in Ollama's
error shape (`{"error": "..."}`) before any handler sees it.

The limit holds for the bytes that arrive, not for what the client declares: a Content-Length over
the limit is refused at once, unread, and every other body (chunked, or one whose Content-Length
understates it) is counted as it streams in and refused at the first chunk past the limit, so the
runtime never holds more than the limit of one request. The handlers read whole JSON bodies
anyway, so reading the body here costs nothing more; it is handed on as one message, after which
the handler's `receive` is the server's again (a streaming response watches it for the client
going away).

The agents have their own (aistack.a2a.security.BodyLimit): it answers in the A2A bindings'
shapes and takes a declared Content-Length at its word.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aistack.runtime.config import MAX_BODY_ENV

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send, f"{declared} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before its body was complete: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send, f"more than {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send, size: str) -> None:
        message = f"the request body is {size}; the embedded runtime accepts at most {self.max_bytes} bytes (set {MAX_BODY_ENV} to change that)"
        body = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _declared_length(scope: dict[str, Any]) -> int | None:
    """The Content-Length header's value; None when there is none or it is no number (then only
    the counted bytes decide)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
