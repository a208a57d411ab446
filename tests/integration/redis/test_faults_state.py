"""Faults that used to take a healthy fleet offline or silently split it (issue 13, defects 1-5),
each against a private redis-server: CLIENT PAUSE, SIGSTOP/SIGCONT, FLUSHALL/DEL, eviction."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.support.redis_service import RedisServer
from tripwise import CircuitBreaker, CircuitBreakerOpen, State, consecutive_failures

FAST = {"timeout": 0.05, "refresh_interval": 0.1, "retry_interval": 0.1}
# retry_interval + 1 s (the convergence target), plus scheduling slack for a loaded 2-core box.
CONVERGE = FAST["retry_interval"] + 1.0 + 1.0


class Boom(Exception):
    pass


def _fail() -> None:
    raise Boom


def _call(breaker: CircuitBreaker, fn: Callable[[], Any] = lambda: 1) -> str:
    try:
        breaker.call(fn)
        return "ok"
    except Boom:
        return "failed"
    except CircuitBreakerOpen:
        return "rejected"


def _trip(breaker: CircuitBreaker) -> None:
    """Two failures: the second trips the breaker (and is answered CircuitBreakerOpen)."""
    assert [_call(breaker, _fail) for _ in range(2)] == ["failed", "rejected"]
    assert breaker.state is State.OPEN


def _until(predicate: Callable[[], bool], timeout: float = CONVERGE) -> float | None:
    """Seconds until ``predicate()`` held (polled every 5 ms), or None if it never did."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.005)
    return None


def _fleet(
    make_store: Callable[..., Any], url: str, n: int = 2, store: Any = None, **breaker: Any
) -> tuple[list[Any], list[CircuitBreaker], list[list[str]]]:
    stores = [make_store(url, **{**FAST, **(store or {})}) for _ in range(n)]
    logs: list[list[str]] = [[] for _ in range(n)]
    breaker.setdefault("half_open_after", 0.3)
    breakers = [
        CircuitBreaker(
            consecutive_failures(2),
            name="model",
            registry=None,
            store=s,
            on_state_change=lambda b, old, new, log=log: log.append(new.value),
            **breaker,
        )
        for s, log in zip(stores, logs, strict=True)
    ]
    return stores, breakers, logs


def _state_hash(server: RedisServer, namespace: str) -> dict[str, str]:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        return client.hgetall(f"{namespace}:{{model}}:state")  # type: ignore[return-value]
    finally:
        client.close()


# ---------------------------------------------------------------------- defect 1: lost permits


def test_probe_report_lost_to_a_pause_frees_the_permit_on_resync(
    private_redis: RedisServer, make_store: Callable[..., Any], namespace: str
) -> None:
    (store_a, store_b), (a, b), _ = _fleet(
        make_store, private_redis.url, half_open_max_calls=1, store={"probe_lease": 30.0}
    )
    _trip(a)
    assert _until(lambda: b.state is State.OPEN)
    time.sleep(0.35)  # the cool-down ends

    def probe_whose_report_hangs() -> int:
        private_redis.pause(400)  # the report (PROBE_DONE) will time out
        return 1

    assert _call(a, probe_whose_report_hangs) == "ok"
    assert _until(lambda: store_a.available and store_b.available, timeout=3.0)
    resumed = time.monotonic()

    # Once Redis answers, the lost permit is freed and the fleet probes and closes again: a
    # healthy backend is admitted everywhere, long before any lease (30 s before the fix).
    def fleet_closed() -> bool:
        _call(a), _call(b)
        return _state_hash(private_redis, namespace)["st"] == "c"

    assert _until(fleet_closed) is not None, _state_hash(private_redis, namespace)
    assert time.monotonic() - resumed < CONVERGE
    assert _until(lambda: a.state is State.CLOSED and b.state is State.CLOSED)
    assert [_call(a) for _ in range(10)] + [_call(b) for _ in range(10)] == ["ok"] * 20
    assert store_a.stats()["permits_reclaimed"] == 1


