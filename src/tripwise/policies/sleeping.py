"""A fake sleep for tests: sleeping advances a :class:`~tripwise.FakeClock` instead of waiting."""

from __future__ import annotations

from tripwise.core.clock import FakeClock


class FakeSleeper:
    """Pass ``sleep=s.sleep`` / ``async_sleep=s.async_sleep`` to a policy; every sleep moves
    ``clock`` forward and is recorded in ``sleeps``, so tests assert waits without waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def __repr__(self) -> str:
        return f"FakeSleeper({self.clock!r}, sleeps={len(self.sleeps)})"
