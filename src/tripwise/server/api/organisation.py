"""Admin routes: workspaces, projects, ingest secrets, project keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from tripwise.server.auth import Admin, AdminProject, Plane
from tripwise.server.schemas import KeyIn, ProjectIn, ProjectPatch, WorkspaceIn, WorkspacePatch
from tripwise.server.services import orgs

router = APIRouter(prefix="/v1", tags=["organisation"])
Id = Annotated[str, Path(max_length=200)]


@router.get("/admin_keys")
async def list_admin_keys(principal: Admin, plane: Plane) -> dict[str, Any]:
    """The organisation's admin keys (prefixes only; a key is shown once, at creation)."""
    return await orgs.list_admin_keys(plane, principal.org_id)


@router.post("/admin_keys", status_code=201)
async def create_admin_key(
    principal: Admin, plane: Plane, body: KeyIn | None = None
) -> dict[str, Any]:
    return await orgs.create_admin_key(plane, principal.org_id, body or KeyIn())


@router.delete("/admin_keys/{key_id}", status_code=204)
async def delete_admin_key(key_id: Id, principal: Admin, plane: Plane) -> Response:
    """Revoke an admin key at once; 409 for the organisation's last admin key."""
    await orgs.delete_admin_key(plane, principal.org_id, key_id)
    return Response(status_code=204)


@router.get("/workspaces")
async def list_workspaces(principal: Admin, plane: Plane) -> dict[str, Any]:
    return await orgs.list_workspaces(plane, principal.org_id)


@router.post("/workspaces", status_code=201)
async def create_workspace(body: WorkspaceIn, principal: Admin, plane: Plane) -> dict[str, Any]:
    return await orgs.create_workspace(plane, principal.org_id, body)


@router.get("/workspaces/{workspace_id}")
async def get_workspace(workspace_id: Id, principal: Admin, plane: Plane) -> dict[str, Any]:
    return await orgs.get_workspace(plane, principal.org_id, workspace_id)


@router.patch("/workspaces/{workspace_id}")
async def update_workspace(
    workspace_id: Id, body: WorkspacePatch, principal: Admin, plane: Plane
) -> dict[str, Any]:
    return await orgs.update_workspace(plane, principal.org_id, workspace_id, body)


@router.delete("/workspaces/{workspace_id}", status_code=204)
async def delete_workspace(workspace_id: Id, principal: Admin, plane: Plane) -> Response:
    await orgs.delete_workspace(plane, principal.org_id, workspace_id)
    return Response(status_code=204)


@router.get("/projects")
async def list_projects(
    principal: Admin,
    plane: Plane,
    workspace_id: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    return await orgs.list_projects(plane, principal.org_id, workspace_id)


@router.post("/projects", status_code=201)
async def create_project(body: ProjectIn, principal: Admin, plane: Plane) -> dict[str, Any]:
    return await orgs.create_project(plane, principal.org_id, body)


@router.get("/projects/{project_id}")
async def get_project(project: AdminProject, plane: Plane) -> dict[str, Any]:
    return await orgs.get_project(plane, project.org_id, project.id)


@router.patch("/projects/{project_id}")
async def update_project(body: ProjectPatch, project: AdminProject, plane: Plane) -> dict[str, Any]:
    return await orgs.update_project(plane, project.org_id, project.id, body)


@router.delete("/projects/{project_id}", status_code=204)
async def delete_project(project: AdminProject, plane: Plane) -> Response:
    await orgs.delete_project(plane, project.org_id, project.id)
    return Response(status_code=204)


@router.post("/projects/{project_id}/ingest_secret/rotate")
async def rotate_ingest_secret(project: AdminProject, plane: Plane) -> dict[str, Any]:
    return await orgs.rotate_ingest_secret(plane, project.org_id, project.id)


@router.get("/projects/{project_id}/keys")
async def list_keys(project: AdminProject, plane: Plane) -> dict[str, Any]:
    return await orgs.list_keys(plane, project.id)


@router.post("/projects/{project_id}/keys", status_code=201)
async def create_key(
    project: AdminProject, plane: Plane, body: KeyIn | None = None
) -> dict[str, Any]:
    return await orgs.create_key(plane, project, body or KeyIn())


@router.delete("/projects/{project_id}/keys/{key_id}", status_code=204)
async def delete_key(key_id: Id, project: AdminProject, plane: Plane) -> Response:
    await orgs.delete_key(plane, project.id, key_id)
    return Response(status_code=204)
