"""Admin routes for routers and their breaker links."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response

from tripwise.server.auth import AdminProject, Plane
from tripwise.server.schemas import LinkIn, RouterIn, RouterPatch
from tripwise.server.services import routers

router = APIRouter(prefix="/v1/projects/{project_id}/routers", tags=["routers"])
Id = Annotated[str, Path(max_length=200)]


@router.get("")
async def list_routers(
    project: AdminProject,
    plane: Plane,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    return await routers.list_routers(plane, project, cursor, limit)


@router.post("", status_code=201)
async def create_router(body: RouterIn, project: AdminProject, plane: Plane) -> dict[str, Any]:
    return await routers.create_router(plane, project, body)


@router.get("/{router_id}")
async def get_router(router_id: Id, project: AdminProject, plane: Plane) -> dict[str, Any]:
    return await routers.get_router(plane, project, router_id)


@router.patch("/{router_id}")
async def update_router(
    router_id: Id, body: RouterPatch, project: AdminProject, plane: Plane
) -> dict[str, Any]:
    return await routers.update_router(plane, project, router_id, body)


@router.delete("/{router_id}", status_code=204)
async def delete_router(router_id: Id, project: AdminProject, plane: Plane) -> Response:
    await routers.delete_router(plane, project, router_id)
    return Response(status_code=204)


@router.post("/{router_id}/breakers", status_code=204)
async def link_breakers(
    router_id: Id, body: LinkIn, project: AdminProject, plane: Plane
) -> Response:
    await routers.link(plane, project, router_id, body)
    return Response(status_code=204)


@router.delete("/{router_id}/breakers/{breaker_id}", status_code=204)
async def unlink_breaker(
    router_id: Id, breaker_id: Id, project: AdminProject, plane: Plane
) -> Response:
    await routers.unlink(plane, project, router_id, breaker_id)
    return Response(status_code=204)


@router.patch("/{router_id}/metadata")
async def patch_metadata(
    router_id: Id,
    project: AdminProject,
    plane: Plane,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    return await routers.patch_metadata(plane, project, router_id, body)
