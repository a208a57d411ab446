"""A breaker's settings: frozen, validated once, separate from its counters and state.

``CircuitBreaker(**settings)`` builds a :class:`BreakerConfig`; ``breaker.config`` is it, and
``breaker.configure(**changes)`` swaps in a new validated one and re-derives the breaker's fast
path (so ``configure(track_latency=True)`` takes effect on the next call).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tripwise.core.validation import check_exception_types, check_int, check_number

ExcTypes = tuple[type[BaseException], ...]


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def _callable_or_none(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r}")
    return value


@dataclass(frozen=True)
class BreakerConfig:
    """Everything about a breaker that is configuration rather than state.

    Defaults: ``half_open_after=60.0`` seconds of cool-down, ``half_open_max_calls=1``
    concurrent probe, ``recovery_threshold=2`` probe successes to close again, no backoff
    (``half_open_backoff=1.0``), no jitter; every ``Exception`` counts as a failure.
    """

    half_open_after: float = 60.0
    half_open_max_calls: int = 1
    recovery_threshold: int = 2
    half_open_backoff: float = 1.0
    max_half_open_after: float | None = None
    half_open_jitter: float = 0.0
    require_quality_signal: bool = False
    record_exceptions: ExcTypes = (Exception,)
    ignore_exceptions: ExcTypes = ()
    exception_predicate: Callable[[BaseException], bool] | None = None
    result_predicate: Callable[[Any], bool] | None = None
    metrics_only: bool = False
    track_latency: bool = False
    score_fn: Callable[[Any], Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(
            self,
            "half_open_after",
            check_number("half_open_after", self.half_open_after, low=0.0, inclusive=False),
        )
        put(
            self,
            "half_open_max_calls",
            check_int("half_open_max_calls", self.half_open_max_calls),
        )
        put(self, "recovery_threshold", check_int("recovery_threshold", self.recovery_threshold))
        put(
            self,
            "half_open_backoff",
            check_number("half_open_backoff", self.half_open_backoff, low=1.0, inclusive=True),
        )
        if self.max_half_open_after is not None:
            put(
                self,
                "max_half_open_after",
                check_number(
                    "max_half_open_after",
                    self.max_half_open_after,
                    low=self.half_open_after,
                    inclusive=True,
                ),
            )
        jitter = check_number("half_open_jitter", self.half_open_jitter, low=0.0, inclusive=True)
        if jitter > 1.0:
            raise ValueError(f"half_open_jitter must be in [0, 1], got {self.half_open_jitter!r}")
        put(self, "half_open_jitter", jitter)
        for flag in ("require_quality_signal", "metrics_only", "track_latency"):
            _flag(flag, getattr(self, flag))
        put(
            self,
            "record_exceptions",
            check_exception_types("record_exceptions", self.record_exceptions),
        )
        put(
            self,
            "ignore_exceptions",
            check_exception_types("ignore_exceptions", self.ignore_exceptions),
        )
        for name in ("exception_predicate", "result_predicate", "score_fn"):
            _callable_or_none(name, getattr(self, name))

    def replace(self, **changes: Any) -> BreakerConfig:
        """A validated copy with ``changes`` (unknown names are a TypeError naming them)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"unknown breaker setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)
