"""Notification channels and the event log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tripwise.server.control import ControlPlane, channel_dict
from tripwise.server.errors import ApiError
from tripwise.server.evaluator.projects import ProjectRuntime
from tripwise.server.notify.senders import DeliveryError
from tripwise.server.schemas import ChannelIn, ChannelPatch
from tripwise.server.serialize import channel_json, event_json
from tripwise.server.services.common import (
    clamp_limit,
    decode_cursor,
    encode_cursor,
    new_id,
    offset_page,
)
from tripwise.server.storage import models as m
from tripwise.server.timefmt import iso, now_us, parse_iso_us


async def _refresh(plane: ControlPlane, s: Any, pid: str) -> None:
    rows = await s.scalars(select(m.Channel).where(m.Channel.project_id == pid))
    plane.notifier.set_channels(pid, [channel_dict(c) for c in rows])


async def _channel(s: AsyncSession, pid: str, cid: str) -> m.Channel:
    row = await s.get(m.Channel, cid)
    if row is None or row.project_id != pid:
        raise ApiError(404, f"notification channel {cid!r} not found")
    return row


async def list_channels(
    plane: ControlPlane, project: ProjectRuntime, cursor: str | None, limit: int | None
) -> dict[str, Any]:
    async with plane.sessions() as s:
        q = select(m.Channel).where(m.Channel.project_id == project.id)
        rows = list(await s.scalars(q.order_by(m.Channel.created_us, m.Channel.id)))
    page, next_cursor = offset_page(rows, cursor, limit)
    items = [channel_json(c) for c in page]
    return {"items": items, "channels": items, "next_cursor": next_cursor}


async def create_channel(
    plane: ControlPlane, project: ProjectRuntime, body: ChannelIn
) -> dict[str, Any]:
    now = now_us()
    row = m.Channel(
        id=new_id(),
        project_id=project.id,
        name=body.name,
        channel=body.channel,
        config=body.config,
        events=list(dict.fromkeys(body.events)),
        enabled=body.enabled,
        created_us=now,
        updated_us=now,
    )
    async with plane.sessions.begin() as s:
        s.add(row)
        await s.flush()
        await _refresh(plane, s, project.id)
    return channel_json(row)


async def get_channel(plane: ControlPlane, project: ProjectRuntime, cid: str) -> dict[str, Any]:
    async with plane.sessions() as s:
        return channel_json(await _channel(s, project.id, cid))


async def update_channel(
    plane: ControlPlane, project: ProjectRuntime, cid: str, body: ChannelPatch
) -> dict[str, Any]:
    async with plane.sessions.begin() as s:
        row = await _channel(s, project.id, cid)
        for field in body.model_fields_set:
            value = getattr(body, field)
            if value is None:
                raise ApiError(422, f"{field} may not be null")
            if field == "config":
                old = dict(row.config or {})
                # A masked secret sent back unchanged keeps the stored secret.
                value = {
                    k: old.get(k, v) if isinstance(v, str) and v.startswith("****") else v
                    for k, v in value.items()
                }
            if field == "events":
                value = list(dict.fromkeys(value))
            setattr(row, field, value)
        row.updated_us = now_us()
        await s.flush()
        await _refresh(plane, s, project.id)
    return channel_json(row)


async def delete_channel(plane: ControlPlane, project: ProjectRuntime, cid: str) -> None:
    async with plane.sessions.begin() as s:
        await s.delete(await _channel(s, project.id, cid))
        await s.flush()
        await _refresh(plane, s, project.id)


async def test_channel(plane: ControlPlane, project: ProjectRuntime, cid: str) -> None:
    """Deliver one test message now; 422 when not configured, 502 when the receiver fails."""
    async with plane.sessions() as s:
        row = await _channel(s, project.id, cid)
    event = {
        "event": "test",
        "id": new_id(),
        "project_id": project.id,
        "breaker_id": "",
        "breaker_name": "tripwise-test",
        "from_state": "closed",
        "to_state": "open",
        "reason": "test notification",
        "timestamp": iso(now_us()),
    }
    try:
        await plane.notifier.send_test(channel_dict(row), event)
    except DeliveryError as exc:
        raise ApiError(422 if not exc.retryable else 502, str(exc), "delivery_failed") from exc


async def list_events(
    plane: ControlPlane,
    project: ProjectRuntime,
    *,
    breaker_id: str | None,
    start_time: str | None,
    end_time: str | None,
    cursor: str | None,
    limit: int | None,
) -> dict[str, Any]:
    """Events newest first; cursor = (timestamp, id) of the last item returned."""
    size = clamp_limit(limit, 100) or 100
    await plane.persister.flush()
    q = select(m.Event).where(m.Event.project_id == project.id)
    if breaker_id:
        q = q.where(m.Event.breaker_id == breaker_id)
    for text, is_start in ((start_time, True), (end_time, False)):
        if text:
            try:
                us = parse_iso_us(text)
            except (ValueError, OverflowError, OSError) as exc:
                raise ApiError(400, f"invalid time {text!r}: use ISO-8601") from exc
            q = q.where(m.Event.ts_us >= us) if is_start else q.where(m.Event.ts_us < us)
    if cursor:
        ts, eid = decode_cursor(cursor, 2)
        # ts_us is a 64-bit column: a bigger number would fail inside the database driver
        if not isinstance(ts, int) or not isinstance(eid, str) or not 0 <= ts < 2**63:
            raise ApiError(400, f"invalid cursor {cursor!r}")
        q = q.where(or_(m.Event.ts_us < ts, and_(m.Event.ts_us == ts, m.Event.id < eid)))
    q = q.order_by(m.Event.ts_us.desc(), m.Event.id.desc()).limit(size + 1)
    async with plane.sessions() as s:
        rows = list(await s.scalars(q))
    more = len(rows) > size
    rows = rows[:size]
    return {
        "events": [event_json(e) for e in rows],
        "returned": len(rows),
        "next_cursor": encode_cursor(rows[-1].ts_us, rows[-1].id) if more and rows else None,
    }
