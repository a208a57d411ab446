"""Guarded streams: generator and async generator functions under a breaker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    State,
    StreamRecord,
    consecutive_failures,
    latency_above,
    quality_below,
    report_quality,
)


def make(clock: FakeClock, trip_on: Any = None, **kw: Any) -> CircuitBreaker:
    kw.setdefault("half_open_after", 10)
    return CircuitBreaker(
        consecutive_failures(1) if trip_on is None else trip_on, registry=None, clock=clock, **kw
    )


class Recorder:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def on_call(self, breaker: Any, record: Any, outcome: str) -> None:
        self.records.append((record, outcome))


def test_a_decorated_generator_is_admitted_at_the_first_item(clock: FakeClock) -> None:
    breaker = make(clock)
    started: list[int] = []

    @breaker
    def tokens(n: int) -> Iterator[str]:
        started.append(n)
        yield from (f"t{i}" for i in range(n))

    stream = tokens(3)
    assert started == [] and breaker.stats().successes == 0
    breaker.force_open()
    with pytest.raises(CircuitBreakerOpen):
        next(stream)  # admission happens here, not at tokens(3)
    breaker.reset()
    assert list(tokens(3)) == ["t0", "t1", "t2"]
    assert breaker.stats().successes == 1


def test_a_failing_stream_trips_and_the_next_one_gets_the_fallback_stream(
    clock: FakeClock,
) -> None:
    def cached(prompt: str) -> Iterator[str]:
        yield f"cached:{prompt}"

    breaker = make(clock, fallback=cached)

    @breaker
    def generate(prompt: str) -> Iterator[str]:
        raise RuntimeError("model down")
        yield "never"

    assert list(generate("a")) == ["cached:a"]  # it tripped before its first item
    assert breaker.state is State.OPEN
    assert list(generate("b")) == ["cached:b"]  # rejected: the fallback's items


def test_a_static_fallback_is_streamed_as_one_item(clock: FakeClock) -> None:
    breaker = make(clock, fallback="sorry")
    breaker.force_open()

    @breaker
    def generate() -> Iterator[str]:
        yield "x"

    assert list(generate()) == ["sorry"]


def test_an_error_after_items_propagates_and_counts_as_a_failure(clock: FakeClock) -> None:
    breaker = make(clock, fallback="fb")

    @breaker
    def generate() -> Iterator[str]:
        yield "a"
        raise ValueError("cut off")

    stream = generate()
    assert next(stream) == "a"
    with pytest.raises(ValueError, match="cut off"):
        next(stream)
    assert breaker.state is State.OPEN and breaker.stats().failures == 1


def test_closing_early_is_a_success_and_closes_the_generator(clock: FakeClock) -> None:
    breaker = make(clock)
    closed: list[bool] = []

    @breaker
    def generate() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            closed.append(True)

    for item in generate():
        if item == 2:
            break
    assert closed == [True]  # the for loop dropped the stream: collected and closed
    stream = generate()
    next(stream)
    stream.close()
    assert breaker.stats().successes == 2 and breaker.stats().failures == 0


def test_latency_to_first_item_and_total_are_recorded(clock: FakeClock) -> None:
    recorder = Recorder()
    breaker = make(clock, latency_above(500, window=1), listeners=[recorder])

    @breaker
    def generate() -> Iterator[str]:
        clock.advance(0.1)
        yield "first"
        clock.advance(2.0)  # a long stream: total 2.1 s, but it started quickly
        yield "second"

    assert list(generate()) == ["first", "second"]
    ((record, outcome),) = recorder.records
    assert isinstance(record, StreamRecord) and outcome == "success"
    assert record.first_item_ms == pytest.approx(100.0)
    assert record.total_ms == pytest.approx(2100.0)
    assert record.items == 2
    assert breaker.state is State.CLOSED  # latency conditions judge the time to first item


def test_report_quality_while_streaming_from_the_body_and_the_consumer(clock: FakeClock) -> None:
    breaker = make(clock, quality_below(0.5, window=1))

    @breaker
    def generate() -> Iterator[str]:
        report_quality(0.9)
        yield "a"
        yield "b"

    stream = generate()
    assert next(stream) == "a"
    assert stream.report_quality(0.2)  # the consumer judged the text: last report wins
    assert list(stream) == ["b"]
    assert breaker.state is State.OPEN
    assert breaker.stats().last_quality == 0.2


def test_breaker_call_and_stream_guard_generator_functions(clock: FakeClock) -> None:
    breaker = make(clock)

    def gen(n: int) -> Iterator[int]:
        yield from range(n)

    assert list(breaker.call(gen, 2)) == [0, 1]
    assert list(breaker.stream(gen, 3)) == [0, 1, 2]
    assert breaker.stats().successes == 2


async def test_an_async_generator_is_guarded(clock: FakeClock) -> None:
    async def cached(prompt: str) -> AsyncIterator[str]:
        yield "cached"

    breaker = make(clock, fallback=cached)

    @breaker
    async def generate(prompt: str) -> AsyncIterator[str]:
        if prompt == "bad":
            raise RuntimeError("down")
        yield prompt
        report_quality(0.9)
        yield "done"

    assert [x async for x in generate("hi")] == ["hi", "done"]
    assert [x async for x in generate("bad")] == ["cached"]
    assert breaker.state is State.OPEN
    assert [x async for x in generate("hi")] == ["cached"]


async def test_an_async_stream_closed_early_counts_as_a_success(clock: FakeClock) -> None:
    breaker = make(clock)

    @breaker
    async def generate() -> AsyncIterator[int]:
        for i in range(10):
            yield i

    stream = generate()
    assert await stream.__anext__() == 0
    await stream.aclose()
    assert breaker.stats().successes == 1


async def test_an_async_stream_rejected_without_fallback_raises(clock: FakeClock) -> None:
    breaker = make(clock)
    breaker.force_open()

    @breaker
    async def generate() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(CircuitBreakerOpen):
        await generate().__anext__()


def test_an_async_fallback_for_a_sync_stream_is_refused(clock: FakeClock) -> None:
    async def fb() -> str:
        return "x"

    breaker = make(clock, fallback=fb)

    def generate() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="async"):
        breaker(generate)


def test_call_on_a_quality_breaker_guards_a_generator_function(clock: FakeClock) -> None:
    breaker = make(clock, quality_below(0.5, window=1))

    def gen() -> Iterator[str]:
        report_quality(0.1)
        yield "low"

    stream = breaker.call(gen)
    assert breaker.stats().successes == 0  # not admitted yet
    assert list(stream) == ["low"]
    assert breaker.state is State.OPEN


async def test_acall_of_an_async_generator_function_points_to_stream(clock: FakeClock) -> None:
    breaker = make(clock)

    async def agen() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match="stream"):
        await breaker.acall(agen)  # type: ignore[arg-type]
    assert [x async for x in breaker.stream(agen)] == [1]


def test_call_of_a_function_returning_a_generator_is_a_plain_call_on_every_path() -> None:
    import types

    from tripwise import CircuitBreaker, consecutive_failures, quality_below

    def gen() -> Any:
        yield 1

    def make() -> Any:
        return gen()  # a plain function that returns a generator

    lean = CircuitBreaker(consecutive_failures(2), name="lean-gen", registry=None)
    scored = CircuitBreaker(quality_below(0.5, window=2), name="q-gen", registry=None)
    for breaker in (lean, scored):
        assert type(breaker.call(make)) is types.GeneratorType
        assert type(breaker.call(gen)) is not types.GeneratorType  # a generator function
        assert breaker.stats().successes >= 1
