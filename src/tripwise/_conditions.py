"""ml-breaker's ``ml_breaker._conditions`` path: ``from tripwise._conditions import ...``.

ml-breaker's README imports conditions from its private ``_conditions`` module; this module
keeps that import working after a migration (change ``ml_breaker`` to ``tripwise``). New code
imports the same names from ``tripwise``.

As in ml-breaker, ``Condition`` here is the *protocol* (any object with ``__call__(record)``
and ``reset()``), so ``isinstance`` checks and subclasses written for ml-breaker keep working;
tripwise's base class of the built-in conditions is ``tripwise.Condition``.
"""

from __future__ import annotations

from tripwise.core.conditions import (
    AllOf,
    AnyOf,
    ConditionProtocol,
    ConsecutiveFailures,
    ErrorRateAbove,
    LatencyAbove,
    QualityBelow,
    all_of,
    any_of,
    consecutive_failures,
    error_rate_above,
    latency_above,
    quality_below,
)
from tripwise.core.records import CallRecord

Condition = ConditionProtocol

__all__ = [
    "AllOf",
    "AnyOf",
    "CallRecord",
    "Condition",
    "ConditionProtocol",
    "ConsecutiveFailures",
    "ErrorRateAbove",
    "LatencyAbove",
    "QualityBelow",
    "all_of",
    "any_of",
    "consecutive_failures",
    "error_rate_above",
    "latency_above",
    "quality_below",
]
