"""Per-key token buckets: a burst allowance refilled at a steady rate."""

from __future__ import annotations

import math
import time


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int, clock: object = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate_per_s!r}, {burst!r}")
        self.rate = rate_per_s
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str) -> float:
        """Take one token; returns 0.0 when allowed, else the seconds until one is available."""
        now: float = self._clock()  # type: ignore[operator]
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after_header(wait_s: float) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(wait_s)))}
