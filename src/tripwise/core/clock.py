"""Time sources. The breaker reads time only through a clock, so tests inject a fake one."""

from __future__ import annotations

import time
from collections.abc import Callable

from tripwise.core.validation import check_finite, check_number

Clock = Callable[[], float]
"""A zero-argument callable returning seconds on a monotonic scale."""


def monotonic() -> float:
    """The default clock: ``time.monotonic()``, looked up at every call, so that
    ``unittest.mock.patch("time.monotonic")``, freezegun and time-machine move breakers."""
    return time.monotonic()


class FakeClock:
    """A manually advanced clock for tests: ``clock.advance(5)`` moves time forward 5 s."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 1000.0) -> None:
        self._now = check_finite("FakeClock start", start)

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        now = self._now + check_number(
            "FakeClock.advance: seconds", seconds, low=0.0, inclusive=True
        )
        if not now < float("inf"):
            raise ValueError(f"FakeClock.advance: the clock would pass infinity ({seconds!r} s)")
        self._now = now

    def set(self, now: float) -> None:
        now = check_finite("FakeClock.set: now", now)
        if now < self._now:
            raise ValueError(f"FakeClock.set: time cannot go backwards ({now!r} < {self._now!r})")
        self._now = float(now)

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
