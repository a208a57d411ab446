"""Trip conditions: small composable objects that watch call records and say when to trip.

This module is the public face of the conditions (their code lives in ``condition_base``,
``rules``, ``scored`` and ``compose``). Every condition owns exactly one data structure, its
window (``cond.window``; ``consecutive_failures`` needs none), and answers in O(1).

The public classes are also the constructors, tenacity style: ``error_rate_above`` *is*
:class:`ErrorRateAbove`, so each signature is written once and a repr reads like the code that
built the condition. The lowercase names are ml-breaker's.
"""

from __future__ import annotations

from tripwise.core.compose import AllOf, AnyOf, as_condition
from tripwise.core.condition_base import (
    DEFAULT_TIME_MIN_CALLS,
    DEFAULT_WINDOW,
    Condition,
    ConditionProtocol,
    ScoreFn,
    WindowRule,
)
from tripwise.core.records import CallRecord
from tripwise.core.rules import (
    ConsecutiveFailures,
    ErrorRateAbove,
    LatencyAbove,
    LatencyQuantileAbove,
    SlowCallRateAbove,
)
from tripwise.core.scored import (
    DEFAULT_SCORE_RANGE,
    SCORE_TOLERANCE,
    LowQualityRateAbove,
    QualityBelow,
    ScoredCondition,
)
from tripwise.core.validation import check_int as check_int  # re-exported for other layers
from tripwise.core.validation import check_positive as check_positive
from tripwise.core.validation import check_rate as check_rate
from tripwise.core.validation import check_score_fn as check_score_fn

__all__ = [
    "AllOf",
    "AnyOf",
    "Condition",
    "ConditionProtocol",
    "ConsecutiveFailures",
    "ErrorRateAbove",
    "LatencyAbove",
    "LatencyQuantileAbove",
    "LowQualityRateAbove",
    "QualityBelow",
    "ScoredCondition",
    "SlowCallRateAbove",
    "WindowRule",
    "all_of",
    "any_of",
    "as_condition",
    "consecutive_failures",
    "error_rate_above",
    "latency_above",
    "latency_quantile_above",
    "low_quality_rate_above",
    "quality_below",
    "slow_call_rate_above",
    # used by other layers
    "DEFAULT_SCORE_RANGE",
    "DEFAULT_TIME_MIN_CALLS",
    "DEFAULT_WINDOW",
    "SCORE_TOLERANCE",
    "CallRecord",
    "ScoreFn",
]

# The ml-breaker names: the classes themselves, so each signature lives in one place.
quality_below = QualityBelow
latency_above = LatencyAbove
error_rate_above = ErrorRateAbove
consecutive_failures = ConsecutiveFailures
slow_call_rate_above = SlowCallRateAbove
latency_quantile_above = LatencyQuantileAbove
low_quality_rate_above = LowQualityRateAbove
any_of = AnyOf
all_of = AllOf
