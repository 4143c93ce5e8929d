"""HTTP surface: URL routing, content negotiation and query parsing.

Translates kube-apiserver URLs (``/api/v1/namespaces/ns/pods/name/log``,
``/apis/group/version/plural``...) into calls on ``API``, ``PodRuntime`` and
the watch/discovery/OpenAPI builders, and renders every ``APIError`` as a
``kind: Status`` body with the matching HTTP code.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web
from multidict import CIMultiDict

from . import discovery, openapi, protobuf, tables
from .api import API, Result, WriteOptions
from .errors import APIError, bad_request, method_not_allowed, resource_not_found, unsupported_media_type
from .pods import LogQuery, PodRuntime
from .resources import Registry, ResourceType
from .store import Store
from .watch import WatchQuery, serve_watch

log = logging.getLogger(__name__)
_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass(frozen=True)
class Route:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


class KubeApp:
    def __init__(
        self,
        api: API,
        pods: PodRuntime,
        server_address: Callable[[], str],
        bookmark_interval: float,
    ) -> None:
        self.api = api
        self.pods = pods
        self.store: Store = api.store
        self.registry: Registry = api.registry
        self.server_address = server_address
        self.bookmark_interval = bookmark_interval
        self.requests: collections.deque[tuple[str, str]] = collections.deque(maxlen=5000)
        # (method, path?query, status) of every request answered (a watch: when its stream ends).
        self.responses: collections.deque[tuple[str, str, int]] = collections.deque(maxlen=5000)

    def build(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        try:
            response = await self._dispatch(request)
        except APIError as exc:
            response = _json(exc.status(), exc.code)
        except Exception as exc:  # a bug in the fixture must still reach the client as a Status
            log.exception("kubeapi: internal error on %s %s", request.method, request.path_qs)
            status = APIError(500, "InternalError", f"Internal error occurred: {exc!r}").status()
            response = _json(status, 500)
        self.responses.append((request.method, request.path_qs, response.status))
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        accept = request.headers.get("Accept", "")
        if path == "/version":
            return _json(discovery.version_info())
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/api":
            if discovery.wants_aggregated(accept):
                return _json(discovery.aggregated(self.registry, core=True), content_type=discovery.AGGREGATED_MEDIA)
            return _json(discovery.core_versions(self.server_address()))
        if path == "/apis":
            if discovery.wants_aggregated(accept):
                return _json(discovery.aggregated(self.registry, core=False), content_type=discovery.AGGREGATED_MEDIA)
            return _json(discovery.group_list(self.registry))
        if path == "/openapi/v3":
            return _json(openapi.root(self.registry))
        if path.startswith("/openapi/v3/"):
            return self._openapi(path[len("/openapi/v3/") :])
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) == 2:
            doc = discovery.group(self.registry, parts[1])
            if doc is None:
                raise resource_not_found()
            return _json(doc)
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise resource_not_found()
        if not rest:
            listing = discovery.resource_list(self.registry, group, version)
            if listing is None:
                raise resource_not_found()
            return _json(listing)
        route = self._route(group, version, rest)
        return await self._serve(request, route)

    def _openapi(self, key: str) -> web.Response:
        parts = key.split("/")
        if parts[0] == "api" and len(parts) == 2:
            doc = openapi.document(self.registry, "", parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = openapi.document(self.registry, parts[1], parts[2])
        else:
            doc = None
        if doc is None:
            raise resource_not_found()
        return _json(doc, headers={"Cache-Control": "public, immutable", "Etag": f'"{openapi.digest(doc)}"'})

    def _route(self, group: str, version: str, rest: list[str]) -> Route:
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise resource_not_found()
        rt = self.registry.lookup(group, version, rest[0])
        if rt is None:
            raise resource_not_found()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if namespace is not None and not rt.namespaced:
            raise resource_not_found()
        if rt.namespaced and namespace is None and name is not None:
            raise resource_not_found()
        if subresource is not None and subresource not in rt.subresources:
            raise resource_not_found()
        return Route(rt, namespace, name, subresource)

    async def _serve(self, request: web.Request, route: Route) -> web.StreamResponse:
        rt, namespace, name, sub = route.rt, route.namespace, route.name, route.subresource
        query = request.query
        method = request.method
        if name is None:
            if method == "GET":
                if _flag(query.get("watch")):
                    watch_query = self._watch_query(route, query, request.headers.get("Accept", ""))
                    return await serve_watch(request, self.store, rt, watch_query, self.bookmark_interval)
                return self._list(request, route)
            if method == "POST" and (namespace is not None or not rt.namespaced):
                body = await _body(request)
                return self._result(self.api.create(rt, namespace or "", body, _write_options(query)))
            if method == "DELETE":
                options = await _delete_options(request)
                return _json(
                    self.api.delete_collection(
                        rt,
                        namespace,
                        query.get("labelSelector"),
                        query.get("fieldSelector"),
                        options,
                        _dry_run(query),
                    )
                )
            raise method_not_allowed(method, rt.group, rt.plural)
        ns = namespace or ""
        if sub == "log":
            if method != "GET":
                raise method_not_allowed(method, rt.group, rt.plural)
            return await self._log(request, ns, name)
        if method == "GET":
            obj = self.api.get(rt, ns, name)
            return self._render(request, rt, [obj], single=True)
        if method == "PUT":
            body = await _body(request)
            return self._result(self.api.update(rt, ns, name, body, _write_options(query), sub))
        if method == "PATCH":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            raw = await request.read()
            return self._result(self.api.patch(rt, ns, name, content_type, raw, _write_options(query), sub))
        if method == "DELETE" and sub is None:
            options = await _delete_options(request)
            return self._result(self.api.delete(rt, ns, name, options, _dry_run(query)))
        raise method_not_allowed(method, rt.group, rt.plural)

    def _list(self, request: web.Request, route: Route) -> web.Response:
        query = request.query
        limit = _int(query, "limit") or 0
        listed = self.api.list_objects(
            route.rt,
            route.namespace,
            query.get("labelSelector"),
            query.get("fieldSelector"),
            limit,
            query.get("continue", ""),
        )
        accept = request.headers.get("Accept", "")
        if tables.wants(accept, "Table"):
            table = tables.to_table(route.rt, listed.items, query.get("includeObject", "Metadata"), listed.resource_version)
            if listed.continue_token:
                table["metadata"]["continue"] = listed.continue_token
            return _json(table)
        meta: dict[str, Any] = {"resourceVersion": listed.resource_version}
        if listed.continue_token:
            meta["continue"] = listed.continue_token
        if tables.wants(accept, "PartialObjectMetadataList"):
            items = [tables.partial_metadata(o) for o in listed.items]
            return _json({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items})
        return _json({"kind": route.rt.list_kind, "apiVersion": route.rt.api_version, "metadata": meta, "items": listed.items})

    def _render(self, request: web.Request, rt: ResourceType, objects: list[dict[str, Any]], single: bool) -> web.Response:
        accept = request.headers.get("Accept", "")
        if tables.wants(accept, "Table"):
            include = request.query.get("includeObject", "Metadata")
            return _json(tables.to_table(rt, objects, include, objects[0]["metadata"].get("resourceVersion", "")))
        if tables.wants(accept, "PartialObjectMetadata"):
            return _json(tables.partial_metadata(objects[0]))
        return _json(objects[0])

    def _result(self, result: Result) -> web.Response:
        headers: CIMultiDict[str] = CIMultiDict()
        for warning in result.warnings:
            headers.add("Warning", f'299 - "{_escape(warning)}"')
        return _json(result.obj, result.code, headers=headers)

    def _watch_query(self, route: Route, query: Any, accept: str) -> WatchQuery:
        return WatchQuery(
            namespace=route.namespace,
            label_selector=query.get("labelSelector"),
            field_selector=query.get("fieldSelector"),
            resource_version=query.get("resourceVersion"),
            timeout_seconds=_int(query, "timeoutSeconds"),
            bookmarks=_flag(query.get("allowWatchBookmarks")),
            send_initial_events=_flag(query.get("sendInitialEvents")),
            as_table=tables.wants(accept, "Table"),
            include_object=query.get("includeObject", "Metadata"),
        )

    async def _log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        query = request.query
        options = LogQuery(
            container=query.get("container") or None,
            follow=_flag(query.get("follow")),
            timestamps=_flag(query.get("timestamps")),
            tail_lines=_int(query, "tailLines"),
            since_seconds=_int(query, "sinceSeconds"),
            since_time=query.get("sinceTime"),
            limit_bytes=_int(query, "limitBytes"),
        )
        chunks = self.pods.open_log(namespace, name, options)
        if not options.follow:
            body = b"".join([chunk async for chunk in chunks])
            return web.Response(body=body, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response


def _json(body: Any, status: int = 200, headers: Any = None, content_type: str = "application/json") -> web.Response:
    response = web.Response(body=json.dumps(body).encode(), status=status, headers=headers)
    response.headers["Content-Type"] = content_type
    return response


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _flag(value: str | None) -> bool:
    return value in _TRUE


def _int(query: Any, key: str) -> int | None:
    value = query.get(key)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"invalid value for {key}: {value!r}") from None


def _dry_run(query: Any) -> bool:
    values = query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


def _write_options(query: Any) -> WriteOptions:
    validation = query.get("fieldValidation") or "Warn"
    if validation not in ("Strict", "Warn", "Ignore"):
        raise bad_request(f"invalid fieldValidation directive: {validation}")
    return WriteOptions(
        dry_run=_dry_run(query),
        field_validation=validation,
        field_manager=query.get("fieldManager", ""),
        force=_flag(query.get("force")),
    )


async def _body(request: web.Request) -> Any:
    content_type = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
    raw = await request.read()
    if content_type in ("application/json", ""):
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise bad_request(f"error decoding request body: {exc}") from None
    if content_type in ("application/yaml", "application/x-yaml", "text/yaml"):
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise bad_request(f"error decoding YAML request body: {exc}") from None
    if content_type == protobuf.MEDIA_TYPE:
        return protobuf.decode(raw)
    raise unsupported_media_type(content_type, ["application/json", "application/yaml"])


async def _delete_options(request: web.Request) -> dict[str, Any]:
    """DeleteOptions from the body, with the query-parameter forms clients also use."""
    body = await _body(request) if request.can_read_body else {}
    options = body if isinstance(body, dict) else {}
    if "propagationPolicy" in request.query:
        options.setdefault("propagationPolicy", request.query["propagationPolicy"])
    return options
