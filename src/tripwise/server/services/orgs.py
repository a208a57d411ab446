"""Organisation bootstrap, workspaces, projects, project keys, ingest secrets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tripwise.server.control import ControlPlane
from tripwise.server.errors import ApiError
from tripwise.server.evaluator.projects import ProjectRuntime
from tripwise.server.schemas import KeyIn, ProjectIn, ProjectPatch, WorkspaceIn, WorkspacePatch
from tripwise.server.security import (
    hash_key,
    key_prefix,
    new_admin_key,
    new_ingest_secret,
    new_project_key,
)
from tripwise.server.serialize import key_json, project_json, workspace_json
from tripwise.server.services.common import new_id
from tripwise.server.storage import models as m
from tripwise.server.storage.database import STARTUP_LOCK
from tripwise.server.timefmt import now_us


class BootstrapError(Exception):
    """The given bootstrap admin key conflicts with the database (a one-line CLI error)."""


async def bootstrap(
    plane: ControlPlane, admin_key: str | None, *, rotate: bool = False
) -> str | None:
    """First start: create the organisation, its default workspace and an admin key.

    Returns the admin key when one was generated (to be shown once), else None. Later starts
    with a given ``admin_key``: a key the database knows is used as is; an unknown one is
    refused (:class:`BootstrapError`) unless ``rotate`` is set, which makes it the only admin
    key (every other admin key is revoked). Admin keys are otherwise managed through
    ``/v1/admin_keys``.
    """
    async with plane.sessions.begin() as s:
        if plane.engine.dialect.name == "postgresql":  # replicas starting together take turns
            await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": STARTUP_LOCK})
        org = await s.scalar(select(m.Org).limit(1))
        generated = None
        now = now_us()
        if org is None:
            org = m.Org(id=new_id(), name="default", created_us=now)
            s.add(org)
            await s.flush()
            s.add(
                m.Workspace(
                    id=new_id(),
                    org_id=org.id,
                    name="Default",
                    slug="default",
                    is_default=True,
                    inserted_us=now,
                )
            )
            if admin_key is None:
                admin_key = generated = new_admin_key()
        if admin_key is not None:
            digest = hash_key(admin_key)
            known = await s.scalar(select(m.ApiKey).where(m.ApiKey.key_hash == digest))
            if known is not None and known.project_id is not None:
                raise BootstrapError("the given admin key is a project key of this database")
            others = list(
                await s.scalars(
                    select(m.ApiKey).where(
                        m.ApiKey.org_id == org.id,
                        m.ApiKey.project_id.is_(None),
                        m.ApiKey.key_hash != digest,
                    )
                )
            )
            if known is None and others and not rotate:
                raise BootstrapError(
                    "the given admin key (TRIPWISE_ADMIN_KEY / --admin-key) is not an admin key "
                    "of this database; pass --rotate-admin-key to make it the only admin key "
                    "(revoking the others), or manage keys with /v1/admin_keys"
                )
            if rotate:
                for other in others:
                    await s.delete(other)
            if known is None:
                s.add(
                    m.ApiKey(
                        id=new_id(),
                        org_id=org.id,
                        project_id=None,
                        name="bootstrap admin key",
                        key_prefix=key_prefix(admin_key),
                        key_hash=digest,
                        inserted_us=now,
                    )
                )
    if rotate:
        plane.forget_keys()
    return generated


# -- admin keys -----------------------------------------------------------------------------


async def list_admin_keys(plane: ControlPlane, org_id: str) -> dict[str, Any]:
    async with plane.sessions() as s:
        rows = await s.scalars(
            select(m.ApiKey)
            .where(m.ApiKey.org_id == org_id, m.ApiKey.project_id.is_(None))
            .order_by(m.ApiKey.inserted_us, m.ApiKey.id)
        )
        items = [key_json(k) for k in rows]
    return {"keys": items, "count": len(items)}


async def create_admin_key(plane: ControlPlane, org_id: str, body: KeyIn) -> dict[str, Any]:
    key = new_admin_key()
    row = m.ApiKey(
        id=new_id(),
        org_id=org_id,
        project_id=None,
        name=body.name or "admin key",
        key_prefix=key_prefix(key),
        key_hash=hash_key(key),
        inserted_us=now_us(),
    )
    async with plane.sessions.begin() as s:
        s.add(row)
    return {**key_json(row), "key": key, "message": "Store this key now: it is shown only once."}


async def delete_admin_key(plane: ControlPlane, org_id: str, kid: str) -> None:
    """Revoke an admin key at once (cached lookups and its streams included); the last admin
    key of the organisation cannot be revoked (409), so nobody is locked out."""
    async with plane.sessions.begin() as s:
        row = await s.get(m.ApiKey, kid)
        if row is None or row.org_id != org_id or row.project_id is not None:
            raise ApiError(404, f"admin key {kid!r} not found")
        n = await s.scalar(
            select(func.count()).where(m.ApiKey.org_id == org_id, m.ApiKey.project_id.is_(None))
        )
        if (n or 0) <= 1:
            raise ApiError(409, "the last admin key cannot be revoked; create another first")
        await s.delete(row)
    plane.revoke(key_id=kid)


# -- workspaces ------------------------------------------------------------------------------


async def _workspace(s: AsyncSession, org_id: str, wid: str) -> m.Workspace:
    w = await s.get(m.Workspace, wid)
    if w is None or w.org_id != org_id:
        raise ApiError(404, f"workspace {wid!r} not found")
    return w


async def _slug_free(s: Any, org_id: str, slug: str, except_id: str | None = None) -> None:
    q = select(m.Workspace.id).where(m.Workspace.org_id == org_id, m.Workspace.slug == slug)
    found = await s.scalar(q)
    if found is not None and found != except_id:
        raise ApiError(409, f"a workspace with slug {slug!r} already exists")


async def list_workspaces(plane: ControlPlane, org_id: str) -> dict[str, Any]:
    async with plane.sessions() as s:
        rows = await s.scalars(
            select(m.Workspace)
            .where(m.Workspace.org_id == org_id)
            .order_by(m.Workspace.inserted_us)
        )
        items = [workspace_json(w) for w in rows]
    return {"workspaces": items, "count": len(items)}


async def create_workspace(plane: ControlPlane, org_id: str, body: WorkspaceIn) -> dict[str, Any]:
    async with plane.sessions.begin() as s:
        await _slug_free(s, org_id, body.slug)
        w = m.Workspace(
            id=new_id(), org_id=org_id, name=body.name, slug=body.slug, inserted_us=now_us()
        )
        s.add(w)
    return workspace_json(w)


async def get_workspace(plane: ControlPlane, org_id: str, wid: str) -> dict[str, Any]:
    async with plane.sessions() as s:
        return workspace_json(await _workspace(s, org_id, wid))


async def update_workspace(
    plane: ControlPlane, org_id: str, wid: str, body: WorkspacePatch
) -> dict[str, Any]:
    async with plane.sessions.begin() as s:
        w = await _workspace(s, org_id, wid)
        if body.slug is not None:
            await _slug_free(s, org_id, body.slug, except_id=wid)
            w.slug = body.slug
        if body.name is not None:
            w.name = body.name
    return workspace_json(w)


async def delete_workspace(plane: ControlPlane, org_id: str, wid: str) -> None:
    async with plane.sessions.begin() as s:
        w = await _workspace(s, org_id, wid)
        n = await s.scalar(select(func.count()).where(m.Project.workspace_id == wid))
        if n:
            raise ApiError(409, f"workspace still holds {n} project(s); delete them first")
        if w.is_default:
            raise ApiError(409, "the default workspace cannot be deleted")
        await s.delete(w)


# -- projects -------------------------------------------------------------------------------


async def _project(s: AsyncSession, org_id: str, pid: str) -> m.Project:
    p = await s.get(m.Project, pid)
    if p is None or p.org_id != org_id:
        raise ApiError(404, f"project {pid!r} not found")
    return p


async def list_projects(
    plane: ControlPlane, org_id: str, workspace_id: str | None
) -> dict[str, Any]:
    async with plane.sessions() as s:
        q = select(m.Project).where(m.Project.org_id == org_id)
        if workspace_id is not None:
            q = q.where(m.Project.workspace_id == workspace_id)
        items = [project_json(p) for p in await s.scalars(q.order_by(m.Project.inserted_us))]
    return {"projects": items, "count": len(items)}


async def create_project(plane: ControlPlane, org_id: str, body: ProjectIn) -> dict[str, Any]:
    async with plane.sessions.begin() as s:
        if body.workspace_id is None:
            ws = await s.scalar(
                select(m.Workspace).where(m.Workspace.org_id == org_id, m.Workspace.is_default)
            )
            if ws is None:
                raise ApiError(409, "the organisation has no default workspace")
        else:
            ws = await _workspace(s, org_id, body.workspace_id)
        now = now_us()
        p = m.Project(
            id=new_id(),
            org_id=org_id,
            workspace_id=ws.id,
            name=body.name,
            enable_signed_ingest=True,
            ingest_secret=new_ingest_secret(),
            inserted_us=now,
            updated_us=now,
        )
        s.add(p)
    plane.projects[p.id] = ProjectRuntime(p)
    return project_json(p, with_secret=True)


async def get_project(plane: ControlPlane, org_id: str, pid: str) -> dict[str, Any]:
    async with plane.sessions() as s:
        return project_json(await _project(s, org_id, pid))


async def update_project(
    plane: ControlPlane, org_id: str, pid: str, body: ProjectPatch
) -> dict[str, Any]:
    async with plane.sessions.begin() as s:
        p = await _project(s, org_id, pid)
        for field in body.model_fields_set:
            value = getattr(body, field)
            if value is None and field in ("name", "enable_signed_ingest"):
                raise ApiError(422, f"{field} may not be null")
            setattr(p, field, value)
        p.updated_us = now_us()
    plane.projects[pid].update(p)
    return project_json(p)


async def delete_project(plane: ControlPlane, org_id: str, pid: str) -> None:
    async with plane.sessions.begin() as s:
        p = await _project(s, org_id, pid)
        await s.delete(p)
    plane.projects.pop(pid, None)
    plane.revoke(project_id=pid)
    plane.notifier.drop_project(pid)


async def rotate_ingest_secret(plane: ControlPlane, org_id: str, pid: str) -> dict[str, Any]:
    async with plane.sessions.begin() as s:
        p = await _project(s, org_id, pid)
        p.ingest_secret = new_ingest_secret()
        p.updated_us = now_us()
    plane.projects[pid].update(p)
    return {"ingest_secret": p.ingest_secret}


# -- project keys ---------------------------------------------------------------------------


async def list_keys(plane: ControlPlane, pid: str) -> dict[str, Any]:
    async with plane.sessions() as s:
        rows = await s.scalars(
            select(m.ApiKey).where(m.ApiKey.project_id == pid).order_by(m.ApiKey.inserted_us)
        )
        items = [key_json(k) for k in rows]
    return {"keys": items, "count": len(items)}


async def create_key(plane: ControlPlane, project: ProjectRuntime, body: KeyIn) -> dict[str, Any]:
    key = new_project_key()
    row = m.ApiKey(
        id=new_id(),
        org_id=project.org_id,
        project_id=project.id,
        name=body.name or "project key",
        key_prefix=key_prefix(key),
        key_hash=hash_key(key),
        inserted_us=now_us(),
    )
    async with plane.sessions.begin() as s:
        s.add(row)
    return {
        **key_json(row),
        "key": key,
        "message": "Store this key now: it is shown only once.",
    }


async def delete_key(plane: ControlPlane, pid: str, kid: str) -> None:
    async with plane.sessions.begin() as s:
        row = await s.get(m.ApiKey, kid)
        if row is None or row.project_id != pid:
            raise ApiError(404, f"key {kid!r} not found")
        await s.delete(row)
    plane.revoke(key_id=kid)
