"""The OpenAPI document, completed: every status code each operation can answer, and a typed
schema for every response body (so a property-based run can validate responses).

Routes return plain dicts (the serializers in :mod:`tripwise.server.serialize` are the single
source of the wire format and are cheap); the models here describe those dicts for the
document only, they are never used to build responses. ``tests/integration/server/
test_openapi_fuzz.py`` checks every generated request's answer against this document.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict

State = Literal["closed", "open", "half_open"]
Override = Literal["automatic", "force_open", "force_closed"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Error(_Out):
    code: str
    message: str
    details: Any = None


class Health(_Out):
    status: str


class Readiness(_Out):
    status: Literal["ready", "unavailable"]
    checks: dict[str, bool]


class Workspace(_Out):
    id: str
    name: str
    slug: str
    org_id: str
    inserted_at: str | None


class WorkspaceList(_Out):
    workspaces: list[Workspace]
    count: int


class Project(_Out):
    project_id: str
    id: str
    name: str
    workspace_id: str
    enable_signed_ingest: bool
    slack_webhook_url: str | None
    trace_id_url_template: str | None
    inserted_at: str | None
    updated_at: str | None
    ingest_secret: str | None = None


class ProjectList(_Out):
    projects: list[Project]
    count: int


class IngestSecret(_Out):
    ingest_secret: str


class Key(_Out):
    id: str
    name: str
    key_prefix: str
    inserted_at: str | None
    last_used_at: str | None


class KeyList(_Out):
    keys: list[Key]
    count: int


class CreatedKey(Key):
    key: str
    message: str


class Breaker(_Out):
    id: str
    name: str
    metric: str
    kind: str
    op: str
    threshold: float
    kind_params: dict[str, Any]
    window_ms: int
    min_count: int
    min_state_duration_ms: int
    cooldown_ms: int
    eval_interval_ms: int
    half_open_confirmation_ms: int
    half_open_backoff_enabled: bool
    half_open_backoff_cap_ms: int
    half_open_indeterminate_policy: str
    recovery_window_ms: int
    recovery_allow_rate_ramp_steps: int
    actions: dict[str, Any]
    metadata: dict[str, str]
    router_id: str | None
    router_ids: list[str]
    state: State
    override: Override
    inserted_at: str | None
    updated_at: str | None


class BreakerEnvelope(_Out):
    breaker: Breaker
    router_id: str | None
    router_ids: list[str]


class BreakerList(_Out):
    breakers: list[Breaker]
    count: int
    hash: str
    updated_at: str | None
    next_cursor: str | None


class BreakerState(_Out):
    breaker_id: str
    name: str
    state: State
    allow_rate: float
    updated_at: str | None
    override: Override
    override_reason: str | None


class Metadata(_Out):
    id: str
    name: str
    metadata: dict[str, str]


class Router(_Out):
    id: str
    name: str
    description: str | None
    mode: str
    enabled: bool
    breaker_count: int
    breakers: list[Breaker]
    inserted_at: str | None
    updated_at: str | None
    created_by: str
    metadata: dict[str, str]
    unmatched_samples: dict[str, int]


class RouterEnvelope(_Out):
    router: Router


class RouterList(_Out):
    routers: list[Router]
    count: int
    next_cursor: str | None


class Channel(_Out):
    id: str
    project_id: str
    name: str
    channel: str
    config: dict[str, Any]
    events: list[str]
    enabled: bool
    created_at: str | None
    updated_at: str | None


class ChannelList(_Out):
    items: list[Channel]
    channels: list[Channel]
    next_cursor: str | None


class Event(_Out):
    id: str
    project_id: str
    breaker_id: str | None
    breaker_name: str
    from_state: State
    to_state: State
    reason: str | None
    timestamp: str | None


class EventList(_Out):
    events: list[Event]
    returned: int
    next_cursor: str | None


class MetadataItem(_Out):
    id: str
    name: str
    metadata: dict[str, str]


class MetadataList(_Out):
    project_id: str
    breakers: list[MetadataItem] | None = None
    routers: list[MetadataItem] | None = None


class Status(_Out):
    open_count: int
    closed_count: int
    half_open_count: int
    last_eval_ms: int | None


class IngestResult(_Out):
    accepted: int
    rejected: int
    rejected_by_reason: dict[str, int] | None = None
    unmatched: int | None = None
    hints: list[str] | None = None
    replayed: bool | None = None


def _array(model: type[BaseModel]) -> dict[str, Any]:
    return {"type": "array", "items": _ref(model)}


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_SSE = {"text/event-stream": {"schema": {"type": "string"}}}

# route function name -> (success status, body schema or a media-type map, or None: no body)
_SUCCESS: dict[str, tuple[str, Any]] = {
    "healthz": ("200", Health),
    "readyz": ("200", Readiness),
    "metrics": ("200", {"content": _TEXT}),
    "state_stream": ("200", {"content": _SSE}),
    "ingest_samples": ("202", IngestResult),
    "breakers_metadata": ("200", MetadataList),
    "routers_metadata": ("200", MetadataList),
    "status": ("200", Status),
    "status_head": ("200", Status),
    "batch_states": ("200", _array(BreakerState)),
    "list_breakers": ("200", BreakerList),
    "create_breaker": ("201", BreakerEnvelope),
    "sync_breakers": ("200", _array(Breaker)),
    "get_breaker": ("200", BreakerEnvelope),
    "update_breaker": ("200", BreakerEnvelope),
    "delete_breaker": ("204", None),
    "get_state": ("200", BreakerState),
    "override": ("200", BreakerState),
    "list_routers": ("200", RouterList),
    "create_router": ("201", RouterEnvelope),
    "get_router": ("200", RouterEnvelope),
    "update_router": ("200", RouterEnvelope),
    "delete_router": ("204", None),
    "link_breakers": ("204", None),
    "unlink_breaker": ("204", None),
    "list_channels": ("200", ChannelList),
    "create_channel": ("201", Channel),
    "get_channel": ("200", Channel),
    "update_channel": ("200", Channel),
    "delete_channel": ("204", None),
    "test_channel": ("204", None),
    "list_events": ("200", EventList),
    "list_admin_keys": ("200", KeyList),
    "create_admin_key": ("201", CreatedKey),
    "delete_admin_key": ("204", None),
    "list_workspaces": ("200", WorkspaceList),
    "create_workspace": ("201", Workspace),
    "get_workspace": ("200", Workspace),
    "update_workspace": ("200", Workspace),
    "delete_workspace": ("204", None),
    "list_projects": ("200", ProjectList),
    "create_project": ("201", Project),
    "get_project": ("200", Project),
    "update_project": ("200", Project),
    "delete_project": ("204", None),
    "rotate_ingest_secret": ("200", IngestSecret),
    "list_keys": ("200", KeyList),
    "create_key": ("201", CreatedKey),
    "delete_key": ("204", None),
    "patch_metadata": ("200", Metadata),
}

_ERRORS = {
    "400": "malformed request: invalid JSON, cursor or characters storage cannot hold",
    "401": "missing, unknown or revoked key; bad ingest signature or timestamp",
    "403": "the key may not do this (a project key on an admin route or another project)",
    "404": "no such resource in this organisation",
    "409": "conflict: a name in use, the last admin key, an Idempotency-Key still running",
    "413": "body (or decompressed body, or sample count) above the limit",
    "415": "unsupported Content-Encoding",
    "422": "a field fails validation (the message names it)",
    "429": "rate limited (Retry-After says when to retry)",
    "503": "the server is shutting down or not ready",
}
_OPERATIONS_ERRORS = {"healthz": (), "metrics": ("503",), "readyz": ("503",)}
_EXTRA = {"test_channel": {"502": "the receiver failed (the message says how)"}}
_ETAG = ("breakers_metadata", "routers_metadata", "status", "status_head")


def _content(schema: Any) -> dict[str, Any]:
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        schema = _ref(schema)
    if isinstance(schema, dict) and "content" in schema:
        return dict(schema["content"])
    return {"application/json": {"schema": schema}}


def _endpoint_name(operation_id: str, path: str, method: str) -> str:
    """The route function behind an operation (FastAPI's ids are name + path + method)."""
    for name in _SUCCESS:
        if operation_id == re.sub(r"\W", "_", name + path) + "_" + method:
            return name
    raise KeyError(f"no response description for operation {operation_id!r}")


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document with every operation's responses replaced by the full set."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    models = {m for m in globals().values() if isinstance(m, type) and issubclass(m, _Out)}
    for model in models - {_Out}:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = schema
    error = {"application/json": {"schema": _ref(Error)}}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            fn = _endpoint_name(op["operationId"], path, method)
            status, schema = _SUCCESS[fn]
            responses: dict[str, Any] = {}
            if schema is None:
                responses[status] = {"description": "done (no body)"}
            else:
                content = _content(schema)
                if method == "head":
                    content = {}
                responses[status] = {
                    "description": "success",
                    **({"content": content} if content else {}),
                }
            if fn in _ETAG:
                responses["304"] = {"description": "not modified (If-None-Match names the ETag)"}
            if fn == "readyz":
                responses["503"] = {"description": "not ready", "content": _content(Readiness)}
            for code in _OPERATIONS_ERRORS.get(fn, tuple(_ERRORS)):
                if code not in responses:
                    entry: dict[str, Any] = {"description": _ERRORS[code]}
                    if method != "head":
                        entry["content"] = error
                    responses[code] = entry
            for code, text in _EXTRA.get(fn, {}).items():
                responses[code] = {"description": text, "content": error}
            op["responses"] = responses
    app.openapi_schema = doc
    return doc
