"""Retries with exponential backoff, jitter, a time budget, Retry-After and a retry budget.

A :class:`Retry` never retries a breaker rejection (:class:`~tripwise.CircuitBreakerOpen`):
the breaker already said when to come back, and hammering it defeats its purpose. When an
error carries a server's ``Retry-After`` (an attribute ``retry_after`` in seconds, or an httpx
error whose response has a ``Retry-After`` header) the wait is at least that long; if that is
longer than ``max_retry_after`` or the remaining time budget, the retry gives up at once.

A :class:`RetryBudget` shared by many calls caps retries at a share of first attempts over a
sliding time window, so a failing dependency sees at most ``(1 + ratio)`` times its normal load
instead of ``attempts`` times (no retry storms).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, TypeVar

from tripwise.core.clock import Clock, monotonic
from tripwise.core.errors import CircuitBreakerOpen
from tripwise.core.validation import check_int, check_positive, is_finite, shown
from tripwise.core.windows import TimeWindow
from tripwise.policies._checks import check_bool, check_callable, check_rng
from tripwise.policies._wrap import wrap_calls

logger = logging.getLogger("tripwise.policies.retry")

F = TypeVar("F", bound=Callable[..., Any])
Jitter = Literal["full", "equal", "none"]
Sleep = Callable[[float], Any]
AsyncSleep = Callable[[float], Awaitable[Any]]


def _number(name: str, value: Any, *, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (is_finite(value) and value >= low):
        raise ValueError(f"{name} must be a finite number >= {low}, got {shown(value)}")
    return float(value)


class Backoff:
    """Exponential backoff: the n-th retry (n = 1, 2, ...) waits
    ``min(max_delay, initial * multiplier ** (n - 1))``, then jitter spreads it:
    ``"full"`` draws uniformly from [0, d], ``"equal"`` from [d/2, d], ``"none"`` keeps d."""

    __slots__ = ("initial", "jitter", "max_delay", "multiplier")

    def __init__(
        self,
        initial: float = 0.1,
        multiplier: float = 2.0,
        max_delay: float = 10.0,
        jitter: Jitter = "full",
    ) -> None:
        self.initial = _number("initial", initial, low=0.0)
        self.multiplier = _number("multiplier", multiplier, low=1.0)
        self.max_delay = _number("max_delay", max_delay, low=self.initial)
        if not isinstance(jitter, str) or jitter not in ("full", "equal", "none"):
            raise ValueError(f"jitter must be 'full', 'equal' or 'none', got {jitter!r}")
        self.jitter: Jitter = jitter

    def delay(self, retry_number: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
        exponent = retry_number - 1
        try:  # a large multiplier overflows float ** long before exponent 1024
            base = self.initial * self.multiplier**exponent if exponent < 1024 else math.inf
        except OverflowError:
            base = math.inf
        d = min(self.max_delay, base)
        if self.jitter == "full":
            return rng.uniform(0.0, d)
        if self.jitter == "equal":
            return d / 2 + rng.uniform(0.0, d / 2)
        return d

    def __repr__(self) -> str:
        return (
            f"Backoff(initial={self.initial:g}, multiplier={self.multiplier:g}, "
            f"max_delay={self.max_delay:g}, jitter={self.jitter!r})"
        )


class RetryBudget:
    """Allow a retry only while retries stay under ``ratio`` times the first attempts seen in
    the last ``window_seconds`` (plus ``min_retries`` always allowed in the window). Share one
    budget between the callers of one dependency. Thread-safe."""

    def __init__(
        self,
        ratio: float = 0.2,
        *,
        window_seconds: float = 10.0,
        min_retries: int = 3,
        clock: Clock | None = None,
    ) -> None:
        self.ratio = _number("ratio", ratio, low=0.0)
        self.window_seconds = check_positive("window_seconds", window_seconds)
        self.min_retries = check_int("min_retries", min_retries, 0)
        self._clock: Clock = clock if clock is not None else monotonic
        self._window = TimeWindow(self.window_seconds, buckets=10)
        self._lock = threading.Lock()
        self.denied = 0

    def record_call(self) -> None:
        """A first attempt happened (deposits ``ratio`` of a retry)."""
        with self._lock:
            self._window.add(None, False, self._clock())

    def try_retry(self) -> bool:
        """Take a retry from the budget; False (and nothing taken) when it is spent."""
        with self._lock:
            now = self._clock()
            agg = self._window.aggregate(now)
            retries = agg.flagged
            firsts = agg.count - retries
            if retries + 1 > self.ratio * firsts + self.min_retries:
                self.denied += 1
                return False
            self._window.add(None, True, now)
            return True

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio:g}, window_seconds={self.window_seconds:g}, "
            f"min_retries={self.min_retries})"
        )


def retry_after_of(error: BaseException) -> float | None:
    """Seconds a server asked us to wait, carried by ``error``; None when it says nothing.

    Looks at an attribute ``retry_after`` (seconds), then at ``error.response.headers``
    (httpx / requests errors) for a ``Retry-After`` header in seconds or as an HTTP date.
    """
    value = getattr(error, "retry_after", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return max(0.0, float(value)) if math.isfinite(value) else None
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        raw = headers.get("retry-after") or headers.get("Retry-After")
    except Exception:
        return None
    if not raw:
        return None
    raw = str(raw).strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:  # "nan" / "inf" are no delay a server can mean: ignore them like any bad header
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Attempts:
    """Counts the attempts of one retried call (read by the fallback chain)."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


