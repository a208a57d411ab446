"""Errors of the LLM clients and the LLM service.

Transport failures (:class:`LLMTransportError`, :class:`LLMTimeout`, :class:`LLMHTTPError` with
a 5xx/408/429 status) and quality failures (:class:`OutputCheckFailed`) both count for the
backend's breaker and both move a call to the next backend; they are recorded apart.
"""

from __future__ import annotations

from typing import Any

from tripwise.core.errors import CircuitBreakerOpen, TripwiseError
from tripwise.core.states import State


class LLMError(TripwiseError):
    """Base class of the errors of :mod:`tripwise.llm`."""


class LLMTransportError(LLMError):
    """The backend could not be reached or broke the connection (wraps the httpx error)."""

    kind = "transport"


class LLMTimeout(LLMTransportError, TimeoutError):
    """A timeout expired: ``kind`` is ``connect``, ``first_token``, ``stall`` or ``total``."""

    def __init__(self, kind: str, seconds: float, backend: str = "") -> None:
        self.kind = kind
        self.seconds = seconds
        self.backend = backend
        at = f" ({backend})" if backend else ""
        super().__init__(f"{kind} timeout after {seconds:g}s{at}")


RETRIABLE_STATUSES = frozenset({408, 409, 425, 429, *range(500, 600)})


class LLMHTTPError(LLMError):
    """The backend answered with a non-2xx status. ``retriable`` (5xx, 408, 429, ...) errors
    count as backend failures; other 4xx are the caller's fault and are raised at once."""

    kind = "http"

    def __init__(
        self, status_code: int, body: str, backend: str = "", retry_after: float | None = None
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.backend = backend
        self.retry_after = retry_after
        super().__init__(f"HTTP {status_code} from {backend or 'backend'}: {body[:200]}")

    @property
    def retriable(self) -> bool:
        return self.status_code in RETRIABLE_STATUSES


class OutputCheckFailed(LLMError):
    """The backend answered, but the answer failed output check ``check`` (a quality failure).

    ``score`` is the check's score in [0, 1], ``reason`` says what was wrong and ``response``
    is the rejected :class:`~tripwise.llm.LLMResponse` (None when a stream failed mid-way).
    """

    kind = "quality"

    def __init__(self, check: str, reason: str, score: float = 0.0, response: Any = None) -> None:
        self.check = check
        self.reason = reason
        self.score = score
        self.response = response
        super().__init__(f"output check {check!r} failed: {reason}")


def counts_as_backend_failure(exc: BaseException) -> bool:
    """The default ``exception_predicate`` of a backend breaker: everything but a caller's 4xx."""
    if isinstance(exc, LLMHTTPError):
        return exc.retriable
    return isinstance(exc, Exception)


class CircuitBreakerError(CircuitBreakerOpen):
    """Every backend of the call is open: the call fails fast without touching the network.

    It is a :class:`~tripwise.CircuitBreakerOpen`; ``retry_after`` is the soonest any of them
    admits a probe, ``breakers`` the names of the open breakers.
    """

    def __init__(
        self,
        name: str,
        state: State = State.OPEN,
        trip_count: int = 0,
        retry_after: float = 0.0,
        breakers: tuple[str, ...] = (),
    ) -> None:
        super().__init__(name, state, trip_count, retry_after)
        self.breakers = breakers

    def __str__(self) -> str:
        names = ", ".join(self.breakers) or self.name
        return f"circuit breaker open for {names}; retry after {self.retry_after:.3f}s"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (self.name, self.state, self.trip_count, self.retry_after, self.breakers),
        )


class AllAttemptsFailed(LLMError):
    """Every attempt of an :class:`~tripwise.llm.LLMService` call failed; ``attempts`` holds a
    record per attempt and ``__cause__`` the last error."""

    def __init__(self, attempts: list[Any]) -> None:
        self.attempts = attempts
        summary = "; ".join(f"#{a.attempt} {a.backend}: {a.outcome} ({a.detail})" for a in attempts)
        super().__init__(f"every attempt failed: {summary}")
