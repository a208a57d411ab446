"""Admin routes for notification channels and the event log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from tripwise.server.auth import AdminProject, Plane
from tripwise.server.schemas import ChannelIn, ChannelPatch
from tripwise.server.services import channels

router = APIRouter(prefix="/v1/projects/{project_id}", tags=["notifications", "events"])
Id = Annotated[str, Path(max_length=200)]
Cursor = Annotated[str | None, Query(max_length=1000)]
Limit = Annotated[int | None, Query(ge=1)]


@router.get("/notification-channels")
async def list_channels(
    project: AdminProject, plane: Plane, cursor: Cursor = None, limit: Limit = None
) -> dict[str, Any]:
    return await channels.list_channels(plane, project, cursor, limit)


@router.post("/notification-channels", status_code=201)
async def create_channel(body: ChannelIn, project: AdminProject, plane: Plane) -> dict[str, Any]:
    return await channels.create_channel(plane, project, body)


@router.get("/notification-channels/{channel_id}")
async def get_channel(channel_id: Id, project: AdminProject, plane: Plane) -> dict[str, Any]:
    return await channels.get_channel(plane, project, channel_id)


@router.patch("/notification-channels/{channel_id}")
async def update_channel(
    channel_id: Id, body: ChannelPatch, project: AdminProject, plane: Plane
) -> dict[str, Any]:
    return await channels.update_channel(plane, project, channel_id, body)


@router.delete("/notification-channels/{channel_id}", status_code=204)
async def delete_channel(channel_id: Id, project: AdminProject, plane: Plane) -> Response:
    await channels.delete_channel(plane, project, channel_id)
    return Response(status_code=204)


@router.post("/notification-channels/{channel_id}/test", status_code=204)
async def test_channel(channel_id: Id, project: AdminProject, plane: Plane) -> Response:
    await channels.test_channel(plane, project, channel_id)
    return Response(status_code=204)


@router.get("/events")
async def list_events(
    project: AdminProject,
    plane: Plane,
    breaker_id: Annotated[str | None, Query(max_length=200)] = None,
    start_time: Annotated[str | None, Query(max_length=100)] = None,
    end_time: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> dict[str, Any]:
    return await channels.list_events(
        plane,
        project,
        breaker_id=breaker_id,
        start_time=start_time,
        end_time=end_time,
        cursor=cursor,
        limit=limit,
    )
