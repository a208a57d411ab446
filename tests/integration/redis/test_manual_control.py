"""force_open(), disable(), half_open_now() and reset() act on the whole fleet with a shared
store, recording who and why: the operator's kill switch works across replicas."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.fleet import Fleet
from tests.support.redis_service import RedisServer
from tripwise import CircuitBreaker, CircuitBreakerOpen, Mode, State, consecutive_failures

FAST = {"timeout": 0.05, "refresh_interval": 0.1, "retry_interval": 0.1}


class Boom(Exception):
    pass


def _fail() -> None:
    raise Boom


def _until(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def _ok(breaker: CircuitBreaker) -> bool:
    try:
        return bool(breaker.call(lambda: 1) == 1)
    except CircuitBreakerOpen:
        return False


def _pair(make_store: Callable[..., Any], url: str | None = None) -> tuple[Any, ...]:
    stores = [make_store(url, **FAST) for _ in range(2)]
    breakers = [
        CircuitBreaker(
            consecutive_failures(2), name="model", half_open_after=30.0, registry=None, store=s
        )
        for s in stores
    ]
    return (*stores, *breakers)


def test_force_open_is_a_fleet_wide_kill_switch_with_who_and_why(
    make_store: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    store_a, store_b, a, b = _pair(make_store)
    a.force_open(by="alice", reason="incident 42: bad model push")
    assert a.mode is Mode.FORCED_OPEN and a.state is State.OPEN
    assert _until(lambda: b.mode is Mode.FORCED_OPEN and b.state is State.OPEN)
    with pytest.raises(CircuitBreakerOpen):
        b.call(lambda: 1)
    control = store_b.last_control("model")
    assert control is not None
    assert (control["action"], control["by"], control["reason"]) == (
        "force_open",
        "alice",
        "incident 42: bad model push",
    )
    assert control["process"] == store_a.process_id and control["at"] > 0
    assert "force_open by alice (incident 42: bad model push) for the whole fleet" in caplog.text
    # A replica that starts later is forced open too.
    late = CircuitBreaker(name="model", registry=None, store=make_store(**FAST))
    assert late.mode is Mode.FORCED_OPEN
    # ...and reset() anywhere lifts it everywhere.
    b.reset(by="bob", reason="rolled back")
    assert _until(lambda: a.mode is Mode.NORMAL and late.mode is Mode.NORMAL)
    assert a.state is late.state is State.CLOSED and a.call(lambda: 1) == 1
    assert store_a.last_control("model")["by"] == "bob"  # type: ignore[index]


def test_disable_and_half_open_now_reach_every_replica(make_store: Callable[..., Any]) -> None:
    _, _, a, b = _pair(make_store)
    a.disable(by="carol")
    assert _until(lambda: b.mode is Mode.DISABLED)
    for _ in range(5):  # disabled: failures run and never trip
        with pytest.raises(Boom):
            b.call(_fail)
    assert b.state is State.CLOSED and a.trip_count == b.trip_count == 0
    b.reset()
    assert _until(lambda: a.mode is Mode.NORMAL)
    for _ in range(2):
        with pytest.raises((Boom, CircuitBreakerOpen)):
            a.call(_fail)
    assert _until(lambda: b.state is State.OPEN)
    assert b.half_open_now(by="dave", reason="health check passes")
    assert _until(lambda: a.state is State.HALF_OPEN)
    assert a.call(lambda: 1) == 1  # probes, admitted by the fleet's permits
    assert _until(lambda: _ok(b))  # recovery_threshold=2: a second probe closes it
    assert _until(lambda: a.state is State.CLOSED and b.state is State.CLOSED)


def test_a_kill_switch_thrown_while_redis_is_away_reaches_the_fleet_when_it_returns(
    private_redis: RedisServer, make_store: Callable[..., Any]
) -> None:
    store_a, _, a, b = _pair(make_store, private_redis.url)
    private_redis.pause(600)
    a.force_open(by="erin", reason="during the outage")
    assert a.mode is Mode.FORCED_OPEN and b.mode is Mode.NORMAL
    assert _until(lambda: b.mode is Mode.FORCED_OPEN, timeout=3.0)
    assert store_a.last_control("model")["by"] == "erin"  # type: ignore[index]


def test_manual_control_across_processes(redis_server_url: str, namespace: str) -> None:
    config = {"url": redis_server_url, "namespace": namespace, "name": "model", "store": FAST}
    with Fleet(2, config) as fleet:
        one, two = fleet.workers
        one.ask("control", action="force_open", by="ops", reason="drill")
        assert _until(lambda: two.ask("modes")["modes"] == ["forced_open"])
        assert two.ask("call")["outcomes"] == ["rejected"]
        two.ask("control", action="reset", by="ops", reason="drill over")
        assert _until(lambda: one.ask("modes")["modes"] == ["normal"])
        assert one.ask("call")["outcomes"] == ["ok"]
