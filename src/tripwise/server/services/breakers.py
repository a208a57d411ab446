"""Breaker definitions: CRUD, sync, states, metadata, manual override."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tripwise.server.control import ControlPlane
from tripwise.server.errors import ApiError
from tripwise.server.evaluator.breaker import BreakerRuntime
from tripwise.server.evaluator.projects import ProjectRuntime
from tripwise.server.schemas import BatchStatesIn, BreakerIn, BreakerPatch, OverrideIn
from tripwise.server.serialize import breaker_envelope, breaker_json, state_json
from tripwise.server.services.common import (
    check_metadata,
    merge_metadata,
    new_id,
    offset_page,
)
from tripwise.server.storage import models as m
from tripwise.server.stream import encode_state
from tripwise.server.timefmt import iso, now_ms, now_us

DEFAULTS: dict[str, Any] = {
    "window_ms": 60_000,
    "min_count": 1,
    "eval_interval_ms": 1_000,
    "cooldown_ms": 30_000,
    "min_state_duration_ms": 0,
    "half_open_backoff_enabled": True,
    "half_open_backoff_cap_ms": 300_000,
    "recovery_allow_rate_ramp_steps": 4,
    "half_open_indeterminate_policy": "conservative",
    "kind_params": {},
    "actions": {},
}
_NOT_NULL = ("name", "metric", "kind", "op", "threshold")


def _check_kind_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    if "percentile" in params:
        p = params["percentile"]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 100:
            raise ApiError(422, f"kind_params.percentile must be a number in 0..100, got {p!r}")
    if "mode" in params and params["mode"] not in ("absolute", "relative"):
        raise ApiError(
            422, f"kind_params.mode must be 'absolute' or 'relative', got {params['mode']!r}"
        )
    return params


def _apply(row: m.Breaker, values: dict[str, Any]) -> None:
    for field, value in values.items():
        if field == "metadata":
            row.meta = check_metadata(value)
        else:
            setattr(row, field, value)
    row.kind_params = _check_kind_params(row.kind, dict(row.kind_params or {}))
    _check_threshold(row.kind, row.op, float(row.threshold))


def _check_threshold(kind: str, op: str, threshold: float) -> None:
    """Refuse thresholds the kind's value can never cross (they would silently never trip)."""
    if kind == "error_rate" and not 0.0 <= threshold <= 1.0:
        raise ApiError(
            422,
            f"threshold of an error_rate breaker is a fraction in 0..1 (0.05 = 5 %), "
            f"got {threshold!r}",
        )
    if kind in ("count", "consecutive_failures") and threshold < 0:
        raise ApiError(422, f"threshold of a {kind} breaker must be >= 0, got {threshold!r}")


def _create_values(body: BreakerIn) -> dict[str, Any]:
    values = body.model_dump()
    for field, default in DEFAULTS.items():
        if values.get(field) is None:
            values[field] = default
    values["metadata"] = values.get("metadata") or {}
    return values


async def _name_free(s: Any, pid: str, name: str, except_id: str | None = None) -> None:
    found = await s.scalar(
        select(m.Breaker.id).where(m.Breaker.project_id == pid, m.Breaker.name == name)
    )
    if found is not None and found != except_id:
        raise ApiError(409, f"a breaker named {name!r} already exists in this project")


async def _router_ids(s: Any, bid: str) -> list[str]:
    rows = await s.scalars(
        select(m.RouterBreaker.router_id)
        .where(m.RouterBreaker.breaker_id == bid)
        .order_by(m.RouterBreaker.linked_us, m.RouterBreaker.router_id)
    )
    return list(rows)


async def router_ids_by_breaker(s: Any, pid: str) -> dict[str, list[str]]:
    rows = await s.execute(
        select(m.RouterBreaker.breaker_id, m.RouterBreaker.router_id)
        .join(m.Router, m.Router.id == m.RouterBreaker.router_id)
        .where(m.Router.project_id == pid)
        .order_by(m.RouterBreaker.linked_us, m.RouterBreaker.router_id)
    )
    out: dict[str, list[str]] = {}
    for bid, rid in rows:
        out.setdefault(bid, []).append(rid)
    return out


