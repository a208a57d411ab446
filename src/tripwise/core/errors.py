"""Every exception tripwise raises, in one place."""

from __future__ import annotations

from typing import Any

from tripwise.core.states import State


class TripwiseError(Exception):
    """Base class of tripwise's own errors."""


class CircuitBreakerOpen(TripwiseError):
    """A call was rejected because the breaker does not admit it.

    ``retry_after`` is the number of seconds until the breaker will admit a probe
    (0.0 when it is half-open and waiting for the running probes to finish; ``None`` when
    the error was built without it, as ml-breaker's ``CircuitBreakerOpen(name, state,
    trip_count)``).
    """

    def __init__(
        self, name: str, state: State, trip_count: int, retry_after: float | None = None
    ) -> None:
        self.name = name
        self.state = state
        self.trip_count = trip_count
        self.retry_after = retry_after
        super().__init__(name)  # the message is built only when someone reads it

    def __str__(self) -> str:
        state = getattr(self.state, "value", self.state)
        if self.retry_after is None:
            return f"circuit breaker {self.name!r} is {state} (tripped {self.trip_count} times)"
        return (
            f"circuit breaker {self.name!r} is {state}; "
            f"retry after {self.retry_after:.3f}s (tripped {self.trip_count} times)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.state, self.trip_count, self.retry_after))


class QualitySignalMissing(TripwiseError):
    """A breaker with ``require_quality_signal=True`` saw a call that reported no quality."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"circuit breaker {name!r} requires a quality signal, but the call reported none: "
            "call report_quality(score) inside the guarded call or give the breaker a score_fn"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name,))


class FailedResult(TripwiseError):
    """Stands in for the error of a call whose returned value the result predicate rejected.

    It is never raised by tripwise; it appears as ``CallRecord.error`` so conditions count
    the call as a failure. ``value`` is the rejected return value.
    """

    def __init__(self, value: Any) -> None:
        self.value = value
        super().__init__(f"result rejected by the breaker's result_predicate: {value!r:.200}")
