"""Timeouts against real waiting: an abandoned worker thread, a cancelled coroutine."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tripwise import CircuitBreaker, report_quality
from tripwise.policies import CallTimeout, Timeout, remaining_time

pytestmark = pytest.mark.integration


def test_sync_call_is_abandoned_in_its_worker_thread_at_the_deadline(wait: Any) -> None:
    release = threading.Event()
    finished = threading.Event()

    def hangs() -> str:
        release.wait(10)
        finished.set()
        return "late"

    timeout = Timeout(0.05)
    with pytest.raises(CallTimeout) as info:
        timeout.call(hangs)
    assert info.value.abandoned is True
    assert timeout.abandoned == 1 and timeout.timeouts == 1
    assert not finished.is_set()  # the caller did not wait for it
    release.set()  # the abandoned call runs to completion on its own; its result is dropped
    wait(lambda: timeout.abandoned == 0)
    assert finished.is_set()


def test_sync_thread_mode_returns_results_errors_and_context() -> None:
    timeout = Timeout(5.0)
    assert timeout.call(lambda a, b: a + b, 2, b=3) == 5
    with pytest.raises(ZeroDivisionError):
        timeout.call(lambda: 1 / 0)
    seen = timeout.call(remaining_time)
    assert seen is not None and 0 < seen <= 5.0
    # report_quality inside the worker reaches the breaker guarding the call.
    breaker = CircuitBreaker(score_fn=None, require_quality_signal=True, registry=None)

    def scored() -> str:
        report_quality(0.7)
        return "ok"

    assert breaker.call(timeout.call, scored) == "ok"
    assert breaker.stats().last_quality == 0.7


async def test_async_call_is_cancelled_at_the_deadline() -> None:
    cancelled = asyncio.Event()

    async def hangs() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    timeout = Timeout(0.05)
    with pytest.raises(CallTimeout):
        await timeout.acall(hangs)
    assert cancelled.is_set()
    assert timeout.timeouts == 1


async def test_a_timeout_error_raised_by_the_callee_is_not_ours() -> None:
    async def raises_own_timeout() -> None:
        raise TimeoutError("the callee's own timeout")

    timeout = Timeout(5.0)
    with pytest.raises(TimeoutError, match="callee's own") as info:
        await timeout.acall(raises_own_timeout)
    assert not isinstance(info.value, CallTimeout)
    assert timeout.timeouts == 0
