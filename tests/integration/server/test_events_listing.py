"""The event log (contract §2.6): cursor pagination, time filters, breaker filter, bad input."""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from tripswitch.admin.types import ListEventsParams

from tests.integration.server.live import Api, assert_error, running_server
from tests.integration.server.scenario import Setup
from tests.support.server_process import ServerProcess

N_EVENTS = 105  # more than the default page of 100


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("events")) as proc:
        yield proc


@pytest.fixture(scope="module")
def setup(server: ServerProcess) -> Setup:
    return Setup(server.url, server.admin_key, name=f"events-{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def api(server: ServerProcess, setup: Setup) -> Iterator[Api]:
    client = Api(server, setup.pid)
    # Every manual override is a recorded transition: N_EVENTS events on the main breaker.
    for i in range(N_EVENTS):
        client.override(setup.bid, "force_open" if i % 2 == 0 else "force_closed", f"#{i}")
    yield client
    client.close()


def events(api: Api, **params: Any) -> dict[str, Any]:
    r = api.request("GET", api.project_path("/events"), params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["returned"] == len(body["events"])
    return dict(body)


def walk(api: Api, **params: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """Follow ``next_cursor`` to the end; returns every event and the page sizes."""
    out: list[dict[str, Any]] = []
    sizes: list[int] = []
    cursor = None
    while True:
        page = events(api, **params, **({"cursor": cursor} if cursor else {}))
        out += page["events"]
        sizes.append(page["returned"])
        cursor = page["next_cursor"]
        if not cursor:
            return out, sizes
        assert len(sizes) <= 1000, "pagination does not end"


def ts(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))


def test_default_page_then_cursor_covers_every_event_once(api: Api, setup: Setup) -> None:
    first = events(api)
    assert first["returned"] == 100 and first["next_cursor"]
    rest = events(api, cursor=first["next_cursor"])
    assert rest["returned"] == N_EVENTS - 100 and rest["next_cursor"] is None
    everything = first["events"] + rest["events"]
    assert len({e["id"] for e in everything}) == N_EVENTS
    # newest first: the last override (#104) leads, the first (#0) closes the list
    assert [e["reason"] for e in everything] == [
        f"manual override: {'forced_open' if i % 2 == 0 else 'forced_closed'} (#{i})"
        for i in reversed(range(N_EVENTS))
    ]
    assert all(ts(a) >= ts(b) for a, b in itertools.pairwise(everything))
    assert {e["breaker_id"] for e in everything} == {setup.bid}
    assert {e["breaker_name"] for e in everything} == {"checkout-latency"}


@pytest.mark.parametrize("limit", [1, 7, 50, 104, 105])
def test_small_pages_have_no_duplicates_or_gaps(api: Api, limit: int) -> None:
    reference = events(api, limit=1000)["events"]
    assert len(reference) == N_EVENTS
    walked, sizes = walk(api, limit=limit)
    assert [e["id"] for e in walked] == [e["id"] for e in reference]
    assert all(size == limit for size in sizes[:-1]) and 0 < sizes[-1] <= limit


def test_limit_above_the_maximum_is_clamped_and_bad_limits_are_400s(api: Api) -> None:
    assert events(api, limit=5000)["returned"] == N_EVENTS
    for bad in (0, -3, "ten"):
        r = api.request("GET", api.project_path("/events"), params={"limit": bad})
        assert r.status_code in (400, 422), r.text
        assert_error(r, r.status_code)


def test_sdk_iter_events_walks_every_page(api: Api, setup: Setup) -> None:
    got = list(setup.admin.iter_events(setup.pid, ListEventsParams(limit=20)))
    assert len({e.id for e in got}) == len(got) == N_EVENTS


def test_cursor_is_stable_while_new_events_arrive(server: ServerProcess) -> None:
    s = Setup(server.url, server.admin_key, name=f"stable-{uuid.uuid4().hex[:6]}")
    api = Api(server, s.pid)
    try:
        for i in range(10):
            api.override(s.bid, "force_open" if i % 2 == 0 else "force_closed", f"old{i}")
        page1 = events(api, limit=4)
        page2 = events(api, limit=4, cursor=page1["next_cursor"])
        for i in range(6):
            api.override(s.bid, "force_open" if i % 2 == 0 else "force_closed", f"new{i}")
        # the same cursor gives the same page: newer events do not shift older pages
        again = events(api, limit=4, cursor=page1["next_cursor"])
        assert [e["id"] for e in again["events"]] == [e["id"] for e in page2["events"]]
        assert again["next_cursor"] == page2["next_cursor"]
        rest, _ = walk(api, limit=4, cursor=page2["next_cursor"])
        assert [e["reason"].split("(")[1] for e in rest] == ["old1)", "old0)"]
        assert events(api, limit=1)["events"][0]["reason"].endswith("(new5)")
    finally:
        api.close()


def test_time_filters_are_inclusive_start_exclusive_end(api: Api) -> None:
    everything = events(api, limit=1000)["events"]
    newer, older = everything[10], everything[40]  # newest first
    start, end = older["timestamp"], newer["timestamp"]
    window = events(api, limit=1000, start_time=start, end_time=end)["events"]
    ids = [e["id"] for e in window]
    assert older["id"] in ids and newer["id"] not in ids
    expected = [e["id"] for e in everything if ts(older) <= ts(e) < ts(newer)]
    assert ids == expected and len(ids) >= 30
    # the same instant written the ways the SDKs send it: +00:00 (URL-encoded by httpx),
    # naive (= UTC), Z; Python's isoformat() of an aware datetime
    t = ts(older)
    for text in (
        t.isoformat(),
        t.replace(tzinfo=None).isoformat(),
        t.isoformat().replace("+00:00", "Z"),
        t.astimezone(timezone.utc).isoformat(timespec="microseconds"),
    ):
        got = [e["id"] for e in events(api, limit=1000, start_time=text, end_time=end)["events"]]
        assert got == expected, text
    # an offset other than UTC means the same instant
    cet = t.astimezone(datetime.now().astimezone().tzinfo).isoformat()
    got = [e["id"] for e in events(api, limit=1000, start_time=cet, end_time=end)["events"]]
    assert got == expected
    # filters and pagination together
    walked, _ = walk(api, limit=7, start_time=start, end_time=end)
    assert [e["id"] for e in walked] == expected
    # an empty range
    assert events(api, start_time=end, end_time=start)["events"] == []
    assert events(api, start_time=end, end_time=start)["next_cursor"] is None


def test_breaker_filter(api: Api, setup: Setup) -> None:
    other = api.create_breaker("other")["id"]
    api.override(other, "force_open", "only on other")
    mine = events(api, breaker_id=other)["events"]
    assert [(e["breaker_id"], e["reason"]) for e in mine] == [
        (other, "manual override: forced_open (only on other)")
    ]
    assert events(api, breaker_id="no-such-breaker")["events"] == []
    assert {e["breaker_id"] for e in walk(api, limit=50, breaker_id=setup.bid)[0]} == {setup.bid}


def _cursor(parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!",
        "%%%",
        _cursor([1, "x", 3]),
        _cursor(["x", "y"]),
        _cursor({"ts": 1}),
        _cursor([1.5, "x"]),
        _cursor([10**30, "x"]),
        _cursor([-(10**30), "x"]),
        _cursor([None, None]),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_bad_cursor_is_400_with_the_error_body(api: Api, cursor: str) -> None:
    r = api.request("GET", api.project_path("/events"), params={"cursor": cursor})
    body = assert_error(r, 400, "bad_request")
    assert "cursor" in body["message"]


@pytest.mark.parametrize("param", ["start_time", "end_time"])
@pytest.mark.parametrize("value", ["yesterday", "2026-13-45T00:00:00", "99999-01-01T00:00:00"])
def test_bad_time_is_400_naming_the_value(api: Api, param: str, value: str) -> None:
    r = api.request("GET", api.project_path("/events"), params={param: value})
    assert value in assert_error(r, 400, "bad_request")["message"]


@pytest.mark.parametrize("path", ["/breakers", "/routers", "/notification-channels"])
@pytest.mark.parametrize("cursor", ["garbage!", _cursor(["x"]), _cursor([None]), _cursor([-5])])
def test_bad_cursor_on_other_lists_is_400(api: Api, path: str, cursor: str) -> None:
    r = api.request("GET", api.project_path(path), params={"cursor": cursor, "limit": 1})
    assert_error(r, 400, "bad_request")


def test_project_key_cannot_read_events(api: Api, setup: Setup) -> None:
    r = api.request(
        "GET", api.project_path("/events"), headers={"Authorization": f"Bearer {setup.pk}"}
    )
    assert_error(r, 403, "forbidden")
