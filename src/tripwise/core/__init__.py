"""The tripwise engine: records, windows, conditions, the breaker state machine, registry.

Pure Python, no third-party imports, no I/O.
"""

from tripwise.core.breaker import CircuitBreaker
from tripwise.core.clock import Clock, FakeClock, monotonic
from tripwise.core.conditions import (
    AllOf,
    AnyOf,
    Condition,
    ConditionProtocol,
    all_of,
    any_of,
    as_condition,
    consecutive_failures,
    error_rate_above,
    latency_above,
    latency_quantile_above,
    low_quality_rate_above,
    quality_below,
    slow_call_rate_above,
)
from tripwise.core.config import BreakerConfig
from tripwise.core.decorator import circuit_breaker
from tripwise.core.errors import (
    CircuitBreakerOpen,
    FailedResult,
    QualitySignalMissing,
    TripwiseError,
)
from tripwise.core.events import Listener
from tripwise.core.guard import NO_FALLBACK
from tripwise.core.histogram import LogHistogram
from tripwise.core.path import Path
from tripwise.core.records import CallRecord
from tripwise.core.registry import Registry, default_registry
from tripwise.core.shared import SharedState, StateLink, StateStore
from tripwise.core.signals import report_quality
from tripwise.core.states import Mode, State
from tripwise.core.stats import BreakerStats
from tripwise.core.streaming import AsyncGuardedStream, GuardedStream, StreamRecord
from tripwise.core.windows import Aggregate, CountWindow, TimeWindow

__all__ = [
    "NO_FALLBACK",
    "Aggregate",
    "AsyncGuardedStream",
    "BreakerConfig",
    "AllOf",
    "AnyOf",
    "BreakerStats",
    "CallRecord",
    "CircuitBreaker",
    "CircuitBreakerOpen",
    "Clock",
    "Condition",
    "ConditionProtocol",
    "CountWindow",
    "FailedResult",
    "FakeClock",
    "GuardedStream",
    "Listener",
    "LogHistogram",
    "Mode",
    "Path",
    "QualitySignalMissing",
    "Registry",
    "SharedState",
    "State",
    "StateLink",
    "StateStore",
    "StreamRecord",
    "TimeWindow",
    "TripwiseError",
    "all_of",
    "any_of",
    "as_condition",
    "circuit_breaker",
    "consecutive_failures",
    "default_registry",
    "error_rate_above",
    "latency_above",
    "latency_quantile_above",
    "low_quality_rate_above",
    "monotonic",
    "quality_below",
    "report_quality",
    "slow_call_rate_above",
]
