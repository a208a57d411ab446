"""The record of one guarded call, as conditions see it."""

from __future__ import annotations

import math


class CallRecord:
    """Outcome of one call: latency, error (or ``None``), quality score (or ``None``), time.

    ``error`` is the exception the call raised, or a :class:`~tripwise.FailedResult` when the
    returned value was classified as a failure. ``timestamp`` is on the breaker's clock.
    """

    __slots__ = ("error", "latency_ms", "quality", "timestamp")

    def __init__(
        self,
        latency_ms: float = 0.0,
        error: BaseException | None = None,
        quality: float | None = None,
        timestamp: float = 0.0,
    ) -> None:
        self.latency_ms = latency_ms
        self.error = error
        self.quality = quality
        self.timestamp = timestamp

    @property
    def failed(self) -> bool:
        """True when the call counts as a failure (it raised, or its result was rejected)."""
        return self.error is not None

    def __repr__(self) -> str:
        return (
            f"CallRecord(latency_ms={self.latency_ms!r}, error={self.error!r}, "
            f"quality={self.quality!r}, timestamp={self.timestamp!r})"
        )


def check_score(score: float, what: str = "quality score") -> float:
    """Validate a score that must be in [0, 1] (constructor arguments, scorer outputs); a
    *reported* score goes through ``signals.check_reported_score`` instead."""
    if type(score) is float and 0.0 <= score <= 1.0:  # the common case; NaN fails the test
        return score
    if isinstance(score, bool):
        raise TypeError(f"{what} must be a number in [0, 1], got {score!r}")
    if not isinstance(score, (int, float)):
        try:
            score = float(score)  # numpy scalars, Decimals
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be a number in [0, 1], got {score!r}") from None
    if not math.isfinite(score) or score < 0.0 or score > 1.0:
        raise ValueError(f"{what} must be a finite number in [0, 1], got {score!r}")
    return float(score)
