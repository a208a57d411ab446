"""Routers: CRUD, breaker links, metadata."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tripwise.server.control import ControlPlane
from tripwise.server.errors import ApiError
from tripwise.server.evaluator.projects import ProjectRuntime, RouterRuntime
from tripwise.server.schemas import LinkIn, RouterIn, RouterPatch
from tripwise.server.serialize import breaker_json, router_json
from tripwise.server.services.breakers import router_ids_by_breaker
from tripwise.server.services.common import (
    check_metadata,
    merge_metadata,
    new_id,
    offset_page,
)
from tripwise.server.storage import models as m
from tripwise.server.timefmt import now_us


async def _router(s: AsyncSession, pid: str, rid: str) -> m.Router:
    row = await s.get(m.Router, rid)
    if row is None or row.project_id != pid:
        raise ApiError(404, f"router {rid!r} not found")
    return row


async def _name_free(s: Any, pid: str, name: str, except_id: str | None = None) -> None:
    found = await s.scalar(
        select(m.Router.id).where(m.Router.project_id == pid, m.Router.name == name)
    )
    if found is not None and found != except_id:
        raise ApiError(409, f"a router named {name!r} already exists in this project")


async def _render(s: Any, project: ProjectRuntime, rows: list[m.Router]) -> list[dict[str, Any]]:
    links = await router_ids_by_breaker(s, project.id)
    if not rows:
        return []
    ids = [r.id for r in rows]
    pairs = await s.execute(
        select(m.RouterBreaker.router_id, m.Breaker)
        .join(m.Breaker, m.Breaker.id == m.RouterBreaker.breaker_id)
        .where(m.RouterBreaker.router_id.in_(ids))
        .order_by(m.RouterBreaker.linked_us, m.Breaker.id)
    )
    by_router: dict[str, list[dict[str, Any]]] = {}
    for rid, b in pairs:
        by_router.setdefault(rid, []).append(
            breaker_json(b, links.get(b.id, []), project.breakers.get(b.id))
        )
    runtimes = project.routers
    return [
        router_json(
            r,
            by_router.get(r.id, []),
            dict(runtimes[r.id].unmatched) if r.id in runtimes else None,
        )
        for r in rows
    ]


async def _check_breakers(s: Any, pid: str, ids: list[str]) -> None:
    if not ids:
        return
    found = set(
        await s.scalars(
            select(m.Breaker.id).where(m.Breaker.project_id == pid, m.Breaker.id.in_(set(ids)))
        )
    )
    missing = [i for i in ids if i not in found]
    if missing:
        raise ApiError(404, f"breaker(s) not found: {', '.join(missing[:10])}")


async def _link(s: Any, rid: str, ids: list[str]) -> list[str]:
    have = set(
        await s.scalars(select(m.RouterBreaker.breaker_id).where(m.RouterBreaker.router_id == rid))
    )
    now, added = now_us(), []
    for bid in dict.fromkeys(ids):
        if bid not in have:
            s.add(m.RouterBreaker(router_id=rid, breaker_id=bid, linked_us=now))
            added.append(bid)
    return added


async def list_routers(
    plane: ControlPlane, project: ProjectRuntime, cursor: str | None, limit: int | None
) -> dict[str, Any]:
    async with plane.sessions() as s:
        q = select(m.Router).where(m.Router.project_id == project.id)
        rows = list(await s.scalars(q.order_by(m.Router.inserted_us, m.Router.id)))
        page, next_cursor = offset_page(rows, cursor, limit)
        items = await _render(s, project, page)
    return {"routers": items, "count": len(items), "next_cursor": next_cursor}


async def create_router(
    plane: ControlPlane, project: ProjectRuntime, body: RouterIn
) -> dict[str, Any]:
    now = now_us()
    async with plane.sessions.begin() as s:
        await _name_free(s, project.id, body.name)
        row = m.Router(
            id=new_id(),
            project_id=project.id,
            name=body.name,
            description=body.description,
            mode=body.mode,
            enabled=body.enabled,
            meta=check_metadata(body.metadata),
            inserted_us=now,
            updated_us=now,
        )
        s.add(row)
        ids = body.breaker_ids or []
        await _check_breakers(s, project.id, ids)
        await s.flush()
        await _link(s, row.id, ids)
        await s.flush()
        rendered = (await _render(s, project, [row]))[0]
    project.routers[row.id] = RouterRuntime(row.id, row.name, row.enabled, set(ids))
    project.invalidate()
    return {"router": rendered}


async def get_router(plane: ControlPlane, project: ProjectRuntime, rid: str) -> dict[str, Any]:
    async with plane.sessions() as s:
        row = await _router(s, project.id, rid)
        return {"router": (await _render(s, project, [row]))[0]}


async def update_router(
    plane: ControlPlane, project: ProjectRuntime, rid: str, body: RouterPatch
) -> dict[str, Any]:
    async with plane.sessions.begin() as s:
        row = await _router(s, project.id, rid)
        for field in body.model_fields_set:
            value = getattr(body, field)
            if field == "metadata":
                row.meta = check_metadata(value)
                continue
            if value is None and field in ("name", "mode", "enabled"):
                raise ApiError(422, f"{field} may not be null")
            if field == "name":
                await _name_free(s, project.id, value, except_id=rid)
            setattr(row, field, value)
        row.updated_us = now_us()
        rendered = (await _render(s, project, [row]))[0]
    runtime = project.routers[rid]
    runtime.name, runtime.enabled = row.name, row.enabled
    project.invalidate()
    return {"router": rendered}


async def delete_router(plane: ControlPlane, project: ProjectRuntime, rid: str) -> None:
    async with plane.sessions.begin() as s:
        row = await _router(s, project.id, rid)
        n = await s.scalar(select(func.count()).where(m.RouterBreaker.router_id == rid))
        if n:
            raise ApiError(409, f"router still has {n} linked breaker(s); unlink them first")
        await s.delete(row)
    project.routers.pop(rid, None)
    project.invalidate()


async def link(plane: ControlPlane, project: ProjectRuntime, rid: str, body: LinkIn) -> None:
    ids = list(body.breaker_ids or [])
    if body.breaker_id:
        ids.append(body.breaker_id)
    if not ids:
        raise ApiError(422, "send breaker_ids (a non-empty list) or breaker_id")
    async with plane.sessions.begin() as s:
        await _router(s, project.id, rid)
        await _check_breakers(s, project.id, ids)
        await _link(s, rid, ids)
    project.routers[rid].breaker_ids.update(ids)
    project.invalidate()


async def unlink(plane: ControlPlane, project: ProjectRuntime, rid: str, bid: str) -> None:
    async with plane.sessions.begin() as s:
        await _router(s, project.id, rid)
        result = await s.execute(
            delete(m.RouterBreaker).where(
                m.RouterBreaker.router_id == rid, m.RouterBreaker.breaker_id == bid
            )
        )
        if not result.rowcount:
            raise ApiError(404, f"breaker {bid!r} is not linked to router {rid!r}")
    project.routers[rid].breaker_ids.discard(bid)
    project.invalidate()


async def patch_metadata(
    plane: ControlPlane, project: ProjectRuntime, rid: str, body: Any
) -> dict[str, Any]:
    async with plane.sessions.begin() as s:
        row = await _router(s, project.id, rid)
        row.meta = merge_metadata(row.meta, body)
        row.updated_us = now_us()
    return {"id": row.id, "name": row.name, "metadata": dict(row.meta)}
