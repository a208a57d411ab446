"""Shared-window mode: time-window conditions judge the outcomes of every process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tripwise import CircuitBreaker, CircuitBreakerOpen, State, error_rate_above
from tripwise.stores.redis_window import SharedTimeWindow


class Boom(Exception):
    pass


def _fail() -> None:
    raise Boom


def _wait_flushes(store: Any, n: int = 2, timeout: float = 3.0) -> None:
    target = store.stats()["flushes"] + n
    deadline = time.monotonic() + timeout
    while store.stats()["flushes"] < target and time.monotonic() < deadline:
        time.sleep(0.005)
    assert store.stats()["flushes"] >= target


def _breaker(store: Any) -> CircuitBreaker:
    rule = error_rate_above(0.4, window_seconds=30, min_calls=10)
    return CircuitBreaker(rule, name="model", half_open_after=30.0, registry=None, store=store)


def _failures_until_open(breaker: CircuitBreaker, limit: int = 20) -> int:
    for n in range(1, limit + 1):
        try:
            breaker.call(_fail)
        except CircuitBreakerOpen:
            return n
        except Boom:
            continue
    return -1


@pytest.mark.parametrize("mode", ["shared_window", "shared_state"])
def test_fleet_wide_error_rate(mode: str, make_store: Callable[..., Any]) -> None:
    store_a = make_store(mode=mode, flush_interval=0.02)
    store_b = make_store(mode=mode, flush_interval=0.02)
    a, b = _breaker(store_a), _breaker(store_b)
    # a: 6 calls, half failing: below min_calls (10) on its own.
    for _ in range(3):
        a.call(lambda: None)
        with pytest.raises(Boom):
            a.call(_fail)
    if mode == "shared_window":
        assert isinstance(a.trip_on.window, SharedTimeWindow)  # type: ignore[attr-defined]
        _wait_flushes(store_a)
        _wait_flushes(store_b)
        # b sees a's 6 calls: its 4th failure makes 10 calls, 7 failed > 40%: the fleet trips.
        assert _failures_until_open(b) == 4
        deadline = time.monotonic() + 3
        while a.state is not State.OPEN and time.monotonic() < deadline:
            time.sleep(0.005)
        assert a.state is State.OPEN
    else:
        # Per-process windows: b needs 10 calls of its own.
        assert _failures_until_open(b) == 10


def test_recovery_clears_the_shared_window(make_store: Callable[..., Any]) -> None:
    store = make_store(mode="shared_window", flush_interval=0.02)
    breaker = _breaker(store)
    assert _failures_until_open(breaker) == 10
    breaker.reset()
    _wait_flushes(store)
    # The failures that tripped it no longer count after the restart.
    assert breaker.trip_on.window.count == 0  # type: ignore[attr-defined]
    for _ in range(5):
        with pytest.raises(Boom):
            breaker.call(_fail)
    _wait_flushes(store)
    # ...while the outcomes after it do, flushed or not.
    assert breaker.trip_on.window.count == 5  # type: ignore[attr-defined]
    assert breaker.state is State.CLOSED
