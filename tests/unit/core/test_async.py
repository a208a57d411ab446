"""Async guarded calls: the state machine, interleaved tasks and their quality scores,
cancellation, concurrent probes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tripwise import (
    CallRecord,
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    State,
    consecutive_failures,
    quality_below,
    report_quality,
)


class QualitySpy:
    """A user condition that records the quality of every call it is shown."""

    uses_quality = True

    def __init__(self) -> None:
        self.qualities: list[float | None] = []

    def __call__(self, record: CallRecord) -> bool:
        self.qualities.append(record.quality)
        return False

    def reset(self) -> None:
        pass


async def test_async_state_machine(clock: FakeClock) -> None:
    healthy = False

    @CircuitBreaker(consecutive_failures(2), half_open_after=5, registry=None, clock=clock)
    async def model(x: int) -> int:
        await asyncio.sleep(0)
        if not healthy:
            raise ConnectionError
        return x + 1

    with pytest.raises(ConnectionError):
        await model(1)
    with pytest.raises(CircuitBreakerOpen):
        await model(1)
    assert model.breaker.state is State.OPEN
    healthy = True
    with pytest.raises(CircuitBreakerOpen):
        await model(1)
    clock.advance(5)
    assert await model(1) == 2
    assert model.breaker.state is State.HALF_OPEN
    assert await model(2) == 3
    assert model.breaker.state is State.CLOSED


async def test_acall(clock: FakeClock) -> None:
    breaker = CircuitBreaker(registry=None, clock=clock)

    async def add(a: int, *, b: int) -> int:
        return a + b

    assert await breaker.acall(add, 1, b=2) == 3


async def test_interleaved_tasks_keep_their_own_quality(clock: FakeClock) -> None:
    spy = QualitySpy()
    breaker = CircuitBreaker(spy, registry=None, clock=clock)
    n = 12
    gates = [asyncio.Event() for _ in range(n)]

    @breaker
    async def generate(i: int) -> int:
        report_quality(0.5)  # overwritten below: the last report of a call wins
        await asyncio.sleep(0)
        report_quality(i / 100)
        await gates[i].wait()
        await asyncio.sleep(0)
        return i

    async def release() -> None:
        for i in reversed(range(n)):  # complete in the reverse order
            await asyncio.sleep(0)
            gates[i].set()
            for _ in range(3):
                await asyncio.sleep(0)

    results, _ = await asyncio.gather(asyncio.gather(*(generate(i) for i in range(n))), release())
    assert results == list(range(n))
    assert spy.qualities == [i / 100 for i in reversed(range(n))]
    stats = breaker.stats()
    assert stats.quality_count == n
    assert stats.avg_quality == pytest.approx(sum(range(n)) / 100 / n)


async def test_interleaved_tasks_with_and_without_scores(clock: FakeClock) -> None:
    spy = QualitySpy()
    breaker = CircuitBreaker(spy, registry=None, clock=clock)

    async def scored(score: float) -> None:
        await asyncio.sleep(0)
        report_quality(score)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    async def unscored() -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    jobs: list[Any] = []
    for i in range(20):
        jobs.append(breaker.acall(scored, i / 20) if i % 2 else breaker.acall(unscored))
    await asyncio.gather(*jobs)
    assert sorted(q for q in spy.qualities if q is not None) == [i / 20 for i in range(1, 20, 2)]
    assert spy.qualities.count(None) == 10


async def test_quality_reported_by_a_subtask_counts_for_the_call(clock: FakeClock) -> None:
    breaker = CircuitBreaker(quality_below(0.5, window=1), registry=None, clock=clock)

    async def judge() -> None:
        report_quality(0.1)

    @breaker
    async def generate() -> str:
        await asyncio.create_task(judge())  # the task inherits the call's context
        return "text"

    assert await generate() == "text"
    assert breaker.state is State.OPEN


async def test_quality_trips_an_async_breaker(clock: FakeClock) -> None:
    @CircuitBreaker(quality_below(0.7, window=3), fallback="fallback", registry=None, clock=clock)
    async def rerank(conf: float) -> str:
        report_quality(conf)
        return "model"

    # The call that fills the window trips the breaker on its own (bad) quality: it gets the
    # fallback, as in ml-breaker, instead of the answer just judged bad.
    assert await asyncio.gather(*(rerank(0.5) for _ in range(3))) == ["model", "model", "fallback"]
    assert await rerank(0.9) == "fallback"


async def test_cancelled_call_is_ignored(clock: FakeClock) -> None:
    breaker = CircuitBreaker(consecutive_failures(1), registry=None, clock=clock)

    @breaker
    async def hang() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(hang())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is State.CLOSED
    stats = breaker.stats()
    assert (stats.failures, stats.ignored) == (0, 1)


async def test_cancelled_probe_releases_its_slot(clock: FakeClock) -> None:
    breaker = CircuitBreaker(consecutive_failures(1), half_open_after=5, registry=None, clock=clock)

    async def down() -> None:
        raise ConnectionError

    async def hang() -> None:
        await asyncio.Event().wait()

    async def ok() -> str:
        return "ok"

    with pytest.raises(CircuitBreakerOpen):
        await breaker.acall(down)
    clock.advance(5)
    probe = asyncio.create_task(breaker.acall(hang))
    await asyncio.sleep(0)
    with pytest.raises(CircuitBreakerOpen):
        await breaker.acall(ok)  # the only slot is taken
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert await breaker.acall(ok) == "ok"  # the slot is free again
    assert breaker.state is State.HALF_OPEN


async def test_timeout_inside_the_call_is_a_failure(clock: FakeClock) -> None:
    breaker = CircuitBreaker(consecutive_failures(1), registry=None, clock=clock)

    async def slow() -> None:
        await asyncio.wait_for(asyncio.Event().wait(), timeout=0)

    with pytest.raises(CircuitBreakerOpen) as info:
        await breaker.acall(slow)
    assert isinstance(info.value.__cause__, TimeoutError)


async def test_concurrent_async_probes_are_limited(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        consecutive_failures(1),
        half_open_after=5,
        half_open_max_calls=3,
        recovery_threshold=3,
        fallback="rejected",
        registry=None,
        clock=clock,
    )
    running = 0
    peak = 0
    gate = asyncio.Event()

    @breaker
    async def probe() -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return "probed"

    async def down() -> None:
        raise ConnectionError

    await breaker.acall(down)  # trips, answered by the fallback
    clock.advance(5)
    tasks = [asyncio.create_task(probe()) for _ in range(7)]
    for _ in range(3):
        await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert sorted(results) == ["probed"] * 3 + ["rejected"] * 4
    assert peak == 3
    assert breaker.state is State.CLOSED


async def test_many_async_calls_are_counted_exactly(clock: FakeClock) -> None:
    breaker = CircuitBreaker(consecutive_failures(10**6), registry=None, clock=clock)

    @breaker
    async def work(i: int) -> int:
        await asyncio.sleep(0)
        if i % 3 == 0:
            raise ValueError(i)
        await asyncio.sleep(0)
        return i

    results = await asyncio.gather(*(work(i) for i in range(300)), return_exceptions=True)
    assert sum(isinstance(r, ValueError) for r in results) == 100
    stats = breaker.stats()
    assert (stats.successes, stats.failures) == (200, 100)
