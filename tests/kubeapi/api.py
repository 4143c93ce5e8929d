"""The REST verbs with the apiserver's semantics, independent of HTTP.

Each method takes already-routed arguments, raises ``APIError`` on failure and
returns what the HTTP layer should send. The order of checks follows the real
request pipeline: decode (unknown fields) -> admission (namespace exists) ->
strategy (defaults, status isolation) -> validation (422) -> storage (404/409).
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import crds, patch, schema, strategy
from .cel import RULES
from .errors import (
    INVALID,
    STALE,
    FieldError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
    unprocessable,
    unsupported_media_type,
)
from .meta import OBJECT_META_FIELDS, generated_name, rfc3339
from .resources import GroupResource, Registry, ResourceType
from .selectors import field_predicate, label_predicate
from .store import Object, Store

NAMESPACES = GroupResource("", "namespaces")
CRDS = GroupResource(crds.CRD_GROUP, "customresourcedefinitions")


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_validation: str = "Warn"  # the server default when a client sends none
    field_manager: str = ""
    force: bool = False


@dataclass
class Result:
    obj: Object
    code: int = 200
    warnings: list[str] = field(default_factory=list)


@dataclass
class ListResult:
    items: list[Object]
    resource_version: str
    continue_token: str = ""


class API:
    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        # Leaf paths each (object uid, field manager) last applied, for server-side apply.
        self._applied: dict[tuple[str, str], set[tuple[str, ...]]] = {}

    # -- reads ----------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> Object:
        obj = self.store.get(rt.resource, namespace if rt.namespaced else "", name)
        if obj is None:
            raise not_found(rt.group, rt.plural, name)
        return present(rt, obj)

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        continue_token: str = "",
    ) -> ListResult:
        matches_labels = label_predicate(label_selector)
        matches_fields = field_predicate(field_selector, rt.kind, rt.selectable_fields)
        items = [present(rt, o) for o in self.store.objects(rt.resource, namespace if rt.namespaced else None) if matches_labels(o) and matches_fields(o)]
        revision = str(self.store.revision)
        if continue_token:
            start = _decode_continue(continue_token)
            revision = start["rv"]
            items = [o for o in items if _list_key(o) > tuple(start["after"])]
        next_token = ""
        if limit and len(items) > limit:
            items = items[:limit]
            next_token = _encode_continue(revision, _list_key(items[-1]))
        return ListResult(items, revision, next_token)

    # -- create ---------------------------------------------------------------

    def create(self, rt: ResourceType, namespace: str, body: Any, opts: WriteOptions) -> Result:
        obj = self._decode(rt, body)
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        warnings = self._admit_fields(rt, obj, opts)
        if rt.namespaced:
            self._require_namespace(namespace)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self._unique_name(rt, namespace, meta["generateName"])
        strategy.prepare_create(rt, obj)
        self._validate(rt, obj, None)
        if self.store.get(rt.resource, meta.get("namespace", ""), meta["name"]) is not None:
            raise already_exists(rt.group, rt.plural, meta["name"])
        if opts.dry_run:
            return Result(present(rt, obj), 201, warnings)
        stored = self.store.write(rt.resource, obj)
        self._after_write(rt, stored)
        return Result(present(rt, stored), 201, warnings)

    # -- update / patch -------------------------------------------------------

    def update(self, rt: ResourceType, namespace: str, name: str, body: Any, opts: WriteOptions, subresource: str | None = None) -> Result:
        old = self._existing(rt, namespace, name)
        obj = self._decode(rt, body)
        self._check_identity(rt, obj, namespace, name)
        wanted = obj["metadata"].get("resourceVersion")
        if not wanted and not rt.allow_unconditional_update:
            raise invalid(
                rt.group,
                rt.kind,
                name,
                [FieldError("metadata.resourceVersion", INVALID, 0, "must be specified for an update")],
            )
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise conflict(rt.group, rt.plural, name, STALE)
        return self._write_update(rt, old, obj, opts, subresource)

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        raw: bytes,
        opts: WriteOptions,
        subresource: str | None = None,
    ) -> Result:
        if content_type in (patch.APPLY_PATCH, patch.APPLY_PATCH_CBOR):
            return self._apply(rt, namespace, name, raw, opts, subresource)
        accepted = [patch.JSON_PATCH, patch.MERGE_PATCH, patch.APPLY_PATCH]
        if not rt.custom:
            accepted.insert(2, patch.STRATEGIC_PATCH)
        if content_type not in accepted:
            raise unsupported_media_type(content_type, accepted)
        old = self._existing(rt, namespace, name)
        document = _parse_json(raw)
        current = present(rt, old)
        if content_type == patch.JSON_PATCH:
            patched = patch.json_patch(current, document)
        elif not isinstance(document, dict):
            raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
        elif content_type == patch.MERGE_PATCH:
            patched = patch.merge_patch(current, document)
        else:
            patched = patch.strategic_merge(current, document)
        if not isinstance(patched, dict):
            raise unprocessable("the server rejected our request due to an error in our request")
        obj = self._decode(rt, patched)
        wanted = obj["metadata"].get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise conflict(rt.group, rt.plural, name, STALE)
        self._check_identity(rt, obj, namespace, name)
        return self._write_update(rt, old, obj, opts, subresource)

    def _apply(self, rt: ResourceType, namespace: str, name: str, raw: bytes, opts: WriteOptions, subresource: str | None) -> Result:
        if not opts.field_manager:
            raise bad_request("PATCH with apply requires a fieldManager parameter")
        try:
            config = yaml.safe_load(raw.decode() or "{}")
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise bad_request(f"error decoding YAML: {exc}") from exc
        if not isinstance(config, dict):
            raise bad_request("invalid object type: expected an object for apply")
        for key, want in (("apiVersion", rt.api_version), ("kind", rt.kind)):
            if config.get(key) != want:
                raise bad_request(f"invalid object type: {config.get('apiVersion')}, Kind={config.get('kind')}")
        config_meta = config.setdefault("metadata", {})
        if config_meta.get("name") != name:
            raise bad_request(f"the name of the object ({config_meta.get('name')}) does not match the name on the URL ({name})")
        old = self.store.get(rt.resource, namespace if rt.namespaced else "", name)
        paths = patch.applied_paths(config)
        if old is None:
            if subresource:
                raise not_found(rt.group, rt.plural, name)
            result = self.create(rt, namespace, config, opts)
        else:
            previous = self._applied.get((old["metadata"]["uid"], opts.field_manager), set())
            merged = patch.server_side_apply(present(rt, old), config, previous)
            result = self._write_update(rt, old, self._decode(rt, merged), opts, subresource)
        if not opts.dry_run:
            self._applied[(result.obj["metadata"]["uid"], opts.field_manager)] = paths
        return result

    def _write_update(self, rt: ResourceType, old: Object, obj: Object, opts: WriteOptions, subresource: str | None) -> Result:
        warnings = self._admit_fields(rt, obj, opts)
        new = strategy.prepare_update(rt, obj, old, subresource)
        self._validate(rt, new, old)
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            if opts.dry_run:
                return Result(present(rt, new), 200, warnings)
            final = self._remove(rt, meta.get("namespace", ""), meta["name"])
            new["metadata"]["resourceVersion"] = final["metadata"]["resourceVersion"]
            return Result(present(rt, new), 200, warnings)
        if _unchanged(new, old) or opts.dry_run:
            return Result(present(rt, new if opts.dry_run else old), 200, warnings)
        stored = self.store.write(rt.resource, new)
        self._after_write(rt, stored)
        return Result(present(rt, stored), 200, warnings)

    # -- delete ---------------------------------------------------------------

    def delete(self, rt: ResourceType, namespace: str, name: str, options: dict[str, Any], dry_run: bool) -> Result:
        old = self._existing(rt, namespace, name)
        preconditions = options.get("preconditions") or {}
        for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            if preconditions.get(key) and preconditions[key] != old["metadata"].get(key):
                raise conflict(
                    rt.group,
                    rt.plural,
                    name,
                    f"Precondition failed: {label} in precondition: {preconditions[key]}, {label} in object meta: {old['metadata'].get(key)}",
                )
        if old["metadata"].get("finalizers"):
            if old["metadata"].get("deletionTimestamp") or dry_run:
                return Result(present(rt, old))
            marked = copy.deepcopy(old)
            marked["metadata"]["deletionTimestamp"] = rfc3339()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            if rt.tracks_generation:
                marked["metadata"]["generation"] = old["metadata"].get("generation", 0) + 1
            return Result(present(rt, self.store.write(rt.resource, marked)))
        if dry_run:
            return Result(present(rt, old))
        orphan = options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents") is True
        final = self._remove(rt, old["metadata"].get("namespace", ""), name, orphan)
        if rt.returns_deleted_object:
            return Result(present(rt, final))
        return Result(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": old["metadata"]["uid"]},
            }
        )

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        options: dict[str, Any],
        dry_run: bool,
    ) -> Object:
        listed = self.list_objects(rt, namespace, label_selector, field_selector)
        deleted = [self.delete(rt, o["metadata"].get("namespace", ""), o["metadata"]["name"], options, dry_run).obj for o in listed.items]
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.store.revision)},
            "items": deleted,
        }

    def _remove(self, rt: ResourceType, namespace: str, name: str, orphan: bool = False) -> Object:
        if rt.resource == NAMESPACES:
            self._empty_namespace(name)
        if rt.resource == CRDS:
            self._drop_custom_resources(name)
        final = self.store.delete(rt.resource, namespace, name)
        assert final is not None
        for key in [k for k in self._applied if k[0] == final["metadata"]["uid"]]:
            del self._applied[key]
        if not orphan:
            self._collect_dependents(final["metadata"]["uid"])
        return final

    def _collect_dependents(self, owner_uid: str) -> None:
        """The garbage collector's background cascade: dependents whose owners are all gone go too."""
        everything = [(r, o) for r in self.store.resources() for o in self.store.objects(r)]
        live = {o["metadata"]["uid"] for _, o in everything}
        for resource, obj in everything:
            owners = {ref.get("uid") for ref in obj["metadata"].get("ownerReferences") or []}
            rt = self.registry.storage_type(resource)
            if owner_uid in owners and not owners & live and rt is not None:
                meta = obj["metadata"]
                if self.store.get(resource, meta.get("namespace", ""), meta["name"]) is not None:
                    self.delete(rt, meta.get("namespace", ""), meta["name"], {}, dry_run=False)

    def _empty_namespace(self, namespace: str) -> None:
        """Namespace deletion removes everything inside at once (no Terminating phase)."""
        for resource in self.store.resources():
            for obj in self.store.objects(resource, namespace):
                self.store.delete(resource, namespace, obj["metadata"]["name"])

    def _drop_custom_resources(self, crd_name: str) -> None:
        types = self.registry.unregister_custom(crd_name)
        for resource in {rt.resource for rt in types}:
            for obj in self.store.objects(resource):
                self.store.delete(resource, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            self.store.close_watches(resource)

    # -- internals ------------------------------------------------------------

    def _after_write(self, rt: ResourceType, stored: Object) -> None:
        if rt.resource == CRDS:
            self.registry.register_custom(stored["metadata"]["name"], crds.served_types(stored))

    def _existing(self, rt: ResourceType, namespace: str, name: str) -> Object:
        obj = self.store.get(rt.resource, namespace if rt.namespaced else "", name)
        if obj is None:
            raise not_found(rt.group, rt.plural, name)
        return obj

    def _require_namespace(self, namespace: str) -> None:
        if self.store.get(NAMESPACES, "", namespace) is None:
            raise not_found("", "namespaces", namespace)

    def _unique_name(self, rt: ResourceType, namespace: str, prefix: str) -> str:
        while True:
            name = generated_name(prefix)
            if self.store.get(rt.resource, namespace if rt.namespaced else "", name) is None:
                return name

    def _decode(self, rt: ResourceType, body: Any) -> Object:
        if not isinstance(body, dict):
            raise bad_request(f"Object '{rt.kind}' is missing in request body")
        obj = copy.deepcopy(body)
        if obj.get("apiVersion") not in (None, rt.api_version) and not (rt.custom and obj.get("apiVersion") in {f"{rt.group}/{v}" for v in rt.served_versions}):
            raise bad_request(f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version ({rt.api_version})")
        if obj.get("kind") not in (None, rt.kind):
            raise bad_request(f"the kind in the data ({obj.get('kind')}) does not match the expected kind ({rt.kind})")
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        return obj

    def _check_identity(self, rt: ResourceType, obj: Object, namespace: str, name: str) -> None:
        meta = obj["metadata"]
        if meta.get("name") != name:
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
        if rt.namespaced and meta.get("namespace", namespace) != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")

    def _admit_fields(self, rt: ResourceType, obj: Object, opts: WriteOptions) -> list[str]:
        """Prune unknown fields (custom resources), honouring fieldValidation, then default."""
        if rt.custom:
            unknown = schema.prune(obj, rt.schema or {})
        else:
            unknown = []
            for key in [k for k in obj["metadata"] if k not in OBJECT_META_FIELDS]:
                unknown.append(f"metadata.{key}")
                del obj["metadata"][key]
        if unknown and opts.field_validation == "Strict":
            listed = ", ".join(f'unknown field "{p}"' for p in unknown)
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict decoding error: {listed}')
        if rt.custom:
            schema.apply_defaults(obj, rt.schema or {})
        if opts.field_validation == "Ignore":
            return []
        return [f'unknown field "{p}"' for p in unknown]

    def _validate(self, rt: ResourceType, obj: Object, old: Object | None) -> None:
        errors = strategy.validate(rt, obj, old)
        if rt.custom and rt.schema is not None:
            errors += schema.Validator(rt.schema, RULES.evaluate).validate(obj, old)
        if errors:
            raise invalid(rt.group, rt.kind, obj["metadata"].get("name", ""), errors)


def present(rt: ResourceType, obj: Object) -> Object:
    """The stored object as served at ``rt``'s version (versions share one schema-less storage)."""
    if obj.get("apiVersion") == rt.api_version:
        return obj
    return {**obj, "apiVersion": rt.api_version}


def _unchanged(new: Object, old: Object) -> bool:
    def strip(o: Object) -> Object:
        meta = {k: v for k, v in o["metadata"].items() if k not in ("resourceVersion", "managedFields")}
        return {**o, "metadata": meta}

    return strip(new) == strip(old)


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"error decoding patch: {exc}") from exc


def _list_key(obj: Object) -> tuple[str, str]:
    return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def _encode_continue(revision: str, after: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": revision, "after": list(after)}).encode()).decode()


def _decode_continue(token: str) -> dict[str, Any]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        if isinstance(decoded, dict) and "rv" in decoded and "after" in decoded:
            return decoded
    except ValueError:
        pass
    raise bad_request("continue key is not valid: invalid continue token")
