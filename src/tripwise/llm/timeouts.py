"""The four timeouts of an LLM call."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def _seconds(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Timeouts:
    """``connect``: to open the connection. ``first_token``: from sending the request to the
    first streamed token. ``stall``: the longest silence between two stream chunks. ``total``:
    the whole call. A JSON (non-streamed) answer is bound by ``connect`` and ``total``. None
    disables one."""

    connect: float | None = 5.0
    first_token: float | None = 30.0
    stall: float | None = 30.0
    total: float | None = 120.0

    def __post_init__(self) -> None:
        for name in ("connect", "first_token", "stall", "total"):
            object.__setattr__(self, name, _seconds(name, getattr(self, name)))

    def with_total(self, total: float | None) -> Timeouts:
        """These timeouts with ``total`` replaced (and the others capped by it)."""
        total = _seconds("timeout", total)
        if total is None:
            return self

        def cap(v: float | None) -> float:
            return total if v is None else min(v, total)

        return Timeouts(cap(self.connect), cap(self.first_token), cap(self.stall), total)

    @classmethod
    def of(cls, value: Any) -> Timeouts:
        """``Timeouts`` from a Timeouts, a number (the total) or a dict of its fields."""
        if value is None:
            return cls()
        if isinstance(value, Timeouts):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"connect", "first_token", "stall", "total"}
            if unknown:
                raise ValueError(
                    f"unknown timeouts {sorted(unknown)}; known: connect, first_token, stall, total"
                )
            return cls(**value)
        return cls().with_total(value)
