"""Where a report lands: ``report_quality`` inside decorated sync calls that run inline (no
context slot, found by their frame) next to scoped calls (context slots), nested every way.

A decorated sync function of a breaker whose calls were never reported to runs inline; the
first report switches the breaker to scoped calls. These tests pin that every report lands
on the innermost guarded call that uses quality, exactly as with context slots alone, and that
nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading

import pytest

from tripwise import (
    CircuitBreaker,
    FakeClock,
    error_rate_above,
    quality_below,
    report_quality,
)
from tripwise.core import signals
from tripwise.quality import current_call_id


def scored(name: str, clock: FakeClock, score: float = 0.9) -> CircuitBreaker:
    """A breaker whose score_fn answers ``score`` (its calls run inline until reported to)."""
    return CircuitBreaker(
        quality_below(0.1, window=50),
        score_fn=lambda _r: score,
        name=name,
        registry=None,
        clock=clock,
    )


def last(b: CircuitBreaker) -> float | None:
    return b.stats().last_quality


@pytest.fixture(autouse=True)
def _nothing_left_behind():
    yield
    assert signals.unscoped == {}, "a report's slot outlived its call"


def test_first_report_into_an_inline_call_wins_over_score_fn_and_later_ones_too(
    clock: FakeClock,
) -> None:
    b = scored("first", clock)

    @b
    def model(value: float) -> str:
        assert report_quality(value) is True
        return "ok"

    assert model(0.42) == "ok"
    assert last(b) == 0.42  # the report, not the score_fn's 0.9
    assert model(0.43) == "ok"  # now a scoped call: same outcome
    assert (last(b), b.stats().quality_count) == (0.43, 2)


def test_a_call_without_a_report_keeps_its_score_fn_score(clock: FakeClock) -> None:
    b = scored("plain", clock, score=0.77)
    assert b(lambda: "x")() == "x"
    assert (last(b), b.stats().quality_count) == (0.77, 1)


def test_nested_inline_calls_each_get_their_own_report(clock: FakeClock) -> None:
    outer, inner = scored("outer", clock), scored("inner", clock)

    @inner
    def embed() -> str:
        report_quality(0.2)
        return "vec"

    @outer
    def answer() -> str:
        embed()
        report_quality(0.6)  # after the inner call returned: the outer call's
        return "answer"

    for _ in range(2):  # inline the first time, scoped the second
        assert answer() == "answer"
        assert (last(outer), last(inner)) == (0.6, 0.2)


def test_a_with_block_inside_an_inline_call_is_the_inner_call(clock: FakeClock) -> None:
    deco, block = scored("deco", clock), scored("block", clock)

    @deco
    def work() -> str:
        with block:
            report_quality(0.3)  # inside the block: the block's
        report_quality(0.7)  # after it: the decorated call's
        return "done"

    assert work() == "done"
    assert (last(block), last(deco)) == (0.3, 0.7)


def test_an_inline_call_inside_a_with_block_is_the_inner_call(clock: FakeClock) -> None:
    deco, block = scored("deco2", clock), scored("block2", clock)

    @deco
    def work() -> str:
        report_quality(0.25)
        return "done"

    with block:
        work()
        report_quality(0.65)
    assert (last(deco), last(block)) == (0.25, 0.65)


def test_scoped_calls_are_not_confused_by_an_inline_breaker_elsewhere(clock: FakeClock) -> None:
    scored("bystander", clock)  # an inline breaker exists: reports walk the stack
    b = CircuitBreaker(quality_below(0.1, window=50), name="call", registry=None, clock=clock)
    assert b.call(lambda: report_quality(0.55)) is True
    assert last(b) == 0.55


def test_a_report_from_a_function_called_by_score_fn_does_not_land_on_the_finished_call(
    clock: FakeClock,
) -> None:
    seen: list[bool] = []

    def score_fn(_result: object) -> float:
        seen.append(report_quality(0.01))  # the call already returned: nothing receives it
        return 0.8

    b = CircuitBreaker(
        quality_below(0.1, window=50), score_fn=score_fn, name="sf", registry=None, clock=clock
    )
    assert b(lambda: "r")() == "r"
    assert seen == [False]
    assert last(b) == 0.8


def test_a_report_then_an_exception_leaves_nothing_behind(clock: FakeClock) -> None:
    b = CircuitBreaker(
        error_rate_above(0.9, window=50) | quality_below(0.1, window=50),
        score_fn=lambda _r: 0.9,
        name="raises",
        registry=None,
        clock=clock,
    )

    @b
    def fails() -> None:
        report_quality(0.4)
        raise KeyError("boom")

    with pytest.raises(KeyError):
        fails()
    assert b.stats().failures == 1


def test_current_call_id_inside_an_inline_call_takes_a_late_score(clock: FakeClock) -> None:
    b = scored("late", clock)
    ids: list[str] = []

    @b
    def model() -> str:
        ids.append(current_call_id())
        assert current_call_id() == ids[0]  # the same id twice in one call
        return "ok"

    model()
    assert b.record_late_quality(ids[0], 0.05) is True
    assert b.stats().last_quality == 0.05


def test_a_report_deep_in_the_stack_finds_its_call(clock: FakeClock) -> None:
    b = scored("deep", clock)

    def down(n: int) -> bool:
        return report_quality(0.33) if n == 0 else down(n - 1)

    assert b(lambda: down(min(400, sys.getrecursionlimit() // 3)))() is True
    assert last(b) == 0.33


def test_concurrent_first_reports_from_many_threads_each_land_on_their_call(
    clock: FakeClock,
) -> None:
    b = scored("threads", clock)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    @b
    def model(value: float) -> float:
        assert report_quality(value) is True
        return value

    def worker(i: int) -> None:
        try:
            start.wait()
            for j in range(50):
                model(0.5 + (i * 50 + j) / 1000)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stats = b.stats()
    assert stats.quality_count == 400
    assert stats.avg_quality == pytest.approx(0.5 + sum(range(400)) / 1000 / 400)


def test_a_sync_call_in_a_worker_thread_of_an_async_call_is_the_inner_call(
    clock: FakeClock,
) -> None:
    sync_b, async_b = scored("sync", clock), scored("async", clock)

    @sync_b
    def blocking() -> str:
        report_quality(0.15)
        return "b"

    @async_b
    async def handler() -> str:
        await asyncio.to_thread(blocking)  # the thread runs in a copy of this call's context
        report_quality(0.85)
        return "h"

    assert asyncio.run(handler()) == "h"
    assert (last(sync_b), last(async_b)) == (0.15, 0.85)


def test_a_task_of_a_loop_run_inside_an_inline_call_reports_to_its_async_call(
    clock: FakeClock,
) -> None:
    sync_b, async_b = scored("outer-sync", clock), scored("inner-async", clock)

    async def child() -> None:
        report_quality(0.35)  # a task spawned by the async call: the async call's

    @async_b
    async def inner() -> str:
        await asyncio.gather(child())
        return "i"

    @sync_b
    def outer() -> str:
        asyncio.run(inner())
        report_quality(0.95)
        return "o"

    assert outer() == "o"
    assert (last(async_b), last(sync_b)) == (0.35, 0.95)


def test_an_inline_call_run_in_an_empty_context_still_gets_its_report(clock: FakeClock) -> None:
    b, block = scored("empty-ctx", clock), scored("ctx-block", clock)

    @b
    def model() -> str:
        contextvars.Context().run(report_quality, 0.45)  # no context slot in there
        return "ok"

    with block:
        model()
    assert last(b) == 0.45
    assert block.stats().last_quality is None  # a block has no result for its score_fn


def test_a_task_of_a_loop_inside_an_inline_call_inside_a_scoped_call(clock: FakeClock) -> None:
    scoped_b = CircuitBreaker(quality_below(0.1, window=50), name="sc", registry=None, clock=clock)
    sync_b, async_b = scored("mid-sync", clock), scored("mid-async", clock)

    async def child() -> None:
        report_quality(0.31)

    @async_b
    async def inner() -> None:
        await asyncio.gather(child())

    @sync_b
    def middle() -> None:
        asyncio.run(inner())
        report_quality(0.61)

    def outer() -> None:
        middle()
        report_quality(0.81)

    assert scoped_b.call(outer) is None
    assert (last(async_b), last(sync_b), last(scoped_b)) == (0.31, 0.61, 0.81)


def test_a_plain_task_of_a_loop_inside_an_inline_call_reports_to_that_call(
    clock: FakeClock,
) -> None:
    block, sync_b = scored("around", clock), scored("loop-owner", clock)

    async def plain() -> None:
        report_quality(0.27)  # no async guarded call in between: the sync call's

    @sync_b
    def work() -> None:
        asyncio.run(plain())

    with block:
        work()
    assert last(sync_b) == 0.27
    assert last(block) is None


def test_streams_and_inline_calls_nested_both_ways(clock: FakeClock) -> None:
    deco, stream_b, helper = (
        scored("s-deco", clock),
        scored("s-stream", clock),
        scored("s-help", clock),
    )

    @helper
    def check(token: str) -> str:
        report_quality(0.22)  # inside the stream's generator, in an inline call: the helper's
        return token

    @stream_b
    def tokens():
        yield check("a")
        report_quality(0.44)  # in the generator body: the stream's
        yield "b"

    @deco
    def answer() -> str:
        text = "".join(tokens())
        report_quality(0.66)  # after the stream: the decorated call's
        return text

    assert answer() == "ab"
    assert (last(helper), last(stream_b), last(deco)) == (0.22, 0.44, 0.66)


def test_a_report_from_the_fallback_of_an_open_breaker_reaches_no_call(clock: FakeClock) -> None:
    seen: list[bool] = []

    def fallback() -> str:
        seen.append(report_quality(0.5))  # the call was rejected: nothing receives it
        return "cached"

    b = CircuitBreaker(
        quality_below(0.5, window=2),
        score_fn=lambda _r: 0.1,
        fallback=fallback,
        name="open-fb",
        registry=None,
        clock=clock,
    )
    model = b(lambda: "fresh")
    model()
    assert model() == "cached"  # this call's own low score tripped it: its fallback answers
    assert model() == "cached"  # rejected while open
    assert seen == [False, False]
    assert b.stats().quality_count == 2


def test_a_report_from_a_worker_thread_of_an_inline_call_lands_after_the_first() -> None:
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    breaker = CircuitBreaker(quality_below(0.5, window=5), name="pool", registry=None)

    @breaker
    def answer(score: float) -> bool:
        with ThreadPoolExecutor(1) as pool:
            ctx = contextvars.copy_context()
            return pool.submit(ctx.run, report_quality, score).result()

    assert answer(0.7) is False  # the inline call put no slot in the context it copied
    assert signals.inline_off and breaker.path.scoped  # ... so every breaker is scoped now
    assert answer(0.55) is True
    assert breaker.stats().last_quality == 0.55
    late = CircuitBreaker(quality_below(0.5, window=5), name="later", registry=None)
    assert late.path.scoped  # breakers built afterwards too
