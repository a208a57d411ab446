"""Breaker states and operating modes."""

from __future__ import annotations

from enum import Enum


class State(str, Enum):
    """Where the breaker's state machine stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __str__(self) -> str:
        return self.value


class Mode(str, Enum):
    """How the breaker gates calls, independent of the automatic state machine.

    ``NORMAL``: the state machine decides. ``FORCED_OPEN``: every call is rejected until
    ``reset()``. ``DISABLED``: every call runs and is recorded in the stats, conditions are not
    evaluated. ``METRICS_ONLY``: conditions are evaluated and transitions happen and emit events,
    but no call is ever rejected (shadow mode, to tune thresholds on live traffic).
    """

    NORMAL = "normal"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"
    METRICS_ONLY = "metrics_only"

    def __str__(self) -> str:
        return self.value
