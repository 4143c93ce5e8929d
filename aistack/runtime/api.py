"""The Ollama REST API, served by Starlette over the embedded runtime.

Request and response shapes are those the official `ollama` client (0.6.x) sends and parses:
NDJSON streams (`application/x-ndjson`, one JSON object per line) when `stream` is true or
absent, one JSON object otherwise; the last object of a chat/generate carries `done`,
`done_reason` and Ollama's counters and durations (nanoseconds). Failures are
`{"error": "..."}` with Ollama's status codes (400 bad request, 404 unknown model, 500
otherwise), raised before the first byte is sent, so the client's ResponseError carries both.
A request body over AISTACK_RUNTIME_MAX_BODY is refused with 413 (bodylimit.py). Nothing that
can take long runs on the event loop: parsing a template and checking its fields run in a thread,
rendering and the model on the engine's thread, so one request never stalls the others.

Served: GET|HEAD /, GET /api/version, POST /api/create, /api/chat, /api/generate, /api/show,
/api/pull (bundled base models only), /api/copy, /api/embed, /api/embeddings, GET /api/tags,
/api/ps, DELETE /api/delete. Refused with a clear message: tools, thinking, images, suffix,
`files`/`adapters`/`quantize` in create, push and blob uploads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from aistack.runtime import basemodels, formats, jobs, prompt, quotes
from aistack.runtime.basemodels import BUNDLED, bundled_model
from aistack.runtime.bodylimit import BodyLimit
from aistack.runtime.catalog import Catalog, CreateRequest
from aistack.runtime.config import RuntimeConfig
from aistack.runtime.engine import Engine
from aistack.runtime.errors import ApiError, model_not_found
from aistack.runtime.names import InvalidName, normalize
from aistack.runtime.options import InvalidOption, Sampling, effective
from aistack.runtime.store import ModelRecord, ModelStore

log = logging.getLogger("aistack.runtime")

# The Ollama API level this runtime mimics, marked so clients (and endpoint.py) can tell it apart.
VERSION = "0.12.0-aistack"
NDJSON = "application/x-ndjson"


@dataclass
class Runtime:
    """What the routes share: the catalog (store + base models) and the engine."""

    catalog: Catalog
    engine: Engine

    @classmethod
    def from_config(cls, config: RuntimeConfig) -> Runtime:
        store = ModelStore(config.store_path())
        return cls(
            catalog=Catalog(store, config.substitution_map()),
            engine=Engine(n_threads=config.n_threads, n_ctx=config.n_ctx, default_keep_alive=config.keep_alive, num_parallel=config.parallel_slots()),
        )


def create_app(config: RuntimeConfig | None = None, runtime: Runtime | None = None) -> Starlette:
    config = config or RuntimeConfig()
    runtime = runtime or Runtime.from_config(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info(
            "embedded Ollama runtime: store %s, base model substitutions %s",
            runtime.catalog.store.root,
            ", ".join(f"{k}={v}" for k, v in runtime.catalog.substitutions.items()) or "none",
        )
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(runtime.engine.close)

    def route(path: str, handler: Callable[..., Any], methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(runtime, request)
            except ApiError as e:
                return JSONResponse(e.body(), status_code=e.status)
            except Exception as e:  # Ollama answers 500 with the message; the server keeps running
                log.exception("%s %s failed", request.method, path)
                return JSONResponse({"error": f"{type(e).__name__}: {e}"}, status_code=500)

        return Route(path, endpoint, methods=methods)

    routes = [
        route("/", _root, ["GET", "HEAD"]),
        route("/api/version", _version, ["GET", "HEAD"]),
        route("/api/create", _create, ["POST"]),
        route("/api/chat", _chat, ["POST"]),
        route("/api/generate", _generate, ["POST"]),
        route("/api/show", _show, ["POST"]),
        route("/api/tags", _tags, ["GET", "HEAD"]),
        route("/api/ps", _ps, ["GET"]),
        route("/api/delete", _delete, ["DELETE"]),
        route("/api/pull", _pull, ["POST"]),
        route("/api/copy", _copy, ["POST"]),
        route("/api/embed", _embed, ["POST"]),
        route("/api/embeddings", _embeddings, ["POST"]),
        route("/api/push", _unsupported("push: the embedded runtime has no registry to push to"), ["POST"]),
        route(
            "/api/blobs/{digest}",
            _unsupported("blob uploads are not supported by the embedded runtime: create from a .gguf path"),
            ["POST", "HEAD"],
        ),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(BodyLimit, max_bytes=config.max_body_bytes())])
    app.state.runtime = runtime
    return app


# -- helpers -------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "missing request body")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ApiError(400, f"invalid JSON in request body: {e}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def _model_field(body: Mapping[str, Any]) -> str:
    name = body.get("model") or body.get("name") or ""
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "model is required")
    return name.strip()


def _line(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


class NDJSONResponse(StreamingResponse):
    """A StreamingResponse that always closes its iterator, so cleanup (cancel) runs at once."""

    media_type = NDJSON

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


def _stream_lines(lines: list[dict[str, Any]]) -> NDJSONResponse:
    async def body() -> AsyncIterator[bytes]:
        for line in lines:
            yield _line(line)

    return NDJSONResponse(body())


def _stream_flag(body: Mapping[str, Any]) -> bool:
    value = body.get("stream", True)
    return True if value is None else bool(value)


async def _in_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _unsupported(message: str) -> Callable[..., Any]:
    async def handler(runtime: Runtime, request: Request) -> Response:
        raise ApiError(400, message)

    return handler


def _sampling(record: ModelRecord, body: Mapping[str, Any]) -> Sampling:
    options = body.get("options")
    if options is not None and not isinstance(options, Mapping):
        raise ApiError(400, "options must be an object")
    try:
        values = effective(record.spec.parameters, options)
    except InvalidOption as e:
        raise ApiError(400, str(e)) from None
    cap = basemodels.temperature_cap(record.spec.base, record.spec.substituted_from)
    if cap is not None and values["temperature"] > cap:
        values["temperature"] = cap  # a small substitute for a big model (see basemodels.BundledModel)
    return Sampling.from_options(values)


def _grammar_text(record: ModelRecord, format_: Any, prompt_text: str) -> str | None:
    """The grammar of the request's format; for a small substitute, one whose free JSON strings
    quote the prompt (quotes.py)."""
    text = formats.grammar_text(format_)  # a 400 for an invalid format, whatever the model
    if text is not None and isinstance(format_, Mapping) and basemodels.quotes_prompt(record.spec.base, record.spec.substituted_from):
        return quotes.grammar(dict(format_), prompt_text, formats.schema_grammar) or text
    return text


def _keep_alive(runtime: Runtime, body: Mapping[str, Any]) -> float:
    try:
        return runtime.engine.keep_alive(body.get("keep_alive"))
    except InvalidOption as e:
        raise ApiError(400, str(e)) from None


def _refuse_unsupported(name: str, body: Mapping[str, Any]) -> None:
    if body.get("tools"):
        raise ApiError(400, f'"{name}" does not support tools')
    if body.get("think"):
        raise ApiError(400, f'"{name}" does not support thinking')
    if body.get("images"):
        raise ApiError(400, f'"{name}" does not support images')


# -- simple endpoints ------------------------------------------------------------------------------


async def _root(runtime: Runtime, request: Request) -> Response:
    return PlainTextResponse("Ollama is running")


async def _version(runtime: Runtime, request: Request) -> Response:
    return JSONResponse({"version": VERSION})


async def _tags(runtime: Runtime, request: Request) -> Response:
    def listing() -> list[dict[str, Any]]:
        return [runtime.catalog.summary(record) for record in runtime.catalog.list()]

    return JSONResponse({"models": await _in_thread(listing)})


async def _show(runtime: Runtime, request: Request) -> Response:
    name = _model_field(await _body(request))

    def show() -> dict[str, Any]:
        return runtime.catalog.show(runtime.catalog.require(name))

    return JSONResponse(await _in_thread(show))


async def _ps(runtime: Runtime, request: Request) -> Response:
    def listing() -> list[dict[str, Any]]:
        rows = []
        for loaded in runtime.engine.loaded():
            record = runtime.catalog.find(loaded.name)
            row: dict[str, Any] = {
                "name": loaded.name,
                "model": loaded.name,
                "size": loaded.size,
                "digest": loaded.digest.removeprefix("sha256:"),
                "size_vram": 0,
                "context_length": loaded.context_length,
            }
            if record is not None:
                row["details"] = runtime.catalog.details(record)
            if loaded.expires_at is not None:
                row["expires_at"] = loaded.expires_at.isoformat().replace("+00:00", "Z")
            rows.append(row)
        return rows

    return JSONResponse({"models": await _in_thread(listing)})


async def _create(runtime: Runtime, request: Request) -> Response:
    body = await _body(request)
    name = _model_field(body)
    for unsupported in ("files", "adapters"):
        if body.get(unsupported):
            raise ApiError(400, f"{unsupported} are not supported by the embedded runtime: use `from` with a model name or a .gguf path")
    if body.get("quantize"):
        raise ApiError(400, "quantize is not supported by the embedded runtime")
    if body.get("modelfile"):
        raise ApiError(
            400,
            "the `modelfile` field is not supported: send from/system/template/parameters/messages (`aistack ollama create NAME -f Modelfile` does that for you)",
        )
    for text_field in ("from", "system", "template"):
        if body.get(text_field) is not None and not isinstance(body[text_field], str):
            raise ApiError(400, f"{text_field} must be a string")
    if body.get("parameters") is not None and not isinstance(body["parameters"], Mapping):
        raise ApiError(400, "parameters must be an object")
    if body.get("messages") is not None and not isinstance(body["messages"], list):
        raise ApiError(400, "messages must be a list")
    create = CreateRequest(
        model=name,
        from_=body.get("from"),
        system=body.get("system"),
        template=body.get("template"),
        parameters=body.get("parameters"),
        messages=body.get("messages"),
        license=body.get("license"),
    )
    outcome = await _in_thread(runtime.catalog.create, create)
    if _stream_flag(body):
        return _stream_lines([{"status": status} for status in outcome.statuses])
    return JSONResponse({"status": "success"})


async def _delete(runtime: Runtime, request: Request) -> Response:
    name = _model_field(await _body(request))

    def delete() -> None:
        try:
            deleted = runtime.catalog.store.delete(name)
        except InvalidName as e:
            raise ApiError(400, str(e)) from None
        if deleted:
            runtime.engine.forget(normalize(name))
            return
        bundled = bundled_model(name)
        if bundled is not None:
            raise ApiError(400, f"{bundled.name} is a bundled base model (in the {bundled.distribution} package); it cannot be deleted")
        raise model_not_found(name)

    await _in_thread(delete)
    return Response(status_code=200)


async def _copy(runtime: Runtime, request: Request) -> Response:
    body = await _body(request)
    source, destination = body.get("source"), body.get("destination")
    if not isinstance(source, str) or not source or not isinstance(destination, str) or not destination:
        raise ApiError(400, "source and destination are required")

    def copy() -> None:
        try:
            if runtime.catalog.store.copy(source, destination):
                return
        except InvalidName as e:
            raise ApiError(400, str(e)) from None
        if bundled_model(source) is not None:
            runtime.catalog.create(CreateRequest(model=destination, from_=source))
            return
        raise model_not_found(source)

    await _in_thread(copy)
    return Response(status_code=200)


async def _pull(runtime: Runtime, request: Request) -> Response:
    body = await _body(request)
    name = _model_field(body)
    bundled = bundled_model(name)
    path = bundled.path() if bundled else None
    if bundled is None or path is None:
        available = ", ".join(f"{m.name} ({', '.join(m.aliases)})" for m in BUNDLED if m.path() is not None)
        raise ApiError(
            404,
            f'pull model manifest: "{name}" is not available offline: the embedded runtime can only pull its bundled base models: {available or "none installed"}',
        )

    def verify() -> str:  # really re-reads the file: pull is how a user checks the bundled weights
        from aistack.runtime.gguf import file_digest

        return file_digest(path)

    digest = await _in_thread(verify)
    size = path.stat().st_size
    lines = [
        {"status": "pulling manifest"},
        {"status": f"pulling {digest.removeprefix('sha256:')[:12]}", "digest": digest, "total": size, "completed": size},
        {"status": "verifying sha256 digest"},
        {"status": "success"},
    ]
    if _stream_flag(body):
        return _stream_lines(lines)
    return JSONResponse({"status": "success"})


# -- generation ------------------------------------------------------------------------------------


async def _chat(runtime: Runtime, request: Request) -> Response:
    body = await _body(request)
    name = _model_field(body)
    record = await _in_thread(runtime.catalog.require, name)
    _refuse_unsupported(record.name, body)
    messages = _chat_messages(body.get("messages"))
    last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    grammar_text = _grammar_text(record, body.get("format"), last_user)
    sampling = _sampling(record, body)
    keep_alive = _keep_alive(runtime, body)
    if not messages:
        return await _load_or_unload(runtime, request, record, keep_alive, "chat")
    conversation = prompt.chat_messages(record.spec.system, record.spec.messages, messages)
    render = await _in_thread(
        jobs.renderer,
        conversation,
        record.spec.template,  # parses the template
        in_chat=record.spec.substituted_from is not None,
    )
    work = jobs.generation_work(render, sampling, grammar_text)
    return await _respond(runtime, request, record, work, keep_alive, "chat", _stream_flag(body))


async def _generate(runtime: Runtime, request: Request) -> Response:
    body = await _body(request)
    name = _model_field(body)
    record = await _in_thread(runtime.catalog.require, name)
    _refuse_unsupported(record.name, body)
    if body.get("suffix"):
        raise ApiError(400, f'"{record.name}" does not support insert')
    text = body.get("prompt") or ""
    if not isinstance(text, str):
        raise ApiError(400, "prompt must be a string")
    context = body.get("context")
    if context is not None and (not isinstance(context, list) or not all(isinstance(t, int) for t in context)):
        raise ApiError(400, "context must be a list of token ids")
    grammar_text = _grammar_text(record, body.get("format"), text)
    sampling = _sampling(record, body)
    keep_alive = _keep_alive(runtime, body)
    if not text and not context:
        return await _load_or_unload(runtime, request, record, keep_alive, "generate")
    if body.get("raw"):
        render = jobs.raw_renderer(text, context)
    else:
        system = body.get("system") or record.spec.system
        messages = prompt.generate_messages(system, record.spec.messages, text, with_examples=not context)
        template_source = body.get("template") or record.spec.template
        in_chat = record.spec.substituted_from is not None and not body.get("template")

        def prepare() -> jobs.Render:
            if body.get("template"):
                prompt.check_template_fields(jobs.template(body["template"]))
            return jobs.renderer(messages, template_source, context, in_chat=in_chat)

        render = await _in_thread(prepare)
    work = jobs.generation_work(render, sampling, grammar_text)
    return await _respond(runtime, request, record, work, keep_alive, "generate", _stream_flag(body))


def _chat_messages(raw: Any) -> list[prompt.Message]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ApiError(400, "messages must be a list")
    messages = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ApiError(400, f"messages[{index}] must be an object")
        role, content = item.get("role"), item.get("content") or ""
        if role not in ("system", "user", "assistant", "tool"):
            raise ApiError(400, f"messages[{index}]: invalid role {role!r}")
        if not isinstance(content, str):
            raise ApiError(400, f"messages[{index}]: content must be a string")
        if item.get("images"):
            raise ApiError(400, "this model does not support images")
        messages.append(prompt.Message(role, content))
    return messages


async def _load_or_unload(runtime: Runtime, request: Request, record: ModelRecord, keep_alive: float, kind: str) -> Response:
    """Ollama's empty request: load the model (done_reason "load"), or unload it when keep_alive is 0."""
    path = await _in_thread(runtime.catalog.base_path, record)
    if keep_alive == 0:
        await runtime.engine.unload(path)
        reason = "unload"
    else:
        async with contextlib.aclosing(runtime.engine.run(path, jobs.load_work, keep_alive=keep_alive, model=(record.name, record.digest))) as events:
            async for _ in events:
                pass
        reason = "load"
    body: dict[str, Any] = {"model": record.name, "created_at": _now(), "done": True, "done_reason": reason}
    if kind == "chat":
        body["message"] = {"role": "assistant", "content": ""}
    else:
        body["response"] = ""
    return JSONResponse(body)


