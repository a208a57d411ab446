"""Small test helpers: breakers on a fake clock, guarded calls held open across transitions,
failing functions."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    consecutive_failures,
    report_quality,
)


def make_breaker(
    clock: FakeClock, trip_on: object = None, *, failures: int = 1, **kw: Any
) -> CircuitBreaker:
    """An unregistered breaker on ``clock`` that probes 10 s after opening (unless
    ``half_open_after`` says otherwise) and trips on ``trip_on``, by default after
    ``failures`` consecutive failures."""
    kw.setdefault("half_open_after", 10)
    return CircuitBreaker(
        consecutive_failures(failures) if trip_on is None else trip_on,
        clock=clock,
        registry=None,
        **kw,
    )


class Inflight:
    """A guarded call that has been admitted and not finished yet.

    It runs ``with breaker:`` by hand inside its own context, so several calls can be in
    flight at once in one thread and finish in any order, deterministically. Creating one
    raises :class:`CircuitBreakerOpen` when the breaker rejects the call.
    """

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = breaker
        self.ctx = contextvars.copy_context()
        self.ctx.run(breaker.__enter__)

    def succeed(self, quality: float | None = None) -> None:
        def done() -> None:
            if quality is not None:
                report_quality(quality)
            self.breaker.__exit__(None, None, None)

        self.ctx.run(done)

    def fail(self, exc: BaseException | None = None) -> CircuitBreakerOpen | None:
        """Finish with ``exc``; returns the CircuitBreakerOpen raised when this call tripped."""
        error = exc if exc is not None else RuntimeError("boom")
        try:
            self.ctx.run(self.breaker.__exit__, type(error), error, None)
        except CircuitBreakerOpen as tripped:
            return tripped
        return None


def raiser(exc: BaseException) -> Callable[..., Any]:
    """A function that raises ``exc`` whatever it is called with."""

    def fn(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fn


def boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("boom")


def attempt(breaker: CircuitBreaker, fn: Callable[..., Any], *args: Any) -> Any:
    """Call through the breaker and return the result or the exception it raised."""
    try:
        return breaker.call(fn, *args)
    except Exception as exc:
        return exc


def trip(breaker: CircuitBreaker, failures: int = 1) -> None:
    """Fail ``failures`` calls (enough to trip the breaker's condition)."""
    for _ in range(failures):
        attempt(breaker, boom)
