"""Hand-written call records for driving conditions through ml-breaker's protocol."""

from __future__ import annotations

from tripwise import CallRecord

ERR = RuntimeError("boom")


def ok(latency_ms: float = 1.0, quality: float | None = None, t: float = 0.0) -> CallRecord:
    return CallRecord(latency_ms=latency_ms, error=None, quality=quality, timestamp=t)


def fail(latency_ms: float = 1.0, t: float = 0.0) -> CallRecord:
    return CallRecord(latency_ms=latency_ms, error=ERR, quality=None, timestamp=t)


def feed(cond: object, records: list[CallRecord]) -> list[bool]:
    """Show each record to the condition; what it answered, call by call."""
    return [bool(cond(r)) for r in records]  # type: ignore[operator]


def fields(records: list[CallRecord]) -> list[tuple[object, ...]]:
    return [(r.latency_ms, r.error, r.quality, r.timestamp) for r in records]


def raise_value_error() -> None:
    raise ValueError("bad")