async def _respond(
    runtime: Runtime,
    request: Request,
    record: ModelRecord,
    work: Callable[[Any, int, Any], Iterator[Any]],
    keep_alive: float,
    kind: str,
    stream: bool,
) -> Response:
    started = time.perf_counter_ns()
    path = await _in_thread(runtime.catalog.base_path, record)
    events = runtime.engine.run(path, work, keep_alive=keep_alive, model=(record.name, record.digest))

    def piece(text: str) -> dict[str, Any]:
        line: dict[str, Any] = {"model": record.name, "created_at": _now()}
        if kind == "chat":
            line["message"] = {"role": "assistant", "content": text}
        else:
            line["response"] = text
        line["done"] = False
        return line

    def final(finished: jobs.Finished, load_ns: int, text: str) -> dict[str, Any]:
        line = piece(text)
        line.update(
            done=True,
            done_reason=finished.done_reason,
            total_duration=time.perf_counter_ns() - started,
            load_duration=load_ns,
            prompt_eval_count=finished.prompt_eval_count,
            prompt_eval_duration=finished.prompt_eval_duration,
            eval_count=finished.eval_count,
            eval_duration=finished.eval_duration,
        )
        if kind == "generate":
            line["context"] = finished.context
        return line

    # Wait for the prompt to be ready (model loaded, template rendered) while watching the client:
    # errors up to here still become a proper status code.
    watcher = asyncio.ensure_future(_wait_disconnect(request))
    try:
        first = asyncio.ensure_future(events.__anext__())
        done, _ = await asyncio.wait({first, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if first not in done:
            first.cancel()
            with contextlib.suppress(BaseException):
                await first
            await events.aclose()
            return Response(status_code=499)
        try:
            ready = first.result()
        except BaseException:
            await events.aclose()
            raise
        if not stream:
            text: list[str] = []
            collect = asyncio.ensure_future(_collect(events, text))
            done, _ = await asyncio.wait({collect, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if collect not in done:
                collect.cancel()
                with contextlib.suppress(BaseException):
                    await collect
                return Response(status_code=499)
            finished = collect.result()
            return JSONResponse(final(finished, ready.load_duration, "".join(text)))
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher

    async def lines() -> AsyncIterator[bytes]:
        try:
            async for event in events:
                if isinstance(event, jobs.Piece):
                    yield _line(piece(event.text))
                elif isinstance(event, jobs.Finished):
                    yield _line(final(event, ready.load_duration, ""))
        except ApiError as e:
            yield _line(e.body())
        except Exception as e:
            log.exception("generation failed")
            yield _line({"error": f"{type(e).__name__}: {e}"})
        finally:
            await events.aclose()

    return NDJSONResponse(lines())


async def _collect(events: AsyncGenerator[Any, None], text: list[str]) -> jobs.Finished:
    finished = None
    try:
        async for event in events:
            if isinstance(event, jobs.Piece):
                text.append(event.text)
            elif isinstance(event, jobs.Finished):
                finished = event
    finally:
        await events.aclose()
    if finished is None:
        raise ApiError(500, "generation ended without a result")
    return finished


# -- embeddings ----------------------------------------------------------------------------------


async def _embed(runtime: Runtime, request: Request) -> Response:
    body = await _body(request)
    name = _model_field(body)
    record = await _in_thread(runtime.catalog.require, name)
    raw = body.get("input", [])
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise ApiError(400, "input must be a string or a list of strings")
    truncate = body.get("truncate", True) is not False
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or dimensions <= 0):
        raise ApiError(400, "dimensions must be a positive integer")
    keep_alive = _keep_alive(runtime, body)
    started = time.perf_counter_ns()
    vectors, count, load_ns = await _embeddings_of(runtime, record, inputs, truncate, keep_alive)
    result = []
    for vector in vectors:
        vector = vector[:dimensions] if dimensions else vector
        result.append(_normalized(vector))
    return JSONResponse(
        {
            "model": record.name,
            "embeddings": result,
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": load_ns,
            "prompt_eval_count": count,
        }
    )


async def _embeddings(runtime: Runtime, request: Request) -> Response:
    """The deprecated single-prompt endpoint: one vector, not normalized (as in Ollama)."""
    body = await _body(request)
    record = await _in_thread(runtime.catalog.require, _model_field(body))
    text = body.get("prompt") or ""
    if not isinstance(text, str):
        raise ApiError(400, "prompt must be a string")
    if not text:
        return JSONResponse({"embedding": []})
    vectors, _, _ = await _embeddings_of(runtime, record, [text], True, _keep_alive(runtime, body))
    return JSONResponse({"embedding": vectors[0]})


async def _embeddings_of(runtime: Runtime, record: ModelRecord, inputs: list[str], truncate: bool, keep_alive: float) -> tuple[list[list[float]], int, int]:
    if not inputs:
        return [], 0, 0
    path = await _in_thread(runtime.catalog.base_path, record)

    work = jobs.embedding_work(inputs, truncate)
    async with contextlib.aclosing(runtime.engine.run(path, work, keep_alive=keep_alive, embedding=True)) as events:
        async for result in events:
            return result
    raise ApiError(500, "embedding produced no result")


def _normalized(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else list(vector)
