"""Workspace CRUD, router metadata and breaker links against a real server."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from tripswitch.admin.types import (
    CreateProjectInput,
    CreateWorkspaceInput,
    LinkBreakerInput,
    UpdateWorkspaceInput,
)
from tripswitch.errors import ConflictError, NotFoundError

from tests.integration.server.live import Api, assert_error, running_server
from tests.integration.server.scenario import Setup, signed_ingest, wait_until
from tests.support.server_process import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("workspaces")) as proc:
        yield proc


@pytest.fixture
def api(server: ServerProcess) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.close()


@pytest.fixture
def setup(server: ServerProcess) -> Setup:
    return Setup(server.url, server.admin_key, name=f"routers-{uuid.uuid4().hex[:6]}")


def test_workspace_crud(api: Api, setup: Setup) -> None:
    slug = f"team-{uuid.uuid4().hex[:6]}"
    r = api.request("POST", "/v1/workspaces", json={"name": "Team", "slug": slug})
    assert r.status_code == 201, r.text
    ws = r.json()
    assert set(ws) >= {"id", "name", "slug", "org_id", "inserted_at"}
    assert (ws["name"], ws["slug"]) == ("Team", slug) and ws["inserted_at"].endswith("Z")
    wid = ws["id"]

    listed = api.request("GET", "/v1/workspaces").json()["workspaces"]
    assert {"default", slug} <= {w["slug"] for w in listed}
    assert api.request("GET", f"/v1/workspaces/{wid}").json() == ws
    # duplicate slug, bad slug, unknown id
    assert_error(
        api.request("POST", "/v1/workspaces", json={"name": "x", "slug": slug}), 409, "conflict"
    )
    assert_error(
        api.request("POST", "/v1/workspaces", json={"name": "x", "slug": "has space"}), 422
    )
    assert_error(api.request("GET", f"/v1/workspaces/{uuid.uuid4()}"), 404, "not_found")
    # update through the SDK: name and slug
    new_slug = slug + "-2"
    updated = setup.admin.update_workspace(wid, UpdateWorkspaceInput(name="Team 2", slug=new_slug))
    assert (updated.id, updated.name, updated.slug) == (wid, "Team 2", new_slug)
    assert_error(
        api.request("PATCH", f"/v1/workspaces/{wid}", json={"slug": "default"}), 409, "conflict"
    )
    assert api.request("GET", f"/v1/workspaces/{wid}").json()["slug"] == new_slug

    # a workspace that still holds a project cannot be deleted
    project = setup.admin.create_project(CreateProjectInput(name="inside", workspace_id=wid))
    assert project.workspace_id == wid
    in_ws = api.request("GET", "/v1/projects", params={"workspace_id": wid}).json()
    assert [p["id"] for p in in_ws["projects"]] == [project.id] and in_ws["count"] == 1
    busy = assert_error(api.request("DELETE", f"/v1/workspaces/{wid}"), 409, "conflict")
    assert "project" in busy["message"]
    with pytest.raises(ConflictError):
        setup.admin.delete_workspace(wid, confirm_name="Team 2")
    assert api.request("GET", f"/v1/workspaces/{wid}").status_code == 200

    setup.admin.delete_project(project.id, confirm_name="inside")
    setup.admin.delete_workspace(wid, confirm_name="Team 2")  # GETs, compares, DELETEs
    assert_error(api.request("GET", f"/v1/workspaces/{wid}"), 404, "not_found")
    assert_error(api.request("DELETE", f"/v1/workspaces/{wid}"), 404, "not_found")
    assert wid not in {w["id"] for w in api.request("GET", "/v1/workspaces").json()["workspaces"]}


def test_default_workspace_and_project_placement(api: Api, setup: Setup) -> None:
    default = next(
        w
        for w in api.request("GET", "/v1/workspaces").json()["workspaces"]
        if w["slug"] == "default"
    )
    # a project created without workspace_id lands in the default workspace
    assert api.request("GET", f"/v1/projects/{setup.pid}").json()["workspace_id"] == default["id"]
    assert_error(api.request("DELETE", f"/v1/workspaces/{default['id']}"), 409, "conflict")
    r = api.request("POST", "/v1/projects", json={"name": "x", "workspace_id": str(uuid.uuid4())})
    assert_error(r, 404, "not_found")
    ws = setup.admin.create_workspace(CreateWorkspaceInput(name="W", slug=uuid.uuid4().hex[:8]))
    setup.admin.delete_workspace(ws.id, confirm_name="W")  # an empty workspace goes at once
    with pytest.raises(NotFoundError):
        setup.admin.get_workspace(ws.id)


def test_workspaces_need_an_admin_key(api: Api, setup: Setup) -> None:
    as_project = {"Authorization": f"Bearer {setup.pk}"}
    assert_error(api.request("GET", "/v1/workspaces", headers=as_project), 403, "forbidden")
    r = api.request("POST", "/v1/workspaces", json={"name": "n", "slug": "s"}, headers=as_project)
    assert_error(r, 403, "forbidden")
    assert_error(api.request("GET", "/v1/workspaces", headers={"Authorization": "Bearer x"}), 401)


def test_router_metadata_merge_patch(server: ServerProcess, setup: Setup) -> None:
    api = Api(server, setup.pid)
    try:
        url = api.project_path(f"/routers/{setup.rid}/metadata")
        list_url = api.project_path("/routers/metadata")
        etag = api.request("GET", list_url).headers["etag"]

        r = api.request("PATCH", url, json={"region": "eu", "tier": "gold"})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "id": setup.rid,
            "name": "checkout-router",
            "metadata": {"region": "eu", "tier": "gold"},
        }
        r = api.request("PATCH", url, json={"metadata": {"tier": None, "owner": "pay"}})
        assert r.json()["metadata"] == {"region": "eu", "owner": "pay"}
        setup.admin.update_router_metadata(setup.pid, setup.rid, {"region": "us"})

        expected = {"region": "us", "owner": "pay"}
        router = setup.admin.get_router(setup.pid, setup.rid)
        assert dict(router.metadata or {}) == expected
        listed = api.request("GET", list_url, headers={"If-None-Match": etag})
        assert listed.status_code == 200 and listed.headers["etag"] != etag
        assert listed.json()["routers"] == [
            {"id": setup.rid, "name": "checkout-router", "metadata": expected}
        ]
        # the SDK's runtime client sees it too (project key)
        ts = setup.client(timeout=10)  # fetches the metadata once at connect
        ts.connect()
        try:
            wait_until(lambda: ts.get_routers_metadata() is not None, 5, "router metadata")
            assert [dict(r.metadata or {}) for r in ts.get_routers_metadata() or []] == [expected]
        finally:
            ts.close(timeout=1)
        # limits
        assert_error(api.request("PATCH", url, json={"n": 1}), 422, "validation_failed")
        assert_error(
            api.request("PATCH", url, json={f"k{i}": "v" for i in range(19)}), 422
        )  # 2 + 19 > 20
        assert_error(api.request("PATCH", url, json="x"), 400, "bad_request")
        assert_error(api.request("PATCH", api.project_path("/routers/nope/metadata"), json={}), 404)
        assert dict(setup.admin.get_router(setup.pid, setup.rid).metadata or {}) == expected
        # PATCH of the router itself replaces the whole map
        r = api.request("PATCH", api.project_path(f"/routers/{setup.rid}"), json={"metadata": {}})
        assert r.status_code == 200 and r.json()["router"]["metadata"] == {}
    finally:
        api.close()


def test_link_and_unlink(server: ServerProcess, setup: Setup) -> None:
    api = Api(server, setup.pid)
    try:
        b2 = api.create_breaker("b2")["id"]
        b3 = api.create_breaker("b3")["id"]
        links = api.project_path(f"/routers/{setup.rid}/breakers")

        def linked(rid: str = setup.rid) -> list[str]:
            router = api.request("GET", api.project_path(f"/routers/{rid}")).json()["router"]
            assert router["breaker_count"] == len(router["breakers"])
            return [b["id"] for b in router["breakers"]]

        # both body forms; an already-linked id is a no-op
        setup.admin.link_breaker(
            setup.pid, setup.rid, LinkBreakerInput(breaker_ids=[b2, setup.bid])
        )
        assert api.request("POST", links, json={"breaker_id": b3}).status_code == 204
        assert linked() == [setup.bid, b2, b3]
        # atomic: one unknown id links nothing
        r = api.request("POST", links, json={"breaker_ids": [b2, "no-such-breaker"]})
        assert "no-such-breaker" in assert_error(r, 404, "not_found")["message"]
        assert_error(api.request("POST", links, json={}), 422, "validation_failed")
        assert_error(api.request("POST", links, json={"breaker_ids": []}), 422)
        r = api.request(
            "POST", api.project_path("/routers/no-such-router/breakers"), json={"breaker_id": b2}
        )
        assert_error(r, 404, "not_found")
        # a breaker may belong to several routers; router_id is the first link
        second = api.request(
            "POST", api.project_path("/routers"), json={"name": "second", "breaker_ids": [b2]}
        ).json()["router"]
        assert [b["id"] for b in second["breakers"]] == [b2]
        b2_json = api.request("GET", api.project_path(f"/breakers/{b2}")).json()
        assert b2_json["router_id"] == setup.rid
        assert b2_json["breaker"]["router_ids"] == [setup.rid, second["id"]]

        # unlink: 204, then 404 when not linked; delete needs an empty router
        setup.admin.unlink_breaker(setup.pid, setup.rid, b2)
        assert linked() == [setup.bid, b3]
        assert api.request("GET", api.project_path(f"/breakers/{b2}")).json()["router_ids"] == [
            second["id"]
        ]
        assert_error(api.request("DELETE", f"{links}/{b2}"), 404, "not_found")
        assert_error(api.request("DELETE", api.project_path(f"/routers/{second['id']}")), 409)
        r = api.request("DELETE", api.project_path(f"/routers/{second['id']}/breakers/{b2}"))
        assert r.status_code == 204
        assert (
            api.request("DELETE", api.project_path(f"/routers/{second['id']}")).status_code == 204
        )
        assert_error(api.request("GET", api.project_path(f"/routers/{second['id']}")), 404)
        # deleting a linked breaker removes its link
        assert api.request("DELETE", api.project_path(f"/breakers/{b3}")).status_code == 204
        assert linked() == [setup.bid]
    finally:
        api.close()


def test_links_decide_which_breakers_see_samples(server: ServerProcess, setup: Setup) -> None:
    api = Api(server, setup.pid)
    try:
        fields = {"metric": "errors", "kind": "count", "op": "gte", "threshold": 3}
        kept = api.create_breaker("kept", eval_interval_ms=100, **fields)["id"]
        dropped = api.create_breaker("dropped", eval_interval_ms=100, **fields)["id"]
        links = api.project_path(f"/routers/{setup.rid}/breakers")
        assert api.request("POST", links, json={"breaker_ids": [kept, dropped]}).status_code == 204
        assert api.request("DELETE", f"{links}/{dropped}").status_code == 204

        now = int(time.time() * 1000)
        samples = [
            {"router_id": setup.rid, "metric": "errors", "ts_ms": now, "value": 1, "ok": False}
        ] * 5
        r = signed_ingest(server.url, setup.pid, setup.secret, json.dumps(samples).encode(), now)
        assert r.json() == {"accepted": 5, "rejected": 0}
        wait_until(lambda: api.state(kept)["state"] == "open", 5, "linked breaker trips")
        opened = int(time.time() * 1000)
        # let the evaluator run several more rounds, then the unlinked one is still closed
        wait_until(
            lambda: (
                api.request("GET", api.project_path("/status")).json()["last_eval_ms"]
                > opened + 500
            ),
            5,
            "more evaluation rounds",
        )
        assert api.state(dropped)["state"] == "closed"
    finally:
        api.close()
