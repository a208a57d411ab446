"""Several OS processes share one breaker through Redis (the issue's multi-process and race
tests). Each worker is a real ``python`` process with its own RedisStore and threads."""

from __future__ import annotations

import time
from typing import Any

import redis

from tests.support.fleet import Fleet


def _config(url: str, namespace: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "namespace": namespace, "name": "model", **extra}


def test_one_process_trips_the_fleet_and_probes_are_bounded_fleet_wide(
    redis_server_url: str, namespace: str
) -> None:
    config = _config(
        redis_server_url,
        namespace,
        breaker={
            "consecutive_failures": 3,
            "half_open_after": 1.0,
            "half_open_max_calls": 2,
            "recovery_threshold": 2,
        },
    )
    with Fleet(4, config) as fleet:
        first, others = fleet.workers[0], fleet.workers[1:]

        # One process's failures open the breaker...
        tripped = first.ask("fail", n=3)
        assert tripped["states"] == ["open"]
        # (the tripping call raises CircuitBreakerOpen chained to its error)
        assert tripped["outcomes"] == ["failed", "failed", "rejected"]

        # ...and every other process rejects within a bounded time, without failing itself.
        for w in others:
            seen = w.ask("wait_state", state="open", timeout=2.0)
            assert seen["ok"], seen
            assert w.ask("call")["outcomes"] == ["rejected"]
            assert w.ask("state")["trips"] == [1]

        # After the cool-down, 4 processes x 3 threads try at the same instant: exactly
        # half_open_max_calls (2) calls are admitted as probes across the fleet.
        time.sleep(1.1)
        results = fleet.ask_all("probe_race", at=time.time() + 0.3, threads=3, hold=0.4)
        assert sum(r["admitted"] for r in results) == 2

        # The two probes succeeded (recovery_threshold=2): closed everywhere.
        for w in fleet.workers:
            seen = w.ask("wait_state", state="closed", timeout=2.0)
            assert seen["ok"], seen
            assert w.ask("call")["outcomes"] == ["ok"]
        client = redis.Redis.from_url(redis_server_url)
        state = client.hgetall(f"{namespace}:{{model}}:state")
        client.close()
        assert state[b"st"] == b"c"
        assert state[b"t"] == b"1"


def test_racing_bursts_count_one_trip_each_and_lose_none(
    redis_server_url: str, namespace: str
) -> None:
    # 4 processes x 2 fleet members each, 8 threads per process, all failing at once.
    config = _config(
        redis_server_url,
        namespace,
        members=2,
        breaker={"consecutive_failures": 2, "half_open_after": 60.0},
    )
    rounds = 4
    with Fleet(4, config) as fleet:
        for round_no in range(1, rounds + 1):
            results = fleet.ask_all("burst", at=time.time() + 0.3, threads=8)
            for r in results:
                assert r["states"] == ["open", "open"]
            for w in fleet.workers:
                seen = w.ask("wait_state", state="open", timeout=2.0)
                assert seen["ok"]
                assert seen["trips"] == [round_no, round_no], seen  # one trip per burst
            fleet.workers[round_no % 4].ask("reset")
            for w in fleet.workers:
                assert w.ask("wait_state", state="closed", timeout=2.0)["ok"]

        # Every member saw exactly one closed -> open per burst, never two.
        for r in fleet.ask_all("state"):
            for log in r["transitions"]:
                assert log == ["open", "closed"] * rounds, log
    client = redis.Redis.from_url(redis_server_url)
    trips = client.hget(f"{namespace}:{{model}}:state", "t")
    client.close()
    assert trips == str(rounds).encode()
