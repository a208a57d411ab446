"""Threads: no lost updates (exact counts) and no serialization (the user's function runs
with no lock held). Concurrency is proven with a Barrier that only opens when N calls are
inside the function at the same time; nothing here measures time."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    State,
    consecutive_failures,
    error_rate_above,
    quality_below,
    report_quality,
)

THREADS = 8
BARRIER_TIMEOUT = 10.0


@pytest.fixture(autouse=True)
def _switch_threads_often() -> Iterator[None]:
    """Make the interpreter switch threads far more often, so races have a chance to show."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def run_threads(n: int, target: Callable[[int], Any]) -> list[Any]:
    """Run ``target(i)`` in ``n`` threads; return results (or exceptions) by index."""
    results: list[Any] = [None] * n

    def wrap(i: int) -> None:
        try:
            results[i] = target(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a thread hung"
    return results


def test_no_lost_updates_with_failures_and_quality(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        quality_below(0.01, window=20),
        registry=None,
        clock=clock,
        listeners=[],
        track_latency=True,
    )
    per_thread = 500

    def work(t: int, i: int) -> int:
        if i % 4 == 0:
            raise ValueError(i)
        report_quality(0.5 if i % 2 else 0.25)
        return i

    def target(t: int) -> int:
        errors = 0
        for i in range(per_thread):
            try:
                breaker.call(work, t, i)
            except ValueError:
                errors += 1
        return errors

    results = run_threads(THREADS, target)
    assert results == [per_thread // 4] * THREADS
    stats = breaker.stats()
    assert stats.failures == THREADS * per_thread // 4
    assert stats.successes == THREADS * per_thread * 3 // 4
    assert stats.quality_count == stats.successes
    # 1/3 of the scored calls report 0.25, 2/3 report 0.5 (i odd): exact in binary
    assert stats.avg_quality == pytest.approx((0.25 * 125 + 0.5 * 250) / 375)
    assert breaker.state is State.CLOSED


def test_no_lost_updates_on_the_lean_decorator_path(clock: FakeClock) -> None:
    breaker = CircuitBreaker(consecutive_failures(10**9), registry=None, clock=clock)

    @breaker
    def work(i: int) -> int:
        if i % 10 == 0:
            raise KeyError(i)
        return i

    per_thread = 2000

    def target(t: int) -> None:
        for i in range(per_thread):
            with contextlib.suppress(KeyError):
                work(i)

    run_threads(THREADS, target)
    stats = breaker.stats()
    assert stats.failures == THREADS * per_thread // 10
    assert stats.successes == THREADS * per_thread * 9 // 10


def test_rejections_are_counted_exactly(clock: FakeClock) -> None:
    breaker = CircuitBreaker(consecutive_failures(1), registry=None, clock=clock)
    breaker.force_open()
    per_thread = 300

    def target(t: int) -> int:
        rejected = 0
        for _ in range(per_thread):
            try:
                breaker.call(lambda: None)
            except CircuitBreakerOpen:
                rejected += 1
        return rejected

    assert sum(run_threads(THREADS, target)) == THREADS * per_thread
    assert breaker.stats().rejected == THREADS * per_thread


def _barrier_fn(barrier: threading.Barrier) -> Callable[[], str]:
    def fn() -> str:
        barrier.wait(timeout=BARRIER_TIMEOUT)  # BrokenBarrierError unless all N run at once
        return "ok"

    return fn


@pytest.mark.parametrize(
    "setup",
    ["lean-decorator", "call-with-quality", "listener", "with-block", "disabled", "metrics-only"],
)
def test_calls_run_concurrently(clock: FakeClock, setup: str) -> None:
    class Listener:
        def on_call(self, *args: Any) -> None:
            pass

    kw: dict[str, Any] = {"registry": None, "clock": clock}
    trip_on: Any = error_rate_above(0.5, window=20)
    if setup == "call-with-quality":
        trip_on = quality_below(0.5)
    if setup == "listener":
        kw["listeners"] = [Listener()]
    if setup == "metrics-only":
        kw["metrics_only"] = True
    breaker = CircuitBreaker(trip_on, **kw)
    if setup == "disabled":
        breaker.disable()
    barrier = threading.Barrier(THREADS)
    fn = _barrier_fn(barrier)
    guarded: Callable[[], Any]
    if setup in ("lean-decorator", "disabled"):
        guarded = breaker(fn)
    elif setup == "with-block":

        def guarded() -> str:
            with breaker:
                return fn()

    else:

        def guarded() -> str:
            return breaker.call(fn)

    results = run_threads(THREADS, lambda i: guarded())
    assert results == ["ok"] * THREADS, results
    assert breaker.stats().successes == THREADS


def test_half_open_probes_run_concurrently_up_to_the_limit(clock: FakeClock) -> None:
    probes, callers = 4, 10
    all_rejected = threading.Event()
    rejections = 0
    count_lock = threading.Lock()

    class CountRejections:
        def on_rejection(self, *args: Any) -> None:
            nonlocal rejections
            with count_lock:  # listeners run outside the breaker's lock, in many threads
                rejections += 1
                if rejections == callers - probes:
                    all_rejected.set()

    breaker = CircuitBreaker(
        consecutive_failures(1),
        half_open_after=5,
        half_open_max_calls=probes,
        recovery_threshold=probes,
        listeners=[CountRejections()],
        registry=None,
        clock=clock,
    )
    with pytest.raises(CircuitBreakerOpen):
        breaker.call(_raise)
    clock.advance(5)
    inside = threading.Barrier(probes)  # opens only when all probes are in the function
    release = threading.Event()

    def probe() -> str:
        inside.wait(timeout=BARRIER_TIMEOUT)
        # hold the probe slots until every other caller has been turned away
        assert release.wait(timeout=BARRIER_TIMEOUT)
        return "probe"

    outcome: list[Any] = []
    runner = threading.Thread(
        target=lambda: outcome.extend(run_threads(callers, lambda i: breaker.call(probe)))
    )
    runner.start()
    assert all_rejected.wait(timeout=BARRIER_TIMEOUT)
    release.set()
    runner.join(timeout=60)
    assert sum(r == "probe" for r in outcome) == probes
    rejected = [r for r in outcome if isinstance(r, CircuitBreakerOpen)]
    assert len(rejected) == callers - probes
    assert all(r.state is State.HALF_OPEN for r in rejected)
    assert breaker.state is State.CLOSED


def test_only_one_thread_trips_the_breaker(clock: FakeClock) -> None:
    breaker = CircuitBreaker(consecutive_failures(3), registry=None, clock=clock)
    barrier = threading.Barrier(THREADS)

    def fail() -> None:
        barrier.wait(timeout=BARRIER_TIMEOUT)
        raise ConnectionError

    results = run_threads(THREADS, lambda i: breaker.call(fail))
    tripped = [r for r in results if isinstance(r, CircuitBreakerOpen)]
    assert len(tripped) == 1  # exactly one call completed the third failure in a row
    assert breaker.trip_count == 1
    assert breaker.stats().failures == THREADS


def _raise() -> None:
    raise ConnectionError
