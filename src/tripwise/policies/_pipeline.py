"""Build one guarded callable from a function and its per-call policies.

The order, innermost first, is: the function, its timeout, its quality check, its breaker.
Retry runs outside (each attempt goes through the breaker, so an opening breaker stops the
retries) and fallback outside that. :class:`~tripwise.policies.Tier` and
:class:`~tripwise.policies.Policy` both use this, so they behave the same.

Each layer is added only when configured, and the breaker layer is the core breaker's own
decorator, so a call with nothing but a breaker costs what the decorator costs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from tripwise.core.breaker import CircuitBreaker
from tripwise.core.signals import report_quality
from tripwise.core.validation import check_rate
from tripwise.policies.errors import RejectedAnswer
from tripwise.policies.timeout import Timeout

Accept = Callable[[Any], bool]
ScoreFn = Callable[[Any], float]


def as_timeout(value: Timeout | float | None, what: str) -> Timeout | None:
    """A Timeout from a number of seconds (or a Timeout, or None)."""
    if value is None or isinstance(value, Timeout):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what}: timeout must be seconds or a Timeout, got {value!r}")
    return Timeout(value)


def check_quality_args(
    what: str, accept: Accept | None, score_fn: ScoreFn | None, min_quality: float | None
) -> None:
    if accept is not None and not callable(accept):
        raise TypeError(f"{what}: accept must be callable, got {accept!r}")
    if score_fn is not None and not callable(score_fn):
        raise TypeError(f"{what}: score_fn must be callable, got {score_fn!r}")
    if min_quality is not None:
        check_rate(f"{what}: min_quality", min_quality)
        if score_fn is None:
            raise ValueError(f"{what}: min_quality needs a score_fn to score answers")


def _judge(
    accept: Accept | None, score_fn: ScoreFn | None, min_quality: float | None, report: bool
) -> Any:
    def judge(result: Any) -> None:
        if score_fn is not None:
            score = float(score_fn(result))
            if report:  # the breaker's quality conditions see it too (no breaker: no call to
                report_quality(score)  # report to, and a report outside one walks the stack)
            if min_quality is not None and score < min_quality:
                raise RejectedAnswer(result, score, f"score {score:.3f} < {min_quality:g}")
        if accept is not None and not accept(result):
            raise RejectedAnswer(result)

    return judge


def build(
    fn: Callable[..., Any],
    *,
    timeout: Timeout | None,
    breaker: CircuitBreaker | None,
    accept: Accept | None,
    score_fn: ScoreFn | None,
    min_quality: float | None,
) -> Callable[..., Any]:
    """``fn`` wrapped in timeout → quality check → breaker (sync or async like ``fn``)."""
    is_async = inspect.iscoroutinefunction(fn)
    inner: Callable[..., Any] = fn
    if timeout is not None:
        inner = timeout.wrap(inner)
    if accept is not None or score_fn is not None:
        judge = _judge(accept, score_fn, min_quality, breaker is not None)
        timed = inner
        if is_async:

            @functools.wraps(fn)
            async def checked_async(*args: Any, **kwargs: Any) -> Any:
                result = await timed(*args, **kwargs)
                judge(result)
                return result

            inner = checked_async
        else:

            @functools.wraps(fn)
            def checked(*args: Any, **kwargs: Any) -> Any:
                result = timed(*args, **kwargs)
                judge(result)
                return result

            inner = checked
    if breaker is not None:
        inner = breaker.decorate(inner)
    return inner
