"""Breaker sync, batch states, rename and metadata merge-patch against a real server.

Contract §2.4/§2.5 and the stream rule of §1.1 (a final ``closed`` for a name that goes away).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from tripswitch.admin.types import (
    BatchGetBreakerStatesInput,
    BreakerKind,
    BreakerOp,
    CreateBreakerInput,
    SyncBreakersInput,
)

from tests.integration.server.live import Api, StreamListener, assert_error, running_server
from tests.integration.server.scenario import Setup
from tests.support.server_process import ServerProcess

CLOSED = {"state": "closed", "allow_rate": 1.0}
OPEN = {"state": "open", "allow_rate": 0.0}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("definitions")) as proc:
        yield proc


@pytest.fixture
def setup(server: ServerProcess) -> Setup:
    """A fresh project with breaker ``checkout-latency`` linked to ``checkout-router``."""
    return Setup(server.url, server.admin_key, name=f"defs-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def api(server: ServerProcess, setup: Setup) -> Iterator[Api]:
    client = Api(server, setup.pid)
    yield client
    client.close()


@pytest.fixture
def stream(server: ServerProcess, setup: Setup) -> Iterator[StreamListener]:
    listener = StreamListener(server.url, setup.pid, setup.pk)
    listener.wait_connected(1)
    yield listener
    listener.close()


def test_sync_upserts_listed_names_and_deletes_the_rest(
    setup: Setup, api: Api, stream: StreamListener
) -> None:
    old = api.create_breaker("b-old")
    r = api.request(
        "POST", api.project_path(f"/routers/{setup.rid}/breakers"), json={"breaker_id": old["id"]}
    )
    assert r.status_code == 204, r.text
    api.override(old["id"], "force_open")
    api.override(setup.bid, "force_open")
    stream.wait_for({"breaker": "b-old", **OPEN})
    seen_before_sync = len(stream.events)

    spec = SyncBreakersInput(
        breakers=[
            CreateBreakerInput(
                name="checkout-latency",
                metric="latency_ms",
                kind=BreakerKind.P95,
                op=BreakerOp.GT,
                threshold=700,
                window_ms=30_000,
            ),
            CreateBreakerInput(
                name="b-new",
                metric="errors",
                kind=BreakerKind.ERROR_RATE,
                op=BreakerOp.GT,
                threshold=0.5,
            ),
        ]
    )
    result = setup.admin.sync_breakers(setup.pid, spec)  # the SDK parses the bare array

    assert [b.name for b in result] == ["checkout-latency", "b-new"]
    kept, new = result
    # the surviving name keeps its id, router link and state; its definition is replaced
    assert kept.id == setup.bid and kept.router_id == setup.rid
    assert (kept.threshold, kept.window_ms) == (700, 30_000)
    assert api.state(setup.bid)["state"] == "open"
    # a new name gets the server defaults and starts closed
    assert new.id not in (setup.bid, old["id"])
    assert (new.window_ms, new.min_count, new.cooldown_ms) == (60_000, 1, 30_000)
    state = api.state(new.id)
    assert (state["name"], state["state"], state["allow_rate"]) == ("b-new", "closed", 1.0)
    # the unlisted name is gone everywhere: its own URL, the router, the list
    assert_error(api.request("GET", api.project_path(f"/breakers/{old['id']}")), 404, "not_found")
    router = api.request("GET", api.project_path(f"/routers/{setup.rid}")).json()["router"]
    assert [b["id"] for b in router["breakers"]] == [setup.bid]
    listed = api.request("GET", api.project_path("/breakers")).json()["breakers"]
    assert sorted(b["name"] for b in listed) == ["b-new", "checkout-latency"]
    # connected clients were told: the removed (open) name is closed, the new one exists
    stream.wait_for({"breaker": "b-old", **CLOSED}, after=seen_before_sync)
    stream.wait_for({"breaker": "b-new", **CLOSED}, after=seen_before_sync)
    assert {"breaker": "checkout-latency", **CLOSED} not in stream.events[seen_before_sync:]


def test_sync_rejects_bad_specs_without_changing_anything(setup: Setup, api: Api) -> None:
    before = api.request("GET", api.project_path("/breakers")).json()["breakers"]
    good = {"name": "x", "metric": "m", "kind": "avg", "op": "gt", "threshold": 1}
    dup = api.request("PUT", api.project_path("/breakers"), json={"breakers": [good, good]})
    assert "unique" in assert_error(dup, 422, "validation_failed")["message"]
    bad = api.request(
        "PUT",
        api.project_path("/breakers"),
        json={"breakers": [good, {**good, "name": "y", "kind": "median"}]},
    )
    assert_error(bad, 422, "validation_failed")
    after = api.request("GET", api.project_path("/breakers")).json()["breakers"]
    assert [b["id"] for b in after] == [b["id"] for b in before]


def test_sync_to_an_empty_set_removes_every_breaker(
    setup: Setup, api: Api, stream: StreamListener
) -> None:
    r = api.request("PUT", api.project_path("/breakers"), json={"breakers": []})
    assert r.status_code == 200 and r.json() == []
    assert api.request("GET", api.project_path("/breakers")).json()["breakers"] == []
    stream.wait_for({"breaker": "checkout-latency", **CLOSED}, after=1)
    status = api.request("GET", api.project_path("/status")).json()
    assert (status["open_count"], status["closed_count"]) == (0, 0)


def test_batch_states_filters(server: ServerProcess, setup: Setup, api: Api) -> None:
    b2 = api.create_breaker("b2")["id"]
    b3 = api.create_breaker("b3")["id"]
    api.override(b3, "force_open")
    r = api.request(
        "POST", api.project_path(f"/routers/{setup.rid}/breakers"), json={"breaker_ids": [b2]}
    )
    assert r.status_code == 204, r.text

    def batch(body: dict[str, object], key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        r = api.request(
            "POST", api.project_path("/breakers/state:batch"), json=body, headers=headers
        )
        assert r.status_code == 200, r.text
        assert isinstance(r.json(), list)  # bare array (Go SDK requires it)
        return {s["breaker_id"]: s["state"] for s in r.json()}

    everything = {setup.bid: "closed", b2: "closed", b3: "open"}
    assert batch({}) == everything
    assert batch({"breaker_ids": [b3, "no-such-id"]}) == {b3: "open"}  # unknown ids omitted
    assert batch({"router_id": setup.rid}) == {setup.bid: "closed", b2: "closed"}
    assert batch({"router_id": setup.rid, "breaker_ids": [b2, b3]}) == {b2: "closed"}
    assert batch({"router_id": "no-such-router"}) == {}
    # project keys may read their own project's states...
    assert batch({"breaker_ids": [b3]}, key=setup.pk) == {b3: "open"}
    # ...and the SDK's admin call parses the answer
    states = setup.admin.batch_get_breaker_states(
        setup.pid, BatchGetBreakerStatesInput(breaker_ids=[b3, b2])
    )
    assert {(s.breaker_id, str(s.state), s.allow_rate) for s in states} == {
        (b3, "open", 0.0),
        (b2, "closed", 1.0),
    }
    # ...but not another project's
    other = Setup(server.url, server.admin_key, name=f"other-{uuid.uuid4().hex[:6]}")
    r = api.request(
        "POST",
        f"/v1/projects/{other.pid}/breakers/state:batch",
        json={},
        headers={"Authorization": f"Bearer {setup.pk}"},
    )
    assert_error(r, 403, "forbidden")
    bad = api.request("POST", api.project_path("/breakers/state:batch"), json={"breaker_ids": 5})
    assert_error(bad, 422, "validation_failed")


def test_rename_sends_a_final_closed_for_the_old_name(
    setup: Setup, api: Api, stream: StreamListener
) -> None:
    api.override(setup.bid, "force_open")
    stream.wait_for({"breaker": "checkout-latency", **OPEN})
    meta_url = api.project_path("/breakers/metadata")
    etag = api.request("GET", meta_url).headers["etag"]

    r = api.request("PATCH", api.project_path(f"/breakers/{setup.bid}"), json={"name": "checkout"})
    assert r.status_code == 200 and r.json()["breaker"]["name"] == "checkout"

    farewell = stream.wait_for({"breaker": "checkout-latency", **CLOSED}, after=1)
    renamed = stream.wait_for({"breaker": "checkout", **OPEN})  # same breaker, still open
    assert farewell < renamed
    assert api.state(setup.bid)["state"] == "open"
    changed = api.request("GET", meta_url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert [b["name"] for b in changed.json()["breakers"]] == ["checkout"]
    # renaming onto a taken name is a conflict and tells the clients nothing
    api.create_breaker("taken")
    stream.wait_for({"breaker": "taken", **CLOSED})
    n = len(stream.events)
    clash = api.request("PATCH", api.project_path(f"/breakers/{setup.bid}"), json={"name": "taken"})
    assert_error(clash, 409, "conflict")
    api.override(setup.bid, "force_closed")  # a marker event after the failed rename
    stream.wait_for({"breaker": "checkout", **CLOSED}, after=n)
    assert stream.events[n] == {"breaker": "checkout", **CLOSED}
    assert (
        api.request("GET", api.project_path(f"/breakers/{setup.bid}")).json()["breaker"]["name"]
        == "checkout"
    )


def test_breaker_metadata_merge_patch(setup: Setup, api: Api) -> None:
    url = api.project_path(f"/breakers/{setup.bid}/metadata")

    def patch(body: object) -> dict[str, str]:
        r = api.request("PATCH", url, json=body)
        assert r.status_code == 200, r.text
        assert (r.json()["id"], r.json()["name"]) == (setup.bid, "checkout-latency")
        return dict(r.json()["metadata"])

    assert patch({"team": "payments", "env": "prod"}) == {"team": "payments", "env": "prod"}
    # wrapped form; null deletes; other keys are kept
    assert patch({"metadata": {"env": None, "tier": "1"}}) == {"team": "payments", "tier": "1"}
    assert patch({"missing": None}) == {"team": "payments", "tier": "1"}
    setup.admin.update_breaker_metadata(setup.pid, setup.bid, {"team": "search"})  # the SDK call
    current = {"team": "search", "tier": "1"}
    assert (
        api.request("GET", api.project_path(f"/breakers/{setup.bid}")).json()["breaker"]["metadata"]
        == current
    )

    # every limit answers 422 naming the problem, and nothing is merged
    too_many = {f"k{i}": "v" for i in range(19)}  # 2 existing + 19 = 21 > 20
    assert "20" in assert_error(api.request("PATCH", url, json=too_many), 422)["message"]
    assert_error(api.request("PATCH", url, json={"k" * 65: "v"}), 422, "validation_failed")
    assert_error(api.request("PATCH", url, json={"k": "v" * 256}), 422, "validation_failed")
    msg = assert_error(api.request("PATCH", url, json={"n": 5}), 422)["message"]
    assert "'n'" in msg and "string" in msg
    assert_error(api.request("PATCH", url, json=["not", "a", "map"]), 400, "bad_request")
    exactly_twenty = {f"k{i}": "v" * 255 for i in range(18)}
    assert len(patch(exactly_twenty)) == 20
    listed = api.request("GET", api.project_path("/breakers/metadata")).json()["breakers"]
    assert listed[0]["metadata"] == {**current, **exactly_twenty}
    assert_error(
        api.request("PATCH", api.project_path("/breakers/no-such-id/metadata"), json={}), 404
    )


def test_breaker_definition_endpoints_need_an_admin_key(
    server: ServerProcess, setup: Setup, api: Api
) -> None:
    as_project = {"Authorization": f"Bearer {setup.pk}"}
    for method, path, body in (
        ("PUT", "/breakers", {"breakers": []}),
        ("PATCH", f"/breakers/{setup.bid}/metadata", {"a": "b"}),
        ("PATCH", f"/breakers/{setup.bid}", {"name": "hijack"}),
    ):
        r = api.request(method, api.project_path(path), json=body, headers=as_project)
        assert_error(r, 403, "forbidden")
    assert (
        api.request("GET", api.project_path(f"/breakers/{setup.bid}")).json()["breaker"]["name"]
        == "checkout-latency"
    )
