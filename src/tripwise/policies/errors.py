"""Errors raised by the resilience policies (timeouts, retries, fallback chains)."""

from __future__ import annotations

from typing import Any

from tripwise.core.errors import TripwiseError


class CallTimeout(TripwiseError, TimeoutError):
    """A guarded call did not finish within its timeout.

    It subclasses the builtin :class:`TimeoutError`, so ``except TimeoutError`` catches it, and
    :class:`Exception`, so a breaker counts it as a failure by default.
    """

    def __init__(self, seconds: float, *, abandoned: bool = False) -> None:
        self.seconds = seconds
        self.abandoned = abandoned
        how = " (the call was abandoned in its worker thread)" if abandoned else ""
        super().__init__(f"call timed out after {seconds:g}s{how}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_timeout, (self.seconds, self.abandoned))


def _rebuild_timeout(seconds: float, abandoned: bool) -> CallTimeout:
    return CallTimeout(seconds, abandoned=abandoned)


class RejectedAnswer(TripwiseError):
    """A call returned, but its answer failed the quality check of its tier or policy.

    ``value`` is the rejected answer and ``score`` its quality score (``None`` when an
    ``accept`` predicate, not a score, rejected it). A breaker counts it as a failure.
    """

    def __init__(self, value: Any, score: float | None = None, reason: str = "") -> None:
        self.value = value
        self.score = score
        detail = reason or (f"quality score {score:.3f}" if score is not None else "rejected")
        super().__init__(f"answer failed its quality check ({detail}): {value!r:.120}")


class ChainExhausted(TripwiseError):
    """Every tier of a fallback chain failed.

    ``errors`` maps each tier name to the last error it produced (a
    :class:`~tripwise.CircuitBreakerOpen` for a tier whose breaker rejected the call);
    ``attempts`` counts the calls that actually ran.
    """

    def __init__(self, chain: str, errors: dict[str, BaseException], attempts: int) -> None:
        self.chain = chain
        self.errors = errors
        self.attempts = attempts
        summary = "; ".join(f"{tier}: {type(err).__name__}: {err}" for tier, err in errors.items())
        super().__init__(f"every tier of fallback chain {chain!r} failed ({summary})")


class CacheMiss(TripwiseError):
    """The cache tier had no fresh entry for the call's key."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no fresh cache entry for key {key!r:.120}")