def test_permit_granted_by_a_frozen_redis_after_the_request_timed_out_is_reclaimed(
    private_redis: RedisServer, make_store: Callable[..., Any], namespace: str
) -> None:
    (store_a, _), (a, b), _logs = _fleet(
        make_store, private_redis.url, half_open_max_calls=1, store={"probe_lease": 30.0}
    )
    _trip(a)
    assert _until(lambda: b.state is State.OPEN)
    time.sleep(0.35)
    private_redis.freeze()
    try:
        # A's permit request times out; Redis runs it when it resumes (the buffered EVALSHA),
        # granting a permit to a token nobody holds. Meanwhile A decides locally.
        outcomes = [_call(a) for _ in range(3)]
        assert "ok" in outcomes and not store_a.available
    finally:
        time.sleep(0.2)
        private_redis.thaw()
    thawed = time.monotonic()
    # Without reclaiming, every process would be HALF_OPEN and refused a permit for the whole
    # 30 s lease; now the orphan is freed, a real probe runs and the fleet closes.
    took = _until(lambda: _call(b) == "ok" and b.state is State.CLOSED)
    assert took is not None, (b.state, _state_hash(private_redis, namespace))
    assert time.monotonic() - thawed < CONVERGE
    assert _until(lambda: _call(a) == "ok" and a.state is State.CLOSED)
    assert a.trip_count == b.trip_count == 1  # one trip for the fleet


# ---------------------------------------------------------------------- defect 2: stale trips


def test_a_trip_undone_locally_during_an_outage_is_not_pushed_to_the_fleet(
    private_redis: RedisServer, make_store: Callable[..., Any], namespace: str
) -> None:
    (store_a, _), (a, b), logs = _fleet(
        make_store, private_redis.url, half_open_after=0.2, recovery_threshold=1
    )
    assert _call(b) == "ok"
    private_redis.pause(1200)
    _trip(a)
    assert a.state is State.OPEN and not store_a.available  # tripped locally
    time.sleep(0.25)
    assert _call(a) == "ok" and a.state is State.CLOSED  # and recovered locally
    assert _until(lambda: store_a.available, timeout=3.0)
    time.sleep(0.5)  # several refreshes after the resync
    assert a.state is State.CLOSED and b.state is State.CLOSED
    assert logs[1] == []  # b never saw the stale trip
    assert [_call(b) for _ in range(20)] == ["ok"] * 20
    assert _state_hash(private_redis, namespace)["st"] == "c"


def test_a_trip_still_in_effect_is_pushed_with_what_is_left_of_its_cool_down(
    private_redis: RedisServer, make_store: Callable[..., Any]
) -> None:
    (store_a, _), (a, b), logs = _fleet(make_store, private_redis.url, half_open_after=3.0)
    private_redis.pause(700)
    _trip(a)
    assert _until(lambda: store_a.available, timeout=3.0)
    assert _until(lambda: b.state is State.OPEN)
    assert a.trip_count == b.trip_count == 1
    # The fleet stays open for the rest of a's cool-down, not a fresh full one.
    assert b.retry_after() < 3.0 - 0.5
    assert logs[0] == ["open"]


# ---------------------------------------------------------------------- defect 3: lost state


def _evict_state(server: RedisServer, namespace: str) -> None:
    client = redis.Redis.from_url(server.url)
    try:
        key = f"{namespace}:{{model}}:state"
        blob = b"x" * 20_000
        for i in range(5000):
            if not client.exists(key):
                return
            client.set(f"filler:{i}", blob, ex=3600)  # longer TTL than the state's key_ttl
        raise AssertionError("the state key was never evicted")
    finally:
        client.close()