def _exception_types(value: Any) -> tuple[type[BaseException], ...]:
    if isinstance(value, type):
        types: tuple[Any, ...] = (value,)
    elif isinstance(value, (tuple, list, set, frozenset)):
        types = tuple(value)
    else:
        raise TypeError(
            "retry_on must be an exception class, a tuple of them, or a predicate "
            f"(exc) -> bool, got {value!r}"
        )
    if not types:
        raise ValueError("retry_on must name at least one exception class, got an empty tuple")
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"retry_on must be exception classes or a predicate, got {t!r}")
    return types


class Retry:
    """Retry a failing call: ``Retry(3).call(fn, ...)``, ``await r.acall(fn, ...)``, ``@Retry(3)``.

    - ``attempts``: total tries including the first (>= 1).
    - ``backoff``: a :class:`Backoff` (exponential with full jitter by default).
    - ``max_elapsed``: total time budget in seconds; no retry starts (or sleeps) past it.
    - ``retry_on``: exception classes, or a predicate ``(exc) -> bool``, that deserve a retry.
    - ``retry_on_result``: predicate ``(result) -> bool``; True retries a returned value. When
      the attempts run out the last result is returned as is.
    - ``respect_retry_after``: wait at least what the error's Retry-After asks, giving up when
      it exceeds ``max_retry_after`` or the time budget.
    - ``budget``: a shared :class:`RetryBudget`.
    - ``clock``, ``sleep``, ``async_sleep``, ``rng``: injectable, so tests never really sleep.

    A :class:`~tripwise.CircuitBreakerOpen` is never retried. When attempts run out the last
    error is raised unchanged.
    """

    def __init__(
        self,
        attempts: int = 3,
        *,
        backoff: Backoff | None = None,
        max_elapsed: float | None = None,
        retry_on: type[BaseException]
        | Iterable[type[BaseException]]
        | Callable[[BaseException], bool] = (Exception,),
        retry_on_result: Callable[[Any], bool] | None = None,
        respect_retry_after: bool = True,
        max_retry_after: float = 60.0,
        budget: RetryBudget | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        async_sleep: AsyncSleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.attempts = check_int("attempts", attempts)
        self.backoff = backoff if backoff is not None else Backoff()
        if not isinstance(self.backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff, got {backoff!r}")
        self.max_elapsed = (
            None if max_elapsed is None else check_positive("max_elapsed", max_elapsed)
        )
        if callable(retry_on) and not isinstance(retry_on, type):
            self._retry_types: tuple[type[BaseException], ...] = (BaseException,)
            self._retry_predicate: Callable[[BaseException], bool] | None = retry_on
        else:
            self._retry_types = _exception_types(retry_on)
            self._retry_predicate = None
        if retry_on_result is not None and not callable(retry_on_result):
            raise TypeError(f"retry_on_result must be callable, got {retry_on_result!r}")
        self.retry_on_result = retry_on_result
        self.respect_retry_after = check_bool("respect_retry_after", respect_retry_after)
        self.max_retry_after = _number("max_retry_after", max_retry_after, low=0.0)
        if budget is not None and not isinstance(budget, RetryBudget):
            raise TypeError(f"budget must be a RetryBudget, got {budget!r}")
        self.budget = budget
        check_callable("clock", clock, "a callable returning seconds")
        check_callable("sleep", sleep, "a callable taking seconds")
        check_callable("async_sleep", async_sleep, "an async callable taking seconds")
        check_rng(rng)
        self._clock: Clock = clock if clock is not None else monotonic
        self._sleep: Sleep = sleep if sleep is not None else time.sleep
        self._async_sleep: AsyncSleep = async_sleep if async_sleep is not None else asyncio.sleep
        self._rng = rng if rng is not None else random.Random()

    # ------------------------------------------------------------------ decisions

    def _should_retry_error(self, exc: BaseException) -> bool:
        if isinstance(exc, CircuitBreakerOpen) or not isinstance(exc, Exception):
            return False
        if not isinstance(exc, self._retry_types):
            return False
        return self._retry_predicate is None or bool(self._retry_predicate(exc))

    def _wait_before(self, retry_number: int, start: float, exc: BaseException | None) -> float:
        """Seconds to wait before retry ``retry_number``, or -1.0 to give up now."""
        delay = self.backoff.delay(retry_number, self._rng)
        if exc is not None and self.respect_retry_after:
            asked = retry_after_of(exc)
            if asked is not None:
                if asked > self.max_retry_after:
                    logger.debug("giving up: Retry-After %.3fs > max_retry_after", asked)
                    return -1.0
                delay = max(delay, asked)
        if self.max_elapsed is not None and self._clock() - start + delay >= self.max_elapsed:
            return -1.0
        if self.budget is not None and not self.budget.try_retry():
            logger.debug("giving up: retry budget spent")
            return -1.0
        return delay

    def _begin(self) -> float:
        """Start one retried call: count it in the budget; its start time (0.0 when no
        ``max_elapsed`` needs it)."""
        start = self._clock() if self.max_elapsed is not None else 0.0
        if self.budget is not None:
            self.budget.record_call()
        return start

    def _delay_after_error(self, n: int, start: float, exc: BaseException) -> float:
        """After attempt ``n`` raised ``exc``: seconds to wait, or -1.0 to re-raise it."""
        if n >= self.attempts or not self._should_retry_error(exc):
            return -1.0
        return self._wait_before(n, start, exc)

    def _delay_after_result(self, n: int, start: float, result: Any) -> float:
        """After attempt ``n`` returned ``result`` (with a ``retry_on_result`` set): seconds to
        wait, or -1.0 to return it."""
        if not self.retry_on_result(result) or n >= self.attempts:  # type: ignore[misc]
            return -1.0
        return self._wait_before(n, start, None)

    # ------------------------------------------------------------------ running

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)``, retrying as configured."""
        return self._run(fn, args, kwargs, _Attempts())

    def _run(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        counter: _Attempts,
    ) -> Any:
        start = self._begin()
        n = 0
        while True:
            n += 1
            counter.n += 1
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                delay = self._delay_after_error(n, start, exc)
                if delay < 0:
                    raise
            else:
                if self.retry_on_result is None:  # the common case: any value is the answer
                    return result
                delay = self._delay_after_result(n, start, result)
                if delay < 0:
                    return result
            if delay > 0:
                self._sleep(delay)

    async def acall(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)``, retrying as configured."""
        return await self._arun(fn, args, kwargs, _Attempts())

    async def _arun(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        counter: _Attempts,
    ) -> Any:
        start = self._begin()
        n = 0
        while True:
            n += 1
            counter.n += 1
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                delay = self._delay_after_error(n, start, exc)
                if delay < 0:
                    raise
            else:
                if self.retry_on_result is None:  # the common case: any value is the answer
                    return result
                delay = self._delay_after_result(n, start, result)
                if delay < 0:
                    return result
            if delay > 0:
                await self._async_sleep(delay)

    # ------------------------------------------------------------------ decorator

    def __call__(self, fn: F) -> F:
        return self.wrap(fn)

    def wrap(self, fn: F) -> F:
        """Wrap a sync or async function so every call is retried as configured."""
        return wrap_calls(fn, self.call, self.acall)

    def __repr__(self) -> str:
        extra = f", max_elapsed={self.max_elapsed:g}" if self.max_elapsed is not None else ""
        return f"Retry({self.attempts}, backoff={self.backoff!r}{extra})"
