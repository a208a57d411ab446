"""Issue 14's defects, each reproduced against a real server process (SQLite and PostgreSQL
where storage matters) and shown fixed."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.server.live import FAST_ENV, StreamListener
from tests.integration.server.scenario import signed_ingest
from tests.support.postgres_service import fresh_database
from tests.support.server_process import ServerProcess


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("defects")
    env = {
        **FAST_ENV,
        "TRIPWISE_INGEST_RATE_LIMIT_PER_S": "1",
        "TRIPWISE_INGEST_RATE_LIMIT_BURST": "12",
    }
    if request.param == "sqlite":
        proc = ServerProcess(
            f"sqlite:///{tmp / 'd.db'}", "eb_admin_" + secrets.token_hex(16), env=env
        )
        proc.start(tmp / "server.log")
        yield proc
        log = proc.log()
        proc.stop()
    else:
        with fresh_database(request.getfixturevalue("pg_port")) as url:
            proc = ServerProcess(url, "eb_admin_" + secrets.token_hex(16), env=env)
            proc.start(tmp / "server.log")
            yield proc
            log = proc.log()
            proc.stop()
    assert "Traceback" not in log, log


def _admin(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=15
    )


def _project(server: ServerProcess, name: str) -> dict[str, Any]:
    """A project with one avg breaker (threshold 100, fast evaluation) behind one router."""
    with _admin(server) as http:
        p = http.post("/v1/projects", json={"name": name})
        assert p.status_code == 201, p.text
        pid, secret = p.json()["id"], p.json()["ingest_secret"]
        b = http.post(
            f"/v1/projects/{pid}/breakers",
            json={
                "name": "lat",
                "metric": "latency_ms",
                "kind": "avg",
                "op": "gt",
                "threshold": 100,
                "window_ms": 10_000,
                "min_count": 1,
                "eval_interval_ms": 100,
                "cooldown_ms": 600_000,
            },
        )
        assert b.status_code == 201, b.text
        r = http.post(f"/v1/projects/{pid}/routers", json={"name": "r"})
        assert r.status_code == 201, r.text
        rid = r.json().get("router", r.json())["id"]
        bid = b.json()["breaker"]["id"]
        link = http.post(f"/v1/projects/{pid}/routers/{rid}/breakers", json={"breaker_ids": [bid]})
        assert link.status_code in (200, 201, 204), link.text
    return {"pid": pid, "secret": secret, "rid": rid, "bid": bid}


def _samples(rid: str, values: list[float], ts: int, metric: str = "latency_ms") -> bytes:
    return json.dumps(
        {
            "samples": [
                {"router_id": rid, "metric": metric, "ts_ms": ts - i, "value": v, "ok": True}
                for i, v in enumerate(values)
            ]
        }
    ).encode()


def _sign(secret: str, ts: int, raw: bytes) -> dict[str, str]:
    sig = hmac.new(bytes.fromhex(secret), str(ts).encode() + b"." + raw, hashlib.sha256)
    return {
        "Content-Encoding": "gzip",
        "X-EB-Timestamp": str(ts),
        "X-EB-Signature": "v1=" + sig.hexdigest(),
    }


# -- 1, 2: huge values cannot silence other projects; ingest validates, retries are processed --


def test_huge_values_in_one_project_do_not_silence_trips_elsewhere(srv: ServerProcess) -> None:
    victims = [_project(srv, f"victim-{i}") for i in range(3)]
    attacker = _project(srv, "attacker")
    listeners = [StreamListener(srv.url, v["pid"], srv.admin_key) for v in victims]
    try:
        for lst in listeners:
            lst.wait_connected(1)
        now = int(time.time() * 1000)
        # two huge finite values in different window buckets of the attacker's breaker
        for ts in (now - 5_000, now):
            body = _samples(attacker["rid"], [1e308, -1e308, 1e308], ts)
            r = signed_ingest(srv.url, attacker["pid"], attacker["secret"], body, ts)
            assert r.status_code == 202, r.text
            assert r.json()["accepted"] == 0
            assert r.json()["rejected_by_reason"] == {"value_out_of_range": 3}
        for v in victims:
            r = signed_ingest(
                srv.url, v["pid"], v["secret"], _samples(v["rid"], [500.0] * 3, now), now + 1
            )
            assert r.status_code == 202 and r.json()["accepted"] == 3, r.text
        for lst in listeners:  # every client hears its own trip
            lst.wait_for({"breaker": "lat", "state": "open", "allow_rate": 0.0}, timeout=10)
        with _admin(srv) as http:
            for v in victims:
                events = http.get(f"/v1/projects/{v['pid']}/events").json()["events"]
                assert [e["to_state"] for e in events] == ["open"], events
            state = http.get(f"/v1/projects/{attacker['pid']}/breakers/{attacker['bid']}/state")
            assert state.json()["state"] == "closed"
    finally:
        for lst in listeners:
            lst.close()


def test_a_failed_batch_is_processed_on_retry_and_a_delivered_one_counts_once(
    srv: ServerProcess,
) -> None:
    p = _project(srv, "retry")
    now = int(time.time() * 1000)
    raw = gzip.compress(b'{"samples": [')  # valid gzip, truncated JSON: the batch fails (400)
    headers = _sign(p["secret"], now, raw)
    url = f"{srv.url}/v1/projects/{p['pid']}/ingest"
    for _ in range(2):  # the retry with the same signature is not swallowed by the replay guard
        r = httpx.post(url, content=raw, headers=headers)
        assert r.status_code == 400, r.text
    good = _samples(p["rid"], [1.0, 2.0], now)
    first = signed_ingest(srv.url, p["pid"], p["secret"], good, now)
    assert (first.status_code, first.json()["accepted"]) == (202, 2), first.text
    again = signed_ingest(srv.url, p["pid"], p["secret"], good, now)
    assert again.status_code == 202 and again.json() == {
        "accepted": 0,
        "rejected": 0,
        "replayed": True,
    }


# -- 3: text storage cannot hold is refused before it reaches storage ---------------------------


def test_lone_surrogates_and_nul_are_refused_with_400(srv: ServerProcess) -> None:
    p = _project(srv, "surrogates")
    pid, bid = p["pid"], p["bid"]
    bad_bodies = [
        ("PATCH", f"/v1/projects/{pid}/breakers/{bid}/metadata", '{"k": "\\udfff"}'),
        ("PATCH", f"/v1/projects/{pid}/breakers/{bid}", '{"kind_params": {"\\ud800": 1}}'),
        ("PATCH", f"/v1/projects/{pid}/breakers/{bid}", '{"actions": {"\\udfff": true}}'),
        (
            "POST",
            f"/v1/projects/{pid}/notification-channels",
            '{"name": "c", "channel": "webhook", "config": {"url": "http://x/\\udfff"}}',
        ),
        ("POST", f"/v1/projects/{pid}/routers", '{"name": "nul\\u0000name"}'),
        ("POST", "/v1/projects", '{"name": "p\\u0000"}'),
    ]
    with _admin(srv) as http:
        for method, path, body in bad_bodies:
            r = http.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
            assert r.status_code == 400, (path, r.status_code, r.text)
            assert "surrogate or NUL" in r.json()["message"]
        for path in (
            f"/v1/projects/{pid}/breakers/a%00b",
            "/v1/projects/a%00b",
            f"/v1/projects/{pid}/events?breaker_id=%00",
            "/v1/projects?workspace_id=x%00",
        ):
            r = http.get(path)
            assert r.status_code == 400, (path, r.status_code, r.text)
        # nothing was committed: reads keep working
        assert http.get(f"/v1/projects/{pid}/breakers").status_code == 200
        assert http.get(f"/v1/projects/{pid}/breakers/{bid}").status_code == 200
        assert http.get(f"/v1/projects/{pid}/notification-channels").status_code == 200
        # a valid surrogate pair (an emoji) is fine
        ok = http.patch(
            f"/v1/projects/{pid}/breakers/{bid}/metadata",
            content='{"k": "\\ud83d\\ude00"}',
            headers={"Content-Type": "application/json"},
        )
        assert ok.status_code == 200 and ok.json()["metadata"]["k"] == "\U0001f600", ok.text


# -- 4: Idempotency-Key reserves before executing; no plaintext secrets ------------------------


def test_idempotency_key_runs_a_request_once_even_when_concurrent(srv: ServerProcess) -> None:
    p = _project(srv, "idem")
    path = f"/v1/projects/{p['pid']}/breakers"
    body = {"name": "once", "metric": "m", "kind": "avg", "op": "gt", "threshold": 1}
    with _admin(srv) as http:  # back-to-back on one keep-alive connection
        key = uuid.uuid4().hex
        codes = [
            http.post(path, json=body, headers={"Idempotency-Key": key}).status_code
            for _ in range(5)
        ]
        assert codes == [201] * 5
    body2 = {**body, "name": "concurrent"}
    key2 = uuid.uuid4().hex
    results: list[httpx.Response] = []

    def call() -> None:
        with _admin(srv) as http:
            results.append(http.post(path, json=body2, headers={"Idempotency-Key": key2}))

    threads = [threading.Thread(target=call) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.status_code for r in results} <= {201, 409}, [r.text for r in results]
    created = {r.json()["breaker"]["id"] for r in results if r.status_code == 201}
    assert len(created) == 1
    with _admin(srv) as http:
        names = [b["name"] for b in http.get(path).json()["breakers"]]
    assert names.count("once") == 1 and names.count("concurrent") == 1


def test_idempotency_records_hold_no_plaintext_secret(srv: ServerProcess) -> None:
    p = _project(srv, "idem-secret")
    with _admin(srv) as http:
        key = uuid.uuid4().hex
        first = http.post(
            f"/v1/projects/{p['pid']}/keys", json={}, headers={"Idempotency-Key": key}
        )
        again = http.post(
            f"/v1/projects/{p['pid']}/keys", json={}, headers={"Idempotency-Key": key}
        )
    assert first.status_code == again.status_code == 201
    secret = first.json()["key"]
    assert again.json()["key"] == secret and again.headers["idempotent-replayed"] == "true"
    bodies = asyncio.run(_idempotency_bodies(srv.db_url))
    assert bodies and all(secret not in b for b in bodies)


async def _idempotency_bodies(db_url: str) -> list[str]:
    from sqlalchemy import text

    from tripwise.server.storage.database import create_engine

    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return [r[0] for r in await conn.execute(text("SELECT body FROM idempotency_records"))]
    finally:
        await engine.dispose()


# -- 5, 8: the signature is checked before the project's rate budget; non-ASCII digits ---------


def test_unauthenticated_posts_do_not_spend_the_projects_ingest_budget(srv: ServerProcess) -> None:
    p = _project(srv, "budget")  # this server's ingest burst is 12 per project
    url = f"{srv.url}/v1/projects/{p['pid']}/ingest"
    for _ in range(25):
        junk = httpx.post(
            url,
            content=b"{}",
            headers={"X-EB-Signature": "v1=00", "X-EB-Timestamp": str(int(time.time() * 1000))},
        )
        assert junk.status_code in (401, 429)
        assert junk.status_code != 202
    now = int(time.time() * 1000)
    r = signed_ingest(srv.url, p["pid"], p["secret"], _samples(p["rid"], [1.0], now), now)
    assert r.status_code == 202, r.text


def test_non_ascii_digits_in_the_timestamp_are_a_401(srv: ServerProcess) -> None:
    p = _project(srv, "digits")
    for ts in ("²", "1²", "¹²³"):  # str.isdigit() is true for these, int() refuses them
        r = httpx.post(
            f"{srv.url}/v1/projects/{p['pid']}/ingest",
            content=b"{}",
            headers={"X-EB-Signature": b"v1=00", "X-EB-Timestamp": ts.encode("latin-1")},
        )
        assert r.status_code == 401, r.text


# -- 6: parse work per request is bounded ------------------------------------------------------


def test_a_gzip_bomb_of_empty_objects_is_refused_before_parsing(srv: ServerProcess) -> None:
    p = _project(srv, "bomb")
    now = int(time.time() * 1000)
    url = f"{srv.url}/v1/projects/{p['pid']}/ingest"
    for size in (16 * 1024 * 1024, 3 * 1024 * 1024):  # above, and within, the 4 MiB cap
        raw = gzip.compress(b"[" + b"{}," * (size // 3) + b"{}]")
        assert len(raw) < 64 * 1024
        r = httpx.post(url, content=raw, headers=_sign(p["secret"], now, raw), timeout=30)
        assert r.status_code == 413, r.text
        now += 1
    ok = signed_ingest(srv.url, p["pid"], p["secret"], _samples(p["rid"], [1.0], now), now)
    assert ok.status_code == 202


# -- 7: admin keys can be created, listed and revoked ----------------------------------------


def test_admin_keys_are_managed_and_revoked_at_once(srv: ServerProcess) -> None:
    with _admin(srv) as http:
        created = http.post("/v1/admin_keys", json={"name": "ops"})
        assert created.status_code == 201, created.text
        new_key, new_id = created.json()["key"], created.json()["id"]
        listed = http.get("/v1/admin_keys").json()["keys"]
        assert new_id in [k["id"] for k in listed]
        assert all("key" not in k for k in listed)
    with httpx.Client(
        base_url=srv.url, headers={"Authorization": f"Bearer {new_key}"}, timeout=10
    ) as other:
        assert other.get("/v1/projects").status_code == 200
        with _admin(srv) as http:
            assert http.delete(f"/v1/admin_keys/{new_id}").status_code == 204
        assert other.get("/v1/projects").status_code == 401
    with _admin(srv) as http:
        mine = [k for k in http.get("/v1/admin_keys").json()["keys"]]
        if len(mine) == 1:
            r = http.delete(f"/v1/admin_keys/{mine[0]['id']}")
            assert r.status_code == 409, r.text


# -- 10: the API answers in its own words ------------------------------------------------------


def test_override_answers_in_request_words_and_automatic_is_no_event(srv: ServerProcess) -> None:
    p = _project(srv, "override")
    base = f"/v1/projects/{p['pid']}/breakers/{p['bid']}"
    with _admin(srv) as http:
        r = http.post(base + "/override", json={"mode": "force_open", "reason": "drill"})
        assert r.status_code == 200 and r.json()["override"] == "force_open", r.text
        r = http.post(base + "/override", json={"mode": "automatic"})
        assert r.status_code == 200 and r.json()["override"] == "automatic"
        events = http.get(f"/v1/projects/{p['pid']}/events").json()["events"]
        assert [(e["from_state"], e["to_state"]) for e in events] == [("closed", "open")]
        bad = http.post(
            f"/v1/projects/{p['pid']}/breakers",
            json={"name": "er", "metric": "m", "kind": "error_rate", "op": "gt", "threshold": 1.5},
        )
        assert bad.status_code == 422 and "0..1" in bad.json()["message"], bad.text
        broken = http.post(
            f"/v1/projects/{p['pid']}/breakers",
            content=b'{"name": ',
            headers={"Content-Type": "application/json"},
        )
        assert broken.status_code == 400
        assert "not valid JSON" in broken.json()["message"], broken.text


# -- 11: an empty project is a complete sync ------------------------------------------------


def test_sdk_connects_to_a_project_without_breakers(srv: ServerProcess) -> None:
    import tripswitch

    with _admin(srv) as http:
        pid = http.post("/v1/projects", json={"name": "empty"}).json()["id"]
        key = http.post(f"/v1/projects/{pid}/keys", json={}).json()["key"]
    client = tripswitch.Client(pid, api_key=key, base_url=srv.url, timeout=5)
    client.connect()  # raised TimeoutError before: no event ever came
    try:
        assert client.stats.sse_connected
    finally:
        client.close()


# -- 12: routing mistakes are visible ------------------------------------------------------


def test_samples_matching_no_breaker_are_counted_and_hinted(srv: ServerProcess) -> None:
    p = _project(srv, "routing")
    now = int(time.time() * 1000)
    body = _samples(p["rid"], [1.0, 2.0], now, metric="latency_msx")  # misspelt metric
    r = signed_ingest(srv.url, p["pid"], p["secret"], body, now)
    assert r.status_code == 202, r.text
    assert r.json()["unmatched"] == 2
    assert r.json()["hints"] == ["no breaker linked to router 'r' watches metric 'latency_msx'"]
    with _admin(srv) as http:
        router = http.get(f"/v1/projects/{p['pid']}/routers/{p['rid']}").json()
        router = router.get("router", router)
        assert router["unmatched_samples"] == {"latency_msx": 2}
        metrics = http.get("/metrics").text
    line = next(
        ln
        for ln in metrics.splitlines()
        if ln.startswith("tripwise_ingest_unmatched_samples_total") and p["rid"] in ln
    )
    assert 'metric="latency_msx"' in line and line.endswith(" 2.0")