@pytest.mark.parametrize("loss", ["flushall", "del", "evict"])
def test_lost_state_is_detected_and_reseeded_so_trips_still_propagate(
    loss: str, make_store: Callable[..., Any], namespace: str
) -> None:
    extra = ("--maxmemory", "3mb", "--maxmemory-policy", "volatile-ttl")
    with RedisServer(None, *extra) as server:
        stores, (a, b), _ = _fleet(make_store, server.url, store={"key_ttl": 60.0})
        for _ in range(5):  # move the shared generation well past 0
            a.force_open()
            a.reset()
        assert _until(lambda: b.state is State.CLOSED and stores[1].stats()["pushes"] >= 9)
        if loss == "flushall":
            server.command("FLUSHALL")
        elif loss == "del":
            server.command("DEL", f"{namespace}:{{model}}:state")
        else:
            _evict_state(server, namespace)
        # Detected within a refresh and re-created from local state (CLOSED, same trips).
        assert _until(lambda: sum(s.stats()["state_losses"] for s in stores) >= 1)
        assert _until(lambda: _state_hash(server, namespace).get("st") == "c")
        # A trip after the loss reaches the other process (before the fix b stayed CLOSED at
        # generation 10 against Redis's 1 and admitted every call).
        _trip(a)
        assert _until(lambda: b.state is State.OPEN), (b.state, _state_hash(server, namespace))
        assert _call(b) == "rejected"
        assert a.trip_count == b.trip_count == 1


def test_lost_open_state_is_reseeded_open_not_closed(
    private_redis: RedisServer, make_store: Callable[..., Any], namespace: str
) -> None:
    _stores, (a, b), _ = _fleet(make_store, private_redis.url, half_open_after=30.0)
    _trip(a)
    assert _until(lambda: b.state is State.OPEN)
    private_redis.command("FLUSHALL")
    assert _until(lambda: _state_hash(private_redis, namespace).get("st") == "o")
    assert int(_state_hash(private_redis, namespace)["t"]) == 1
    late = make_store(private_redis.url, **FAST)
    c = CircuitBreaker(name="model", registry=None, store=late)
    assert c.state is State.OPEN and _call(c) == "rejected"  # a newcomer sees the truth
    assert a.state is b.state is State.OPEN


# ---------------------------------------------------------------------- defect 4: fail_open


def test_fail_open_outage_failures_are_not_counted_as_trips(
    private_redis: RedisServer, make_store: Callable[..., Any]
) -> None:
    (store_a,), (a,), logs = _fleet(
        make_store, private_redis.url, n=1, store={"on_unavailable": "fail_open"}
    )
    private_redis.pause(800)
    trips = []
    outcomes = []
    for _ in range(60):
        outcomes.append(_call(a, _fail))
        trips.append(a.trip_count)
    assert not store_a.available
    assert set(outcomes) == {"failed"} and set(trips) == {0}
    assert _until(lambda: store_a.available, timeout=3.0)
    assert a.trip_count == 0 and logs[0] == []


# ---------------------------------------------------------------------- defect 5: permitless


def test_a_probe_admitted_without_a_permit_during_an_outage_never_closes_the_fleet(
    private_redis: RedisServer, make_store: Callable[..., Any], namespace: str
) -> None:
    (_, store_b), (a, b), _ = _fleet(
        make_store,
        private_redis.url,
        half_open_max_calls=1,
        recovery_threshold=1,
        half_open_after=0.2,
        store={"probe_lease": 5.0},
    )
    _trip(a)
    time.sleep(0.25)
    b_done = threading.Event()
    b_outcome: list[str] = []

    def b_probe() -> None:  # b holds the fleet's only permit, and its probe will fail
        def slow_failure() -> None:
            time.sleep(1.6)
            raise Boom

        b_outcome.append(_call(b, slow_failure))
        b_done.set()

    threading.Thread(target=b_probe, daemon=True).start()
    assert _until(lambda: b.state is State.HALF_OPEN and a.state is State.HALF_OPEN)
    private_redis.pause(500)
    # a cannot reach Redis: it admits a probe on its own (local policy), which succeeds
    # after Redis is back.
    assert _call(a, lambda: time.sleep(0.9)) == "ok"
    assert store_b.available or _until(lambda: store_b.available, timeout=3.0)
    assert _state_hash(private_redis, namespace)["st"] == "h"  # a's success decided nothing
    assert b_done.wait(5.0) and b_outcome == ["rejected"]  # the failed probe re-opened it
    assert _until(lambda: _state_hash(private_redis, namespace)["st"] == "o")
    assert _until(lambda: a.state is State.OPEN)  # the permitted probe decided for the fleet


