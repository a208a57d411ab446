"""Authentication and authorisation dependencies, plus per-key rate limiting."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import select, update

from tripwise.server.control import ControlPlane
from tripwise.server.errors import ApiError
from tripwise.server.evaluator.projects import ProjectRuntime
from tripwise.server.security import hash_key
from tripwise.server.storage.models import ApiKey
from tripwise.server.timefmt import now_us

log = logging.getLogger("tripwise.server.auth")
_TOUCH_EVERY_US = 60_000_000


@dataclass
class Principal:
    key_id: str
    org_id: str
    project_id: str | None  # None: an org-wide admin key
    last_touch_us: int = 0

    @property
    def is_admin(self) -> bool:
        return self.project_id is None


async def get_plane(request: Request) -> ControlPlane:
    """The control plane (async: FastAPI would run a plain function in a worker thread)."""
    plane: ControlPlane = request.app.state.plane
    return plane


Plane = Annotated[ControlPlane, Depends(get_plane)]


async def _touch(plane: ControlPlane, key_id: str, at_us: int) -> None:
    try:
        async with plane.sessions.begin() as s:
            await s.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_us=at_us))
    except Exception:  # last_used_at is best effort
        log.debug("could not record key use", exc_info=True)


async def authenticate(request: Request, plane: Plane) -> Principal:
    """Resolve the bearer key (401 when missing/unknown), then apply its rate limit (429)."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "missing bearer key: send 'Authorization: Bearer <key>'")
    digest = hash_key(key.strip())
    principal = plane.key_cache.get(digest)
    if principal is None:
        epoch = plane.key_cache_epoch
        async with plane.sessions() as s:
            row = await s.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
        if row is None:
            # Unknown keys spend a per-client budget of their own (never a real key's).
            client = request.client.host if request.client else ""
            if plane.bus is not None:
                s = plane.settings
                wait = await plane.bus.acquire(
                    "unauth:" + client, s.unauth_rate_limit_per_s, s.unauth_rate_limit_burst
                )
            else:
                wait = plane.unauth_limiter.acquire("bearer:" + client)
            if wait:
                raise ApiError(
                    429,
                    "too many requests with unknown keys from this client",
                    headers=plane.limiter.retry_after_header(wait),
                )
            raise ApiError(401, "unknown or revoked key")
        principal = Principal(row.id, row.org_id, row.project_id)
        if plane.key_cache_epoch == epoch:  # no revocation while we looked it up
            plane.key_cache[digest] = principal
    if plane.bus is not None:
        wait = await plane.bus.acquire(
            "key:" + principal.key_id,
            plane.settings.rate_limit_per_s,
            plane.settings.rate_limit_burst,
        )
    else:
        wait = plane.limiter.acquire(principal.key_id)
    if wait:
        raise ApiError(
            429, "rate limit exceeded for this key", headers=plane.limiter.retry_after_header(wait)
        )
    now = now_us()
    if now - principal.last_touch_us > _TOUCH_EVERY_US:
        principal.last_touch_us = now
        asyncio.get_running_loop().create_task(_touch(plane, principal.key_id, now))
    request.state.principal = principal
    return principal


Authenticated = Annotated[Principal, Depends(authenticate)]


async def require_admin(principal: Authenticated) -> Principal:
    if not principal.is_admin:
        raise ApiError(403, "a project key cannot call admin endpoints; use an admin key")
    return principal


Admin = Annotated[Principal, Depends(require_admin)]


async def admin_project(
    project_id: Annotated[str, Path(max_length=200)], principal: Admin, plane: Plane
) -> ProjectRuntime:
    """The project an admin call targets (404 if it does not exist in the key's org)."""
    project = plane.projects.get(project_id)
    if project is None or project.org_id != principal.org_id:
        raise ApiError(404, f"project {project_id!r} not found")
    return project


AdminProject = Annotated[ProjectRuntime, Depends(admin_project)]


async def reader_project(
    project_id: Annotated[str, Path(max_length=200)], principal: Authenticated, plane: Plane
) -> ProjectRuntime:
    """Runtime reads: admin keys for any project of their org, project keys for their own."""
    if principal.project_id is not None and principal.project_id != project_id:
        raise ApiError(403, "this project key belongs to another project")
    project = plane.projects.get(project_id)
    if project is None or project.org_id != principal.org_id:
        raise ApiError(404, f"project {project_id!r} not found")
    return project


ReaderProject = Annotated[ProjectRuntime, Depends(reader_project)]
