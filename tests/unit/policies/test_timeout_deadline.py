"""Timeout in cooperative ("deadline") mode on a fake clock, and its arguments."""

from __future__ import annotations

import asyncio

import pytest

from tripwise import CircuitBreaker, CircuitBreakerOpen, FakeClock, consecutive_failures
from tripwise.policies import CallTimeout, Timeout, remaining_time


def test_callee_reads_the_remaining_time_and_a_late_answer_is_a_timeout() -> None:
    clock = FakeClock()
    timeout = Timeout(2.0, sync_mode="deadline", clock=clock)
    seen = []

    def work(cost: float) -> str:
        seen.append(remaining_time())
        clock.advance(cost)
        return "done"

    assert timeout.call(work, 1.5) == "done"
    assert seen == [2.0]
    with pytest.raises(CallTimeout) as info:
        timeout.call(work, 2.5)
    assert isinstance(info.value, TimeoutError)
    assert timeout.timeouts == 1
    assert remaining_time() is None  # no deadline outside a call


def test_nested_timeouts_keep_the_earlier_deadline() -> None:
    clock = FakeClock()
    outer = Timeout(1.0, sync_mode="deadline", clock=clock)
    inner = Timeout(5.0, sync_mode="deadline", clock=clock)
    assert outer.call(lambda: inner.call(remaining_time)) == 1.0


def test_a_timeout_counts_as_a_breaker_failure() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(consecutive_failures(2), clock=clock, registry=None)
    timeout = Timeout(1.0, sync_mode="deadline", clock=clock)

    @breaker
    @timeout
    def slow() -> None:
        clock.advance(3.0)

    with pytest.raises(CallTimeout):
        slow()
    with pytest.raises(CircuitBreakerOpen) as info:  # the call that trips says so
        slow()
    assert isinstance(info.value.__cause__, CallTimeout)
    assert breaker.stats().failures == 2
    assert breaker.state.value == "open"


def test_errors_of_the_callee_propagate_unchanged() -> None:
    timeout = Timeout(1.0, sync_mode="deadline", clock=FakeClock())
    with pytest.raises(KeyError):
        timeout.call(dict().__getitem__, "x")


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_seconds_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="timeout seconds must be a finite number > 0"):
        Timeout(bad)


def test_bad_mode_and_type() -> None:
    with pytest.raises(ValueError, match="sync_mode"):
        Timeout(1, sync_mode="signal")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a number"):
        Timeout("1")  # type: ignore[arg-type]


async def test_cancelling_a_caller_whose_call_just_finished_still_cancels_it() -> None:
    # The interleaving that made HealthChecker.stop() hang on 3.10: the callee's answer and the
    # caller's cancellation land in the same loop iteration (asyncio.wait_for returned the
    # answer there and dropped the cancellation).
    answer = asyncio.get_running_loop().create_future()

    async def callee() -> str:
        return await answer  # type: ignore[no-any-return]

    caller = asyncio.ensure_future(Timeout(5.0).acall(callee))
    for _ in range(3):
        await asyncio.sleep(0)  # the caller now waits for the callee
    answer.set_result("done")
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_a_callee_raising_its_own_asyncio_timeout_is_not_a_policy_timeout() -> None:
    timeout = Timeout(5.0)

    async def callee() -> None:
        raise asyncio.TimeoutError("the callee's own")  # not TimeoutError before 3.11

    with pytest.raises(asyncio.TimeoutError, match="callee's own") as info:
        await timeout.acall(callee)
    assert not isinstance(info.value, CallTimeout) and timeout.timeouts == 0