def test_a_stale_local_trip_never_overwrites_what_the_fleet_did_meanwhile(
    private_redis: RedisServer, make_store: Callable[..., Any], namespace: str
) -> None:
    (store_a, _), (a, b), logs = _fleet(
        make_store, private_redis.url, half_open_after=0.2, recovery_threshold=1
    )
    # Only a loses Redis (as behind a partition): it trips on local state...
    store_a.mark_unavailable(ConnectionError("partitioned"))
    _trip(a)
    # ...while the rest of the fleet trips and recovers on its own.
    _trip(b)
    time.sleep(0.25)
    assert _until(lambda: _call(b) == "ok" and b.state is State.CLOSED)
    assert _state_hash(private_redis, namespace)["t"] == "1"
    # a's resync sees that the fleet moved on: it adopts the fleet's state, pushes nothing.
    assert _until(lambda: store_a.available and a.state is State.CLOSED)
    time.sleep(0.3)
    assert b.state is State.CLOSED and logs[1] == ["open", "half_open", "closed"]
    assert _state_hash(private_redis, namespace)["t"] == "1" and a.trip_count == 1


def test_a_long_probe_keeps_its_permit_by_renewing_the_lease(
    private_redis: RedisServer, make_store: Callable[..., Any]
) -> None:
    # probe_lease defaults to 3 x refresh_interval + timeout = 0.35 s here; the probe runs 1 s.
    (store_a, _), (a, b), _ = _fleet(
        make_store, private_redis.url, half_open_max_calls=1, recovery_threshold=1
    )
    assert store_a.probe_lease_ms == 350
    _trip(a)
    assert _until(lambda: b.state is State.OPEN)
    time.sleep(0.35)
    done = threading.Event()
    threading.Thread(target=lambda: (_call(a, lambda: time.sleep(1.0)), done.set())).start()
    assert _until(lambda: a.state is State.HALF_OPEN and bool(a._link.permits))  # type: ignore[union-attr]
    others = []
    while not done.is_set():
        others.append(_call(b))
        time.sleep(0.02)
    assert set(others) == {"rejected"}  # never a second probe while the first one runs
    assert _until(lambda: b.state is State.CLOSED)


def test_a_permit_held_by_a_crashed_process_frees_itself_after_the_lease(
    private_redis: RedisServer, namespace: str
) -> None:
    from tests.support.fleet import WorkerProcess

    config = {
        "url": private_redis.url,
        "namespace": namespace,
        "name": "model",
        "breaker": {"consecutive_failures": 2, "half_open_after": 0.2, "half_open_max_calls": 1,
                    "recovery_threshold": 1},
        "store": FAST,
    }  # fmt: skip
    holder, other = WorkerProcess(config), WorkerProcess(config)
    try:
        holder.ready()
        other.ready()
        holder.ask("fail", n=2)
        assert other.ask("wait_state", state="open")["ok"]
        time.sleep(0.25)
        holder.send("probe_race", at=time.time(), threads=1, hold=30.0)  # holds the permit
        assert _until(lambda: _state_hash(private_redis, namespace).get("st") == "h")
        time.sleep(0.1)
        assert other.ask("call")["outcomes"] == ["rejected"]
        holder.process.kill()  # dies holding the fleet's only permit
        killed = time.monotonic()
        assert _until(lambda: other.ask("call")["outcomes"] == ["ok"], timeout=5.0)
        # Freed within the lease (0.35 s) plus a refresh, not 30 s.
        assert time.monotonic() - killed < 0.35 + CONVERGE
        assert other.ask("wait_state", state="closed")["ok"]
    finally:
        holder.process.kill()
        holder.process.wait()
        other.close()
