"""Runtime routes used by the SDK client: state stream, ingest, metadata, status."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from tripwise.server.auth import Authenticated, Plane, ReaderProject
from tripwise.server.errors import ApiError
from tripwise.server.ingest import ingest_request
from tripwise.server.services import breakers
from tripwise.server.stream import SSEResponse

router = APIRouter(prefix="/v1/projects/{project_id}", tags=["runtime"])


@router.get("/breakers/state:stream", response_class=SSEResponse, status_code=200)
async def state_stream(
    project: ReaderProject, principal: Authenticated, plane: Plane
) -> SSEResponse:
    """SSE: a ``state`` event per breaker on connect, then every change; ``: ping`` comments."""
    if plane.hub.closing:
        raise ApiError(503, "server is shutting down", "unavailable")
    sub = plane.hub.subscribe(project.id, principal.key_id, plane.snapshot(project.id))
    return SSEResponse(plane.hub, sub)


@router.post("/ingest", status_code=202)
async def ingest_samples(
    project_id: Annotated[str, Path(max_length=200)], request: Request, plane: Plane
) -> JSONResponse:
    """HMAC-verified (gzip) sample batches; invalid samples are counted, not fatal.

    Served by :class:`tripwise.server.fastpath.IngestFastPath` before routing; this route
    documents the endpoint and answers when the fast path is not installed.
    """
    body = await request.body()
    client = request.client.host if request.client else ""
    result = await ingest_request(
        plane, project_id, request.headers, body, request.app.state.replay, client
    )
    return JSONResponse(result, status_code=202)


async def _metadata(kind: str, project: Any, plane: Any, request: Request) -> Response:

    body = await breakers.metadata_list(plane, project, kind)
    return _with_etag(json.dumps(body, separators=(",", ":"), sort_keys=True).encode(), request)


def _with_etag(raw: bytes, request: Request) -> Response:
    """200 with a weak ``ETag`` of the body, or 304 when ``If-None-Match`` names it."""
    etag = 'W/"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
    inm = request.headers.get("if-none-match")
    if inm is not None and etag in [t.strip() for t in inm.split(",")]:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(raw, media_type="application/json", headers={"ETag": etag})


@router.get("/breakers/metadata")
async def breakers_metadata(project: ReaderProject, plane: Plane, request: Request) -> Response:
    return await _metadata("breakers", project, plane, request)


@router.get("/routers/metadata")
async def routers_metadata(project: ReaderProject, plane: Plane, request: Request) -> Response:
    return await _metadata("routers", project, plane, request)


@router.head("/status")
async def status_head(project: ReaderProject, plane: Plane, request: Request) -> Response:
    """The status answer's headers (``ETag``) without its body."""
    return await status(project, plane, request)


@router.get("/status")
async def status(project: ReaderProject, plane: Plane, request: Request) -> Response:
    """Open/closed counts and the last evaluation; weak ``ETag`` and 304 like the metadata."""
    counts = project.counts()
    body = {
        "open_count": counts["open"],
        "closed_count": counts["closed"],
        "half_open_count": counts["half_open"],
        "last_eval_ms": project.last_eval_ms or plane.last_tick_ms,
    }
    return _with_etag(orjson.dumps(body), request)
