"""Brute-force reference semantics of the trip conditions, for differential tests.

Each reference re-reads the whole history on every call (exact :class:`fractions.Fraction`
arithmetic, no running totals), so it states the documented meaning directly:

- ``quality_below``: the mean of the last ``window`` scored calls is below ``threshold``.
- ``latency_above``: every latency in the (full) window exceeds ``threshold_ms``.
- ``error_rate_above``: the failure rate of the (full) window strictly exceeds ``rate``.
- ``consecutive_failures``: the current run of failures is at least ``n`` long.
- ``slow_call_rate_above``: the share of calls slower than ``slow_ms`` strictly exceeds ``rate``.
- ``latency_quantile_above``: the nearest-rank ``q`` quantile of latency exceeds ``threshold_ms``.
- ``low_quality_rate_above``: the share of scored calls below ``threshold`` exceeds ``rate``.

A count window holds the last ``window`` observations and may trip once it holds ``min_calls``
(default: full). A time window of ``seconds`` in ``buckets`` buckets holds the observations
whose bucket (``floor(t / (seconds / buckets))``) is one of the ``buckets`` most recent, and
may trip once it holds ``min_calls`` (default 10). Quality rules only see scored calls, and a
call without a score never trips them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import tripwise
from tripwise import CallRecord

TIME_MIN_CALLS_DEFAULT = 10


@dataclass(frozen=True)
class Rec:
    """One call as the tests describe it."""

    error: bool
    latency_ms: float = 0.0
    quality: float | None = None
    t: float = 0.0

    def record(self) -> CallRecord:
        return CallRecord(
            latency_ms=self.latency_ms,
            error=RuntimeError("boom") if self.error else None,
            quality=self.quality,
            timestamp=self.t,
        )


def exact(x: float) -> Fraction:
    """The number the user wrote: ``0.95`` means 95/100, not the nearest binary float."""
    return Fraction(repr(x)) if isinstance(x, float) else Fraction(x)


@dataclass(frozen=True)
class WindowSpec:
    window: int = 20
    window_seconds: float | None = None
    buckets: int = 10
    min_calls: int | None = None

    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"buckets": self.buckets}
        if self.window_seconds is not None:
            kw["window_seconds"] = self.window_seconds  # (window and window_seconds exclude)
        else:
            kw["window"] = self.window
        if self.min_calls is not None:
            kw["min_calls"] = self.min_calls
        return kw

    def need(self) -> int:
        if self.min_calls is not None:
            return self.min_calls
        return TIME_MIN_CALLS_DEFAULT if self.window_seconds is not None else self.window

    def select(self, history: Sequence[Rec]) -> list[Rec]:
        """What the window holds after the last record of ``history`` was added."""
        if not history:
            return []
        if self.window_seconds is None:
            return list(history[-self.window :])
        width = Fraction(self.window_seconds) / self.buckets
        head = math.floor(Fraction(history[-1].t) / width)
        return [r for r in history if math.floor(Fraction(r.t) / width) > head - self.buckets]


RefFn = Callable[[Sequence[Rec]], bool]


def ref_quality_below(threshold: float, spec: WindowSpec) -> RefFn:
    def trips(history: Sequence[Rec]) -> bool:
        if history[-1].quality is None:
            return False
        scored = spec.select([r for r in history if r.quality is not None])
        total = sum((exact(r.quality) for r in scored if r.quality is not None), Fraction(0))
        return len(scored) >= spec.need() and total < exact(threshold) * len(scored)

    return trips


def ref_low_quality_rate_above(rate: float, threshold: float, spec: WindowSpec) -> RefFn:
    def trips(history: Sequence[Rec]) -> bool:
        if history[-1].quality is None:
            return False
        scored = spec.select([r for r in history if r.quality is not None])
        low = sum(1 for r in scored if r.quality is not None and r.quality < threshold)
        return len(scored) >= spec.need() and low > exact(rate) * len(scored)

    return trips


def ref_latency_above(threshold_ms: float, spec: WindowSpec) -> RefFn:
    def trips(history: Sequence[Rec]) -> bool:
        held = spec.select(history)
        return len(held) >= spec.need() and all(r.latency_ms > threshold_ms for r in held)

    return trips


def ref_error_rate_above(rate: float, spec: WindowSpec) -> RefFn:
    def trips(history: Sequence[Rec]) -> bool:
        held = spec.select(history)
        failures = sum(1 for r in held if r.error)
        return len(held) >= spec.need() and failures > exact(rate) * len(held)

    return trips


def ref_slow_call_rate_above(rate: float, slow_ms: float, spec: WindowSpec) -> RefFn:
    def trips(history: Sequence[Rec]) -> bool:
        held = spec.select(history)
        slow = sum(1 for r in held if r.latency_ms > slow_ms)
        return len(held) >= spec.need() and slow > exact(rate) * len(held)

    return trips


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile: the ``ceil(q * n)``-th smallest value (rank >= 1)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(exact(q) * len(ordered)))
    return ordered[rank - 1]


def ref_latency_quantile_above(q: float, threshold_ms: float, spec: WindowSpec) -> RefFn:
    def trips(history: Sequence[Rec]) -> bool:
        held = spec.select(history)
        if len(held) < spec.need():
            return False
        return nearest_rank([r.latency_ms for r in held], q) > threshold_ms

    return trips


def ref_consecutive_failures(n: int) -> RefFn:
    def trips(history: Sequence[Rec]) -> bool:
        streak = 0
        for r in reversed(history):
            if not r.error:
                break
            streak += 1
        return streak >= n

    return trips


def ref_any_of(*refs: RefFn) -> RefFn:
    return lambda history: any([ref(history) for ref in refs])


def ref_all_of(*refs: RefFn) -> RefFn:
    return lambda history: all([ref(history) for ref in refs])


@dataclass(frozen=True)
class Rule:
    """A condition constructor and its reference, built from the same parameters."""

    kind: str
    params: tuple[Any, ...]
    spec: WindowSpec

    def build(self) -> tripwise.Condition:
        kw = self.spec.kwargs()
        if self.kind == "quality_below":
            return tripwise.quality_below(*self.params, **kw)
        if self.kind == "low_quality_rate_above":
            return tripwise.low_quality_rate_above(*self.params, **kw)
        if self.kind == "latency_above":
            return tripwise.latency_above(*self.params, **kw)
        if self.kind == "error_rate_above":
            return tripwise.error_rate_above(*self.params, **kw)
        if self.kind == "slow_call_rate_above":
            return tripwise.slow_call_rate_above(*self.params, **kw)
        if self.kind == "latency_quantile_above":
            return tripwise.latency_quantile_above(*self.params, **kw)
        if self.kind == "consecutive_failures":
            return tripwise.consecutive_failures(*self.params)
        raise AssertionError(self.kind)

    def reference(self) -> RefFn:
        makers: dict[str, Callable[..., RefFn]] = {
            "quality_below": ref_quality_below,
            "low_quality_rate_above": ref_low_quality_rate_above,
            "latency_above": ref_latency_above,
            "error_rate_above": ref_error_rate_above,
            "slow_call_rate_above": ref_slow_call_rate_above,
            "latency_quantile_above": ref_latency_quantile_above,
        }
        if self.kind == "consecutive_failures":
            return ref_consecutive_failures(*self.params)
        return makers[self.kind](*self.params, self.spec)

    def __repr__(self) -> str:
        return f"{self.kind}{self.params} {self.spec}"