async def _breaker(s: AsyncSession, pid: str, bid: str) -> m.Breaker:
    row = await s.get(m.Breaker, bid)
    if row is None or row.project_id != pid:
        raise ApiError(404, f"breaker {bid!r} not found")
    return row


def _new_row(pid: str, values: dict[str, Any]) -> m.Breaker:
    now, ms = now_us(), now_ms()
    row = m.Breaker(
        id=new_id(),
        project_id=pid,
        inserted_us=now,
        updated_us=now,
        state="closed",
        allow_rate=1.0,
        state_changed_ms=ms,
        rate_changed_ms=ms,
        half_open_failures=0,
        healthy_evals=0,
        override="automatic",
    )
    _apply(row, values)
    return row


def _register(plane: ControlPlane, project: ProjectRuntime, row: m.Breaker) -> BreakerRuntime:
    runtime = BreakerRuntime(row, now_ms=now_ms())
    project.breakers[row.id] = runtime
    project.invalidate()
    plane.publish(project.id, encode_state(runtime.sse_payload()))
    return runtime


async def list_breakers(
    plane: ControlPlane, project: ProjectRuntime, cursor: str | None, limit: int | None
) -> tuple[dict[str, Any], str]:
    async with plane.sessions() as s:
        q = select(m.Breaker).where(m.Breaker.project_id == project.id)
        rows = list(await s.scalars(q.order_by(m.Breaker.inserted_us, m.Breaker.id)))
        links = await router_ids_by_breaker(s, project.id)
    digest = hashlib.sha256(
        json.dumps([[r.id, r.name, r.updated_us] for r in rows]).encode()
    ).hexdigest()[:32]
    page, next_cursor = offset_page(rows, cursor, limit)
    items = [breaker_json(r, links.get(r.id, []), project.breakers.get(r.id)) for r in page]
    updated = max((r.updated_us for r in rows), default=None)
    body = {
        "breakers": items,
        "count": len(items),
        "hash": digest,
        "updated_at": iso(updated),
        "next_cursor": next_cursor,
    }
    return body, f'W/"{digest}"'


async def create_breaker(
    plane: ControlPlane, project: ProjectRuntime, body: BreakerIn
) -> dict[str, Any]:
    async with plane.sessions.begin() as s:
        await _name_free(s, project.id, body.name)
        row = _new_row(project.id, _create_values(body))
        s.add(row)
    runtime = _register(plane, project, row)
    return breaker_envelope(row, [], runtime)


async def get_breaker(plane: ControlPlane, project: ProjectRuntime, bid: str) -> dict[str, Any]:
    async with plane.sessions() as s:
        row = await _breaker(s, project.id, bid)
        rids = await _router_ids(s, bid)
    return breaker_envelope(row, rids, project.breakers.get(bid))


async def update_breaker(
    plane: ControlPlane, project: ProjectRuntime, bid: str, body: BreakerPatch
) -> dict[str, Any]:
    values = {f: getattr(body, f) for f in body.model_fields_set}
    for f in _NOT_NULL:
        if f in values and values[f] is None:
            raise ApiError(422, f"{f} may not be null")
    for f, default in DEFAULTS.items():
        if f in values and values[f] is None:
            values[f] = default
    async with plane.sessions.begin() as s:
        row = await _breaker(s, project.id, bid)
        old_name = row.name
        if "name" in values and values["name"] != old_name:
            await _name_free(s, project.id, values["name"], except_id=bid)
        _apply(row, values)
        row.updated_us = now_us()
        rids = await _router_ids(s, bid)
    runtime = project.breakers[bid]
    runtime.configure(row)
    project.invalidate()
    if row.name != old_name:
        plane.publish_farewell(project.id, old_name)
        plane.publish(project.id, encode_state(runtime.sse_payload()))
    return breaker_envelope(row, rids, runtime)


async def delete_breaker(plane: ControlPlane, project: ProjectRuntime, bid: str) -> None:
    async with plane.sessions.begin() as s:
        row = await _breaker(s, project.id, bid)
        name = row.name
        await s.execute(delete(m.RouterBreaker).where(m.RouterBreaker.breaker_id == bid))
        await s.delete(row)
    _unregister(plane, project, bid, name)


