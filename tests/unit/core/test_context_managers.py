"""``with breaker:`` and ``async with breaker:`` follow the same decision path as calls."""

from __future__ import annotations

import asyncio
import functools

import pytest

from tripwise import (
    CircuitBreakerOpen,
    FakeClock,
    State,
    consecutive_failures,
    latency_above,
    quality_below,
    report_quality,
)

from ._helpers import make_breaker

make = functools.partial(make_breaker, failures=2)


def test_with_records_success_and_failure(clock: FakeClock) -> None:
    breaker = make(clock)
    with breaker as entered:
        assert entered is breaker
    with pytest.raises(ValueError), breaker:
        raise ValueError("bad")
    stats = breaker.stats()
    assert (stats.successes, stats.failures) == (1, 1)


def test_with_trips_and_chains_then_rejects_before_the_body(clock: FakeClock) -> None:
    breaker = make(clock)
    with pytest.raises(ValueError), breaker:
        raise ValueError("first")
    second = ValueError("second")
    with pytest.raises(CircuitBreakerOpen) as info, breaker:
        raise second
    assert info.value.__cause__ is second
    body_ran = False
    with pytest.raises(CircuitBreakerOpen), breaker:
        body_ran = True
    assert not body_ran
    assert breaker.state is State.OPEN


def test_with_and_a_fallback_still_raises_on_the_tripping_block(clock: FakeClock) -> None:
    """A with block has no return value to replace, so the fallback does not apply."""
    breaker = make(clock, consecutive_failures(1), fallback="unused")
    err = RuntimeError("x")
    with pytest.raises(CircuitBreakerOpen) as info, breaker:
        raise err
    assert info.value.__cause__ is err


def test_with_measures_latency_and_reads_quality(clock: FakeClock) -> None:
    breaker = make(clock, latency_above(100, window=1) | quality_below(0.5, window=2))
    with breaker:
        clock.advance(0.05)
        report_quality(0.4)
    assert breaker.state is State.CLOSED
    with breaker:
        clock.advance(0.25)
    assert breaker.state is State.OPEN
    assert breaker.stats().max_latency_ms == 250.0
    assert breaker.stats().last_quality == 0.4


def test_with_half_open_probe(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures(1), recovery_threshold=1)
    with pytest.raises(CircuitBreakerOpen), breaker:
        raise RuntimeError
    clock.advance(10)
    with breaker:
        assert breaker.state is State.HALF_OPEN
    assert breaker.state is State.CLOSED


def test_nested_with_blocks_of_one_breaker(clock: FakeClock) -> None:
    breaker = make(clock, quality_below(0.5, window=10))
    with breaker:
        report_quality(0.9)
        with breaker:
            report_quality(0.1)
        report_quality(0.8)  # the outer block's own last report
    stats = breaker.stats()
    assert (stats.successes, stats.quality_count, stats.last_quality) == (2, 2, 0.8)
    assert stats.avg_quality == pytest.approx(0.45)


def test_with_ignored_exceptions_and_base_exceptions(clock: FakeClock) -> None:
    breaker = make(clock, ignore_exceptions=KeyError)
    for exc in (KeyError("k"), KeyboardInterrupt(), KeyError("k")):
        with pytest.raises(type(exc)), breaker:
            raise exc
    assert breaker.state is State.CLOSED
    assert breaker.stats().ignored == 3


def test_exit_without_enter_is_an_error(clock: FakeClock) -> None:
    with pytest.raises(RuntimeError, match="__enter__"):
        make(clock).__exit__(None, None, None)


async def test_async_with(clock: FakeClock) -> None:
    breaker = make(clock)
    async with breaker:
        await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with breaker:
            raise TimeoutError
    original = TimeoutError("again")
    with pytest.raises(CircuitBreakerOpen) as info:
        async with breaker:
            raise original
    assert info.value.__cause__ is original
    with pytest.raises(CircuitBreakerOpen):
        async with breaker:
            pytest.fail("body must not run while open")


async def test_async_with_interleaved_tasks_keep_their_own_blocks(clock: FakeClock) -> None:
    seen: list[float | None] = []

    class Spy:
        uses_quality = True

        def __call__(self, record: object) -> bool:
            seen.append(record.quality)  # type: ignore[attr-defined]
            return False

        def reset(self) -> None:
            pass

    breaker = make(clock, Spy())
    gates = [asyncio.Event() for _ in range(4)]

    async def task(i: int) -> None:
        async with breaker:
            report_quality(i / 10)
            await gates[i].wait()

    tasks = [asyncio.create_task(task(i)) for i in range(4)]
    await asyncio.sleep(0)
    for i in (2, 0, 3, 1):  # finish in an order unrelated to the order they started
        gates[i].set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert seen == [0.2, 0.0, 0.3, 0.1]
