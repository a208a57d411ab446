"""Security, limits and API conventions against a real server process (SQLite)."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.server.scenario import Setup, signed_ingest
from tests.support.server_process import ServerProcess


@pytest.fixture(scope="module")
def setup(sqlite_server: ServerProcess) -> Setup:
    return Setup(sqlite_server.url, sqlite_server.admin_key, name="rules")


def admin_headers(server: ServerProcess, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}", **extra}


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["message"], str) and body["message"]
    if code:
        assert body["code"] == code
    return body


def test_keys_are_stored_hashed(sqlite_server: ServerProcess, setup: Setup) -> None:
    import sqlite3

    db = sqlite_server.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        hashes = [h for (h,) in conn.execute("SELECT key_hash FROM api_keys")]
    assert setup.pk not in hashes and sqlite_server.admin_key not in hashes
    assert all(len(h) == 64 for h in hashes)


def test_cross_project_key_is_forbidden(sqlite_server: ServerProcess, setup: Setup) -> None:
    other = Setup(sqlite_server.url, sqlite_server.admin_key, name="other")
    r = httpx.get(
        f"{sqlite_server.url}/v1/projects/{other.pid}/status",
        headers={"Authorization": f"Bearer {setup.pk}"},
    )
    assert_error(r, 403, "forbidden")
    r = httpx.get(
        f"{sqlite_server.url}/v1/projects/{setup.pid}/status",
        headers={"Authorization": f"Bearer {setup.pk}"},
    )
    assert r.status_code == 200 and r.json()["closed_count"] == 1
    r = httpx.get(f"{sqlite_server.url}/v1/projects/{setup.pid}/status")
    assert_error(r, 401, "unauthorized")


def test_malformed_json_is_400_with_error_body(sqlite_server: ServerProcess, setup: Setup) -> None:
    r = httpx.post(
        f"{sqlite_server.url}/v1/projects/{setup.pid}/breakers",
        content=b"{not json",
        headers=admin_headers(sqlite_server, **{"Content-Type": "application/json"}),
    )
    assert_error(r, 400, "bad_request")
    r = httpx.post(
        f"{sqlite_server.url}/v1/projects/{setup.pid}/breakers",
        json={"name": "x", "metric": "m", "kind": "bogus", "op": "gt", "threshold": 1},
        headers=admin_headers(sqlite_server),
    )
    body = assert_error(r, 422, "validation_failed")
    assert "kind" in body["message"]


def test_duplicate_breaker_name_conflicts(sqlite_server: ServerProcess, setup: Setup) -> None:
    r = httpx.post(
        f"{sqlite_server.url}/v1/projects/{setup.pid}/breakers",
        json={"name": "checkout-latency", "metric": "m", "kind": "avg", "op": "gt", "threshold": 1},
        headers=admin_headers(sqlite_server),
    )
    assert_error(r, 409, "conflict")


def test_request_id_is_echoed_or_generated(sqlite_server: ServerProcess) -> None:
    r = httpx.get(
        sqlite_server.url + "/v1/workspaces",
        headers=admin_headers(sqlite_server, **{"X-Request-ID": "abc-123"}),
    )
    assert r.headers["x-request-id"] == "abc-123"
    r = httpx.get(sqlite_server.url + "/v1/workspaces", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.headers["x-request-id"]


def test_idempotency_key_replays_and_detects_mismatch(sqlite_server: ServerProcess) -> None:
    key = uuid.uuid4().hex
    headers = admin_headers(sqlite_server, **{"Idempotency-Key": key})
    body = {"name": "idem", "slug": "idem-" + key[:8]}
    first = httpx.post(sqlite_server.url + "/v1/workspaces", json=body, headers=headers)
    again = httpx.post(sqlite_server.url + "/v1/workspaces", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = httpx.post(
        sqlite_server.url + "/v1/workspaces", json={**body, "name": "changed"}, headers=headers
    )
    assert_error(other, 422, "idempotency_mismatch")


def test_metadata_etag_and_304(sqlite_server: ServerProcess, setup: Setup) -> None:
    url = f"{sqlite_server.url}/v1/projects/{setup.pid}/breakers/metadata"
    auth = {"Authorization": f"Bearer {setup.pk}"}
    first = httpx.get(url, headers=auth)
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and first.json()["breakers"][0]["name"] == "checkout-latency"
    assert httpx.get(url, headers={**auth, "If-None-Match": etag}).status_code == 304
    r = httpx.patch(
        f"{sqlite_server.url}/v1/projects/{setup.pid}/breakers/{setup.bid}/metadata",
        json={"team": "payments"},
        headers=admin_headers(sqlite_server),
    )
    assert r.json()["metadata"] == {"team": "payments"}
    changed = httpx.get(url, headers={**auth, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_status_head_etag_and_304(sqlite_server: ServerProcess, setup: Setup) -> None:
    url = f"{sqlite_server.url}/v1/projects/{setup.pid}/status"
    auth = {"Authorization": f"Bearer {setup.pk}"}
    head = httpx.head(url, headers=auth)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"].startswith('W/"')
    # last_eval_ms moves with every evaluation tick, so the ETag may change between two
    # requests; a matching If-None-Match answers 304, a stale one a fresh 200.
    for _ in range(20):
        etag = httpx.get(url, headers=auth).headers["etag"]
        again = httpx.get(url, headers={**auth, "If-None-Match": etag})
        if again.status_code == 304:
            break
        assert again.status_code == 200 and again.headers["etag"] != etag
    else:
        pytest.fail("never got a 304 for a current ETag")
    assert again.content == b"" and again.headers["etag"] == etag
    assert httpx.head(url).status_code == 401


def test_ingest_partial_acceptance(sqlite_server: ServerProcess, setup: Setup) -> None:
    now = int(time.time() * 1000)
    good = {"router_id": setup.rid, "metric": "latency_ms", "ts_ms": now, "value": 1.0, "ok": True}
    samples = [
        good,
        {**good, "router_id": "no-such-router"},
        {**good, "metric": ""},
        {**good, "ts_ms": now - 2 * 3600 * 1000},
        {**good, "ts_ms": now + 3600 * 1000},
        {**good, "ok": "yes"},
        "not an object",
        {**good, "router_id": "checkout-router"},  # a router name is accepted too
    ]
    body = json.dumps({"samples": samples}).encode() + b""
    r = signed_ingest(sqlite_server.url, setup.pid, setup.secret, body, now)
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (2, 6)
    assert body["rejected_by_reason"] == {
        "unknown_router": 1,
        "invalid_metric": 1,
        "ts_ms_too_old": 1,
        "ts_ms_in_future": 1,
        "invalid_ok": 1,
        "invalid_sample": 1,
    }
    assert body["hints"] == ["router 'no-such-router' does not exist in this project"]
    nan = (
        b'{"samples": [{"router_id": "%s", "metric": "m", "ts_ms": %d, "value": NaN, "ok": true}]}'
    )
    r = signed_ingest(
        sqlite_server.url, setup.pid, setup.secret, nan % (setup.rid.encode(), now), now + 1
    )
    assert r.json() == {"accepted": 0, "rejected": 1, "rejected_by_reason": {"invalid_value": 1}}


def test_ingest_rejects_bad_requests(sqlite_server: ServerProcess, setup: Setup) -> None:
    url = f"{sqlite_server.url}/v1/projects/{setup.pid}/ingest"
    now = int(time.time() * 1000)
    # unsigned while the project requires signatures
    r = httpx.post(
        url, content=gzip.compress(b'{"samples": []}'), headers={"Content-Encoding": "gzip"}
    )
    assert_error(r, 401)
    # a gzip bomb: small on the wire, far beyond the decompressed cap
    bomb = gzip.compress(b"[" + b" " * (40 * 1024 * 1024) + b"]")
    assert len(bomb) < 1024 * 1024
    assert_error(signed_ingest(sqlite_server.url, setup.pid, setup.secret, b"", now), 400)
    import hashlib
    import hmac

    sig = hmac.new(bytes.fromhex(setup.secret), str(now).encode() + b"." + bomb, hashlib.sha256)
    r = httpx.post(
        url,
        content=bomb,
        headers={
            "Content-Encoding": "gzip",
            "X-EB-Timestamp": str(now),
            "X-EB-Signature": "v1=" + sig.hexdigest(),
        },
    )
    assert_error(r, 413)
    # malformed JSON inside valid gzip and a signature with upper-case hex
    body = b"{oops"
    raw = gzip.compress(body)
    sig = hmac.new(bytes.fromhex(setup.secret), str(now + 5).encode() + b"." + raw, hashlib.sha256)
    r = httpx.post(
        url,
        content=raw,
        headers={
            "Content-Encoding": "gzip",
            "X-EB-Timestamp": str(now + 5),
            "X-EB-Signature": "v1=" + sig.hexdigest().upper(),
        },
    )
    assert_error(r, 400)
    # body over the request limit
    r = httpx.post(url, content=b"x" * (5 * 1024 * 1024), headers={"Content-Encoding": "gzip"})
    assert_error(r, 413)
    # unknown project
    r = httpx.post(f"{sqlite_server.url}/v1/projects/{uuid.uuid4()}/ingest", content=b"[]")
    assert_error(r, 404)


def test_unsigned_ingest_when_project_allows_it(sqlite_server: ServerProcess) -> None:
    s = Setup(sqlite_server.url, sqlite_server.admin_key, name="unsigned")
    from tripswitch.admin.types import UpdateProjectInput

    s.admin.update_project(s.pid, UpdateProjectInput(enable_signed_ingest=False))
    now = int(time.time() * 1000)
    body = json.dumps(
        [{"router_id": s.rid, "metric": "latency_ms", "ts_ms": now, "value": 2, "ok": True}]
    )
    r = httpx.post(f"{sqlite_server.url}/v1/projects/{s.pid}/ingest", content=body)
    assert r.status_code == 202 and r.json()["accepted"] == 1


def test_per_key_rate_limit_answers_429_with_retry_after(
    sqlite_server: ServerProcess, setup: Setup
) -> None:
    # The module's server allows a burst of 60 at 5/s per key.
    with httpx.Client(base_url=sqlite_server.url) as client:
        codes = [
            client.get(
                f"/v1/projects/{setup.pid}/status", headers={"Authorization": f"Bearer {setup.pk}"}
            )
            for _ in range(80)
        ]
    limited = [r for r in codes if r.status_code == 429]
    assert limited, "no request was rate limited"
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].json()["code"] == "rate_limited"
