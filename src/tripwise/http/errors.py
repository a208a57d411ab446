"""Errors of the breaker-aware transports.

They are raised inside a breaker's guarded call, so the breaker counts them as failures, and
caught again by the transport: a caller only ever sees an HTTP response (the upstream's last
answer, a fallback, or the synthetic 503 of an open breaker) or the transport error of the
underlying HTTP library.
"""

from __future__ import annotations

from typing import Any

from tripwise.core.errors import CircuitBreakerOpen, TripwiseError


class UpstreamFailure(TripwiseError):
    """The upstream answered with a status the classifier counts as a failure (5xx, 429).

    ``retry_after`` holds the seconds of its ``Retry-After`` header (None when absent), which
    :class:`tripwise.policies.Retry` honours.
    """

    def __init__(self, status_code: int, response: Any, retry_after: float | None) -> None:
        self.status_code = status_code
        self.response = response
        self.retry_after = retry_after
        super().__init__(f"upstream answered HTTP {status_code}")


class BodyCheckFailed(TripwiseError):
    """A 2xx response whose body failed a check (a *quality* failure, not a transport one)."""

    def __init__(self, check: str, score: float, response: Any, reason: str = "") -> None:
        self.check = check
        self.score = score
        self.response = response
        self.reason = reason
        super().__init__(f"response body failed check {check!r} (score {score:.3f}) {reason}")


def tripped_by(exc: BaseException) -> BaseException:
    """The failure behind ``exc``: a call that trips its breaker raises CircuitBreakerOpen
    chained to its own error; the caller is owed that error (or that upstream answer)."""
    if isinstance(exc, CircuitBreakerOpen) and isinstance(exc.__cause__, Exception):
        return exc.__cause__
    return exc
