"""Time helpers: epoch microseconds in the database, ISO-8601 ``Z`` strings on the wire."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def now_us() -> int:
    return time.time_ns() // 1000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(us: int | None) -> str | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1e6, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_ms(ms: int | None) -> str | None:
    return None if ms is None else iso(ms * 1000)


def parse_iso_us(text: str) -> int:
    """Parse an ISO-8601 time (``Z``, offsets, or naive = UTC) into epoch microseconds."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1_000_000)
