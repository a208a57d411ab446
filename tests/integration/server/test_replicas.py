"""Replica mode: 3 ``tripwise serve`` processes on one (fresh) PostgreSQL database and one
Redis (a unique key prefix). A trip evaluated by one replica reaches clients on every
replica; killing the evaluating replica hands its projects to another; every client sees
each change exactly once; a config change on one replica is effective everywhere; a restart
of all replicas keeps states and events."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import secrets
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.integration.server.live import FAST_ENV, StreamListener
from tests.integration.server.scenario import signed_ingest, wait_until
from tests.support.postgres_service import fresh_database
from tests.support.redis_service import delete_namespace, redis_url
from tests.support.server_process import ServerProcess


class Cluster:
    def __init__(self, db: str, redis_at: str, prefix: str, tmp: Path) -> None:
        self.prefix = prefix
        self.redis = redis.Redis.from_url(redis_at)
        self.tmp = tmp
        admin = "eb_admin_" + secrets.token_hex(16)
        env = {
            **FAST_ENV,
            "TRIPWISE_REDIS": redis_at,
            "TRIPWISE_REDIS_PREFIX": prefix,
            "TRIPWISE_TICK_INTERVAL_S": "0.05",
        }
        self.procs = [ServerProcess(db, admin, env=env) for _ in range(3)]
        self.admin_key = admin

    def start(self, i: int) -> None:
        self.procs[i].start(self.tmp / f"replica{i}.log")

    def replica_id(self, i: int) -> str:
        body = httpx.get(self.procs[i].url + "/readyz", timeout=5).json()
        return str(body["replica"]["id"])

    def leader(self, pid: str) -> str | None:
        raw = self.redis.get(f"{self.prefix}:lease:{pid}")
        return raw.decode() if raw else None

    def http(self, i: int) -> httpx.Client:
        return httpx.Client(
            base_url=self.procs[i].url,
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=10,
        )


@pytest.fixture
def cluster(pg_port: int, tmp_path: Path) -> Iterator[Cluster]:
    at = redis_url()
    prefix = f"tripwise_test_{uuid.uuid4().hex[:10]}"
    with fresh_database(pg_port) as db:
        c = Cluster(db, at, prefix, tmp_path)
        try:
            for i in range(3):
                c.start(i)
            yield c
        finally:
            logs = []
            for p in c.procs:
                logs.append(p.log())
                if p.proc is not None:
                    p.stop()
            delete_namespace(at, prefix)
            c.redis.close()
    for log in logs:
        assert "Traceback" not in log, log


def _breaker(http: httpx.Client, pid: str, name: str, threshold: float) -> str:
    r = http.post(
        f"/v1/projects/{pid}/breakers",
        json={
            "name": name,
            "metric": "latency_ms",
            "kind": "avg",
            "op": "gt",
            "threshold": threshold,
            "window_ms": 1000,
            "min_count": 3,
            "eval_interval_ms": 100,
            "cooldown_ms": 600_000,
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["breaker"]["id"])


def _slow(c: Cluster, i: int, pid: str, secret: str, rid: str, value: float = 900.0) -> None:
    now = int(time.time() * 1000)
    samples = [
        {"router_id": rid, "metric": "latency_ms", "ts_ms": now - k, "value": value, "ok": True}
        for k in range(5)
    ]
    body = json.dumps({"samples": samples}).encode()
    r = signed_ingest(c.procs[i].url, pid, secret, body, now)
    assert r.status_code == 202 and r.json()["accepted"] == 5, r.text


def _events(listener: StreamListener, name: str, after: int) -> list[tuple[str, float]]:
    return [(e["state"], e["allow_rate"]) for e in listener.events[after:] if e["breaker"] == name]


def test_replicas_share_evaluation_streams_and_failover(cluster: Cluster) -> None:
    c = cluster
    with c.http(0) as http:
        p = http.post("/v1/projects", json={"name": "replicas"}).json()
        pid, secret = p["id"], p["ingest_secret"]
        bid = _breaker(http, pid, "lat", 100)
        cfg = _breaker(http, pid, "cfg", 1e9)
        rid = http.post(f"/v1/projects/{pid}/routers", json={"name": "r"}).json()["router"]["id"]
        r = http.post(
            f"/v1/projects/{pid}/routers/{rid}/breakers", json={"breaker_ids": [bid, cfg]}
        )
        assert r.status_code == 204, r.text
    # the replay guard is shared: a batch delivered through one replica counts once on all
    now = int(time.time() * 1000)
    once = json.dumps(
        [{"router_id": rid, "metric": "other", "ts_ms": now, "value": 1.0, "ok": True}]
    ).encode()
    raw = gzip.compress(once, mtime=0)  # the very same bytes (and signature) to every replica
    sig = hmac.new(bytes.fromhex(secret), f"{now}.".encode() + raw, hashlib.sha256).hexdigest()
    headers = {
        "Content-Encoding": "gzip",
        "X-EB-Timestamp": str(now),
        "X-EB-Signature": f"v1={sig}",
    }
    answers = [
        httpx.post(f"{proc.url}/v1/projects/{pid}/ingest", content=raw, headers=headers).json()
        for proc in c.procs
    ]
    assert answers[0]["accepted"] == 1 and "replayed" not in answers[0], answers
    assert [a.get("replayed") for a in answers[1:]] == [True, True], answers
    ids = [c.replica_id(i) for i in range(3)]
    wait_until(lambda: c.leader(pid) in ids, 10, "an evaluation lease")
    leader = ids.index(c.leader(pid) or "")
    others = [i for i in range(3) if i != leader]
    listeners = [StreamListener(p.url, pid, c.admin_key) for p in c.procs]
    try:
        for lst in listeners:
            lst.wait_connected(2)
        marks = [len(lst.events) for lst in listeners]

        # a batch sent to a replica that does not evaluate is forwarded to the one that does
        _slow(c, others[0], pid, secret, rid)
        for lst, mark in zip(listeners, marks, strict=True):
            lst.wait_for({"breaker": "lat", "state": "open", "allow_rate": 0.0}, mark)
        # overrides on the other replicas: one transition, then one state-only event
        with c.http(others[1]) as http:
            r = http.post(
                f"/v1/projects/{pid}/breakers/{bid}/override", json={"mode": "force_closed"}
            )
            assert r.status_code == 200, r.text
        time.sleep(1.2)  # the slow samples leave the 1 s window
        with c.http(others[0]) as http:
            r = http.post(f"/v1/projects/{pid}/breakers/{bid}/override", json={"mode": "automatic"})
            assert r.status_code == 200, r.text
        for lst, mark in zip(listeners, marks, strict=True):
            wait_until(
                lambda lst=lst, mark=mark: len(_events(lst, "lat", mark)) >= 3, 5, "overrides"
            )

        # kill the evaluating replica (no goodbye): another takes the lease over
        killed = c.procs[leader]
        assert killed.proc is not None
        killed.proc.send_signal(signal.SIGKILL)
        killed.proc.wait(10)
        killed.proc = None
        started = time.monotonic()
        wait_until(lambda: c.leader(pid) in [ids[i] for i in others], 10, "a takeover")
        takeover_s = time.monotonic() - started
        print(f"takeover after {takeover_s:.2f} s")
        _slow(c, others[1], pid, secret, rid)
        survivors = [listeners[i] for i in others]
        for i, lst in zip(others, survivors, strict=True):
            wait_until(
                lambda lst=lst, mark=marks[i]: len(_events(lst, "lat", mark)) >= 4, 5, "a new trip"
            )

        # a config change made on one replica is effective on the evaluating one
        with c.http(others[1]) as http:
            r = http.patch(f"/v1/projects/{pid}/breakers/{cfg}", json={"threshold": 10})
            assert r.status_code == 200, r.text
        time.sleep(1.0)
        _slow(c, others[0], pid, secret, rid, value=500.0)
        for lst in survivors:
            lst.wait_for({"breaker": "cfg", "state": "open", "allow_rate": 0.0}, 0, timeout=3)

        time.sleep(0.5)  # anything duplicated would have arrived by now
        expected = [("open", 0.0), ("closed", 1.0), ("closed", 1.0), ("open", 0.0)]
        for i, lst in zip(others, survivors, strict=True):
            assert _events(lst, "lat", marks[i]) == expected, lst.events
            assert _events(lst, "cfg", marks[i]).count(("open", 0.0)) == 1
    finally:
        for lst in listeners:
            lst.close()

    with c.http(others[0]) as http:
        events = http.get(f"/v1/projects/{pid}/events").json()["events"]
    transitions = sorted((e["timestamp"], e["breaker_name"], e["to_state"]) for e in events)
    assert [(n, s) for _, n, s in transitions] == [
        ("lat", "open"),
        ("lat", "closed"),
        ("lat", "open"),
        ("cfg", "open"),
    ]

    # restart every replica: states and events are intact
    for p in c.procs:
        if p.proc is not None:
            p.stop()
    for i in range(3):
        c.start(i)
    for i in range(3):
        with c.http(i) as http:
            assert http.get(f"/v1/projects/{pid}/breakers/{bid}/state").json()["state"] == "open"
            assert http.get(f"/v1/projects/{pid}/breakers/{cfg}/state").json()["state"] == "open"
            assert len(http.get(f"/v1/projects/{pid}/events").json()["events"]) == 4


def test_a_redis_outage_is_503_and_recovers(pg_port: int, tmp_path: Path) -> None:
    """With the shared Redis gone, a replica answers 503 (readiness, ingest), never 500, and
    stops evaluating; when Redis is back, it leads, evaluates and answers again."""
    from tests.support.redis_service import RedisServer

    with RedisServer() as private, fresh_database(pg_port) as db:
        admin = "eb_admin_" + secrets.token_hex(16)
        env = {**FAST_ENV, "TRIPWISE_REDIS": private.url, "TRIPWISE_REDIS_PREFIX": "t"}
        proc = ServerProcess(db, admin, env=env)
        proc.start(tmp_path / "replica.log")
        try:
            h = {"Authorization": f"Bearer {admin}"}
            p = httpx.post(proc.url + "/v1/projects", json={"name": "outage"}, headers=h).json()
            pid, secret = p["id"], p["ingest_secret"]
            now = int(time.time() * 1000)
            body = json.dumps([]).encode()
            private.stop()
            ready = httpx.get(proc.url + "/readyz", timeout=10)
            assert ready.status_code == 503 and ready.json()["checks"]["redis"] is False
            r = signed_ingest(proc.url, pid, secret, body, now)
            assert r.status_code == 503, r.text
            assert httpx.get(proc.url + "/v1/projects", headers=h).status_code == 503
            private.start()
            wait_until(
                lambda: httpx.get(proc.url + "/readyz", timeout=5).status_code == 200, 10, "ready"
            )
            r = signed_ingest(proc.url, pid, secret, body, now + 1)
            assert r.status_code == 202, r.text
            wait_until(
                lambda: httpx.get(proc.url + "/readyz").json()["replica"]["evaluating"] == 1,
                10,
                "the lease back",
            )
        finally:
            log = proc.log()
            proc.stop()
        assert "Traceback" not in log, log
