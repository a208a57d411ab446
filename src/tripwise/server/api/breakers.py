"""Admin routes for breakers (plus the state reads project keys may use, and overrides)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response

from tripwise.server.auth import AdminProject, Plane, ReaderProject
from tripwise.server.schemas import BatchStatesIn, BreakerIn, BreakerPatch, BreakerSync, OverrideIn
from tripwise.server.services import breakers

router = APIRouter(prefix="/v1/projects/{project_id}/breakers", tags=["breakers"])
Id = Annotated[str, Path(max_length=200)]
Limit = Annotated[int | None, Query(ge=1)]
Cursor = Annotated[str | None, Query(max_length=1000)]


@router.post("/state:batch")
async def batch_states(body: BatchStatesIn, project: ReaderProject) -> list[dict[str, Any]]:
    return breakers.batch_states(project, body)


@router.get("")
async def list_breakers(
    project: AdminProject,
    plane: Plane,
    response: Response,
    cursor: Cursor = None,
    limit: Limit = None,
) -> dict[str, Any]:
    body, etag = await breakers.list_breakers(plane, project, cursor, limit)
    response.headers["ETag"] = etag
    return body


@router.post("", status_code=201)
async def create_breaker(body: BreakerIn, project: AdminProject, plane: Plane) -> dict[str, Any]:
    return await breakers.create_breaker(plane, project, body)


@router.put("")
async def sync_breakers(
    body: BreakerSync, project: AdminProject, plane: Plane
) -> list[dict[str, Any]]:
    return await breakers.sync_breakers(plane, project, body.breakers)


@router.get("/{breaker_id}")
async def get_breaker(breaker_id: Id, project: AdminProject, plane: Plane) -> dict[str, Any]:
    return await breakers.get_breaker(plane, project, breaker_id)


@router.patch("/{breaker_id}")
async def update_breaker(
    breaker_id: Id, body: BreakerPatch, project: AdminProject, plane: Plane
) -> dict[str, Any]:
    return await breakers.update_breaker(plane, project, breaker_id, body)


@router.delete("/{breaker_id}", status_code=204)
async def delete_breaker(breaker_id: Id, project: AdminProject, plane: Plane) -> Response:
    await breakers.delete_breaker(plane, project, breaker_id)
    return Response(status_code=204)


@router.get("/{breaker_id}/state")
async def get_state(breaker_id: Id, project: ReaderProject) -> dict[str, Any]:
    return breakers.get_state(project, breaker_id)


@router.patch("/{breaker_id}/metadata")
async def patch_metadata(
    breaker_id: Id,
    project: AdminProject,
    plane: Plane,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    return await breakers.patch_metadata(plane, project, breaker_id, body)


@router.post("/{breaker_id}/override", tags=["overrides"])
async def override(
    breaker_id: Id, body: OverrideIn, project: AdminProject, plane: Plane
) -> dict[str, Any]:
    """Manual override (tripwise extension): force open, force closed, or back to automatic."""
    return await breakers.override(plane, project, breaker_id, body)
