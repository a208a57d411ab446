"""Fifty failure bursts against a fleet of 4 processes x 2 members (8 breakers sharing one
state): each burst is exactly one trip, every half-open round admits at most
``half_open_max_calls`` probes across the whole fleet, and no call ever crashes."""

from __future__ import annotations

import time

import redis

from tests.support.fleet import Fleet

BURSTS = 50
COOL_DOWN = 0.15
MAX_PROBES = 2


def test_every_burst_is_one_trip_and_probes_are_bounded_fleet_wide(
    redis_server_url: str, namespace: str
) -> None:
    config = {
        "url": redis_server_url,
        "namespace": namespace,
        "name": "model",
        "members": 2,
        "breaker": {
            "consecutive_failures": 2,
            "half_open_after": COOL_DOWN,
            "half_open_max_calls": MAX_PROBES,
            "recovery_threshold": MAX_PROBES,
        },
        "store": {"refresh_interval": 0.5, "retry_interval": 0.2},
    }
    admitted_per_round = []
    with Fleet(4, config) as fleet:
        for burst in range(1, BURSTS + 1):
            at = time.time() + 0.05
            results = fleet.ask_all("cycle", at=at, probe_at=at + COOL_DOWN + 0.2, threads=4)
            assert sum(r["crashed"] for r in results) == 0
            for r in results:
                assert r["burst_trips"] == [burst, burst], (burst, r)  # one trip per burst
            admitted = sum(r["admitted"] for r in results)
            assert admitted <= MAX_PROBES, (burst, results)  # never more probes, fleet-wide
            if not any(r["late"] for r in results):
                admitted_per_round.append(admitted)
                assert admitted >= 1, (burst, results)
            for w in fleet.workers:  # the backend is healthy: every member closes again
                healed = w.ask("heal", timeout=5.0)
                assert healed["ok"], (burst, healed)
        for r in fleet.ask_all("state"):
            for log in r["transitions"]:
                assert log.count("open") == BURSTS, log  # each member: one trip per burst
    client = redis.Redis.from_url(redis_server_url)
    trips = client.hget(f"{namespace}:{{model}}:state", "t")
    client.close()
    assert trips == str(BURSTS).encode()
    # The permits were used (rounds where a loaded machine made a worker late are not counted).
    assert admitted_per_round.count(MAX_PROBES) >= len(admitted_per_round) // 2
    assert len(admitted_per_round) >= BURSTS // 2