def _unregister(plane: ControlPlane, project: ProjectRuntime, bid: str, name: str) -> None:
    project.breakers.pop(bid, None)
    for r in project.routers.values():
        r.breaker_ids.discard(bid)
    project.invalidate()
    plane.persister.forget(bid)
    plane.publish_farewell(project.id, name)


async def sync_breakers(
    plane: ControlPlane, project: ProjectRuntime, bodies: list[BreakerIn]
) -> list[dict[str, Any]]:
    """Replace the breaker set by name: upsert listed names, delete the others."""
    names = [b.name for b in bodies]
    if len(set(names)) != len(names):
        raise ApiError(422, "breaker names in a sync must be unique")
    async with plane.sessions.begin() as s:
        existing = {
            r.name: r
            for r in await s.scalars(select(m.Breaker).where(m.Breaker.project_id == project.id))
        }
        removed = [r for name, r in existing.items() if name not in set(names)]
        for r in removed:
            await s.execute(delete(m.RouterBreaker).where(m.RouterBreaker.breaker_id == r.id))
            await s.delete(r)
        rows, created = [], []
        for body in bodies:
            values = _create_values(body)
            row = existing.get(body.name)
            if row is None:
                row = _new_row(project.id, values)
                s.add(row)
                created.append(row)
            else:
                _apply(row, values)
                row.updated_us = now_us()
            rows.append(row)
        await s.flush()
        links = await router_ids_by_breaker(s, project.id)
    for r in removed:
        _unregister(plane, project, r.id, r.name)
    for row in rows:
        if row in created:
            _register(plane, project, row)
        else:
            project.breakers[row.id].configure(row)
    project.invalidate()
    return [breaker_json(r, links.get(r.id, []), project.breakers.get(r.id)) for r in rows]


def get_state(project: ProjectRuntime, bid: str) -> dict[str, Any]:
    b = project.breakers.get(bid)
    if b is None:
        raise ApiError(404, f"breaker {bid!r} not found")
    return state_json(b)


def batch_states(project: ProjectRuntime, body: BatchStatesIn) -> list[dict[str, Any]]:
    ids: set[str] | None = None
    if body.breaker_ids is not None:
        ids = set(body.breaker_ids)
    if body.router_id is not None:
        router = project.routers.get(body.router_id)
        linked = router.breaker_ids if router is not None else set()
        ids = set(linked) if ids is None else ids & linked
    return [state_json(b) for b in project.breakers.values() if ids is None or b.id in ids]


async def patch_metadata(
    plane: ControlPlane, project: ProjectRuntime, bid: str, body: Any
) -> dict[str, Any]:
    async with plane.sessions.begin() as s:
        row = await _breaker(s, project.id, bid)
        row.meta = merge_metadata(row.meta, body)
        row.updated_us = now_us()
    return {"id": row.id, "name": row.name, "metadata": dict(row.meta)}


async def metadata_list(plane: ControlPlane, project: ProjectRuntime, kind: str) -> dict[str, Any]:
    model = m.Breaker if kind == "breakers" else m.Router
    async with plane.sessions() as s:
        rows = await s.execute(
            select(model.id, model.name, model.meta)
            .where(model.project_id == project.id)
            .order_by(model.inserted_us, model.id)
        )
        items = [{"id": i, "name": n, "metadata": dict(md or {})} for i, n, md in rows]
    return {"project_id": project.id, kind: items}


async def override(
    plane: ControlPlane, project: ProjectRuntime, bid: str, body: OverrideIn
) -> dict[str, Any]:
    b = project.breakers.get(bid)
    if b is None:
        raise ApiError(404, f"breaker {bid!r} not found")
    mode = {"force_open": "forced_open", "force_closed": "forced_closed"}.get(body.mode, body.mode)
    change = b.apply_override(mode, body.reason, now_ms())
    plane.dispatch([change])
    await plane.persister.flush()
    return state_json(b)
