"""Trip conditions: small composable objects that watch call records and say when to trip.

Every condition owns exactly one data structure, its window (``cond.window``; consecutive
failures need none), sees every record (compositions never short-circuit, so no condition
starves) and answers in O(1). The ml-breaker protocol is honoured: a condition is callable with
a :class:`CallRecord` and returns True when the breaker should trip, and has ``reset()``. Any
object with that protocol can be passed as ``trip_on``.

The public classes are also the constructors, tenacity style: ``error_rate_above`` *is*
:class:`ErrorRateAbove`, so a signature is written once and a repr reads like the code that
built the condition.

Built-in conditions also implement ``observe(error, latency_ms, quality, now, seq)``, the same
decision without building a record (the breaker's fast path; ``seq`` numbers the breaker's
calls), and ``judge(...)``, which says whether one call looks bad to the condition (used to judge
half-open probes). Quality conditions declare the ``score_range`` they assume (see
:class:`ScoredCondition`).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from tripwise.core.histogram import VALUE_LIMIT, exact_ratio
from tripwise.core.records import CallRecord
from tripwise.core.validation import check_int as check_int  # re-exported for other layers
from tripwise.core.validation import check_positive as check_positive
from tripwise.core.validation import check_rate as check_rate
from tripwise.core.validation import check_score_fn as check_score_fn
from tripwise.core.validation import is_real
from tripwise.core.windows import (
    Aggregate,
    CountWindow,
    SequenceWindow,
    TimeWindow,
    ValueWindow,
    Window,
)

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
]

logger = logging.getLogger("tripwise.conditions")

ScoreFn = Callable[[Any], float]

DEFAULT_WINDOW = 20
"""Calls in a count window when neither ``window`` nor ``window_seconds`` is given."""

DEFAULT_TIME_MIN_CALLS = 10
"""Minimum calls before a time-window rule may trip, when ``min_calls`` is not given."""

SCORE_TOLERANCE = 1e-9
"""Means of quality scores are compared with this tolerance (relative to the width of the
score range): 0.1 and 0.7 average 0.4 even though their float sum is 0.7999999999999999."""

DEFAULT_SCORE_RANGE = (0.0, 1.0)


@runtime_checkable
class ConditionProtocol(Protocol):
    """What ``trip_on`` accepts: ml-breaker's condition protocol."""

    def __call__(self, record: CallRecord) -> bool: ...

    def reset(self) -> None: ...


_exact = exact_ratio  # 0.58 is 29/50: 29 failures of 50 are exactly at the rate, not above


def _check_exceedable_rate(name: str, value: float) -> float:
    """A rate in [0, 1) that a share can strictly exceed (no share exceeds 1)."""
    rate = check_rate(name, value)
    if rate >= 1.0:
        raise ValueError(
            f"{name} must be in [0, 1): a share can never exceed {value!r}, so the condition "
            "could never trip"
        )
    return rate


def _check_latency(name: str, value: float) -> float:
    ms = check_positive(name, value)
    if ms >= VALUE_LIMIT:
        raise ValueError(
            f"{name} must be below {VALUE_LIMIT:g} ms (windows hold values up to it, so a "
            f"larger threshold could never trip), got {value!r}"
        )
    return ms


class Condition:
    """Base class of the built-in conditions; ``|`` and ``&`` compose them.

    ``observe`` gets the call's sequence number ``seq`` (calls of one breaker are numbered 1, 2,
    ...). A condition with ``lean = True`` is only told about failures and scored calls: a plain
    success just takes a sequence number, and the condition learns of it from the gap. This is
    what lets the breaker complete a plain success without taking its lock.
    """

    uses_quality = False
    uses_clock = False  # needs latency or the time of each call
    lean = False
    score_fn: ScoreFn | None = None
    _own_seq = 0

    def __call__(self, record: CallRecord) -> bool:
        self._own_seq += 1
        return self.observe(
            record.error, record.latency_ms, record.quality, record.timestamp, self._own_seq
        )

    def restart(self, seq: int) -> None:
        """Empty the condition; calls numbered after ``seq`` are the new history."""
        self._own_seq = seq
        self.reset()

    def warm(self, seq: int) -> bool:
        """Whether, after call ``seq``, no plain success can make this condition trip any more
        (so a lean breaker may stop reporting successes). A rate rule is warm once it has seen
        ``min_calls`` calls: before that, the success that completes the window may trip it."""
        return True

    def follow_calls(self, calls: Callable[[], int] | None) -> None:
        """Give a lean condition the breaker's call counter (``calls()`` returns the newest
        sequence number handed out), so its accessors count the plain successes it was not
        told of. Without it they answer as of the newest call the condition saw."""

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        raise NotImplementedError

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        """Whether this one call looks bad to the condition (a failed half-open probe)."""
        return error is not None

    def observe_late(self, quality: float, now: float) -> bool:
        """A quality score for a call that already completed (see ``record_late_quality``).

        Conditions that do not use quality ignore it: it is not a call outcome.
        """
        return False

    def reset(self) -> None:
        raise NotImplementedError

    def walk(self) -> Iterator[Condition]:
        """This condition and, for compositions, every condition inside it."""
        yield self

    def __or__(self, other: Any) -> AnyOf:
        return AnyOf(self, other)

    def __and__(self, other: Any) -> AllOf:
        return AllOf(self, other)


class WindowRule(Condition):
    """A rule over a count window (``window`` calls) or a time window (``window_seconds``).

    Subclasses call ``_setup_window`` once in ``__init__`` and feed ``self.window``, their
    only data structure, with ``window.add(value, flag, now)`` (the
    :class:`~tripwise.core.windows.Window` protocol, so a store may swap in a shared window).
    """

    window: Window
    min_calls: int

    def _setup_window(
        self,
        window: int | None,
        window_seconds: float | None,
        min_calls: int | None,
        buckets: int,
        *,
        smallest: int = 1,
        default_window: int | None = None,
        count_window: Callable[[int], Window] = CountWindow,
    ) -> None:
        """Build the window; ``smallest`` is the least ``window`` and ``min_calls`` allowed.

        With ``default_window``, ``window=None`` means that many calls and giving both
        ``window`` and ``window_seconds`` is refused (it used to drop ``window`` silently).
        """
        if default_window is not None:
            if window is not None and window_seconds is not None:
                raise ValueError(
                    f"pass either window (calls) or window_seconds (time), not both; got "
                    f"window={window!r} and window_seconds={window_seconds!r}"
                )
            if window is None:
                window = default_window
        if window_seconds is not None:
            self.uses_clock = True
            self.window = TimeWindow(window_seconds, buckets)
            self.min_calls = (
                DEFAULT_TIME_MIN_CALLS
                if min_calls is None
                else check_int("min_calls", min_calls, smallest)
            )
            self._window_repr = f"window_seconds={window_seconds!r}"
            if buckets != 10:
                self._window_repr += f", buckets={buckets}"
        else:
            size = check_int("window", window, smallest)
            self.window = count_window(size)
            self.min_calls = (
                size if min_calls is None else check_int("min_calls", min_calls, smallest)
            )
            if self.min_calls > size:
                raise ValueError(
                    f"min_calls must be <= window ({size}) for a count window, got {min_calls!r}"
                )
            self._window_repr = f"window={size}"
        self._min_repr = f", min_calls={min_calls}" if min_calls is not None else ""

    def _add(self, value: float | None, flag: bool, now: float) -> None:
        """``self.window.add(value, flag, now)`` (kept for subclasses written before the
        :class:`~tripwise.core.windows.Window` protocol gave every window that signature)."""
        self.window.add(value, flag, now)

    def aggregate(self, now: float | None = None) -> Aggregate:
        """What the window holds (time windows: as of ``now``, or of the newest call)."""
        return self.window.aggregate(now)

    def reset(self) -> None:
        self.window.clear()


class ErrorRateAbove(WindowRule):
    """Trip when the failure rate over a full window strictly exceeds ``rate`` (in [0, 1)).

    ``window`` calls (default 20) or ``window_seconds`` of time (then ``min_calls``, default 10,
    calls are needed first), never both. The count-window form is lean: its window is a
    :class:`~tripwise.core.windows.SequenceWindow` told of failures only, so successes never
    touch it.
    """

    def __init__(
        self,
        rate: float,
        window: int | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        self.rate = _check_exceedable_rate("rate", rate)
        self._rate_num, self._rate_den = _exact(rate)
        self._setup_window(
            window,
            window_seconds,
            min_calls,
            buckets,
            default_window=DEFAULT_WINDOW,
            count_window=SequenceWindow,
        )
        self.lean = window_seconds is None

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        w = self.window
        if isinstance(w, SequenceWindow):
            n, failed = w.record(seq, error is not None)
        else:
            w.add(None, error is not None, now)
            n, failed = w.count, w.flagged
        return n >= self.min_calls and failed * self._rate_den > self._rate_num * n

    def restart(self, seq: int) -> None:
        self._own_seq = seq
        w = self.window
        if isinstance(w, SequenceWindow):
            w.restart(seq)
        else:
            w.clear()

    def warm(self, seq: int) -> bool:
        # Once min_calls calls are in, a success only lowers the rate (or keeps it).
        w = self.window
        return not isinstance(w, SequenceWindow) or w.calls_after(seq) >= self.min_calls

    def follow_calls(self, calls: Callable[[], int] | None) -> None:
        w = self.window
        if isinstance(w, SequenceWindow):
            w.follow(calls)

    def reset(self) -> None:
        w = self.window
        if isinstance(w, SequenceWindow):
            w.restart(max(self._own_seq, w.newest()))
        else:
            w.clear()

    def failure_count(self) -> int:
        """Failures currently in the window."""
        return self.window.flagged

    def __repr__(self) -> str:
        return f"error_rate_above({self.rate!r}, {self._window_repr}{self._min_repr})"


class LatencyAbove(WindowRule):
    """Trip when every latency in a full window exceeds ``threshold_ms`` (ml-breaker's rule).

    The window holds a flag per call (slow or not), not the latencies themselves.
    """

    uses_clock = True

    def __init__(
        self,
        threshold_ms: float,
        window: int | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        self.threshold_ms = _check_latency("threshold_ms", threshold_ms)
        self._setup_window(
            window, window_seconds, min_calls, buckets, default_window=DEFAULT_WINDOW
        )

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        w = self.window
        w.add(None, latency_ms > self.threshold_ms, now)
        return w.count >= self.min_calls and w.flagged == w.count

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or latency_ms > self.threshold_ms

    def __repr__(self) -> str:
        return f"latency_above({self.threshold_ms!r}, {self._window_repr}{self._min_repr})"


class SlowCallRateAbove(WindowRule):
    """Trip when the share of calls slower than ``slow_ms`` strictly exceeds ``rate``
    (in [0, 1))."""

    uses_clock = True

    def __init__(
        self,
        rate: float,
        slow_ms: float,
        window: int | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        self.rate = _check_exceedable_rate("rate", rate)
        self._rate_num, self._rate_den = _exact(rate)
        self.slow_ms = _check_latency("slow_ms", slow_ms)
        self._setup_window(
            window, window_seconds, min_calls, buckets, default_window=DEFAULT_WINDOW
        )

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        w = self.window
        w.add(None, latency_ms > self.slow_ms, now)
        n = w.count
        return n >= self.min_calls and w.flagged * self._rate_den > self._rate_num * n

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or latency_ms > self.slow_ms

    def __repr__(self) -> str:
        return (
            f"slow_call_rate_above({self.rate!r}, slow_ms={self.slow_ms!r}, "
            f"{self._window_repr}{self._min_repr})"
        )


class LatencyQuantileAbove(WindowRule):
    """Trip when the nearest-rank ``q``-quantile of latency (0.95 = p95) exceeds ``threshold_ms``.

    Decided exactly in O(1): the q-quantile of ``n`` latencies exceeds T exactly when at least
    ``n - ceil(q*n) + 1`` of them exceed T, so only a count of slow calls is kept.
    """

    uses_clock = True

    def __init__(
        self,
        q: float,
        threshold_ms: float,
        window: int | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        if not is_real(q) or not (0.0 < float(q) <= 1.0):
            raise ValueError(f"q must be a quantile in (0, 1] (0.95 for p95), got {q!r}")
        self.q: float = float(q)
        self._q_num, self._q_den = _exact(self.q)
        self.threshold_ms = _check_latency("threshold_ms", threshold_ms)
        self._setup_window(
            window, window_seconds, min_calls, buckets, default_window=DEFAULT_WINDOW
        )

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        w = self.window
        w.add(None, latency_ms > self.threshold_ms, now)
        n = w.count
        rank = -(-self._q_num * n // self._q_den)  # ceil(q * n), exactly
        return n >= self.min_calls and w.flagged >= n - rank + 1

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or latency_ms > self.threshold_ms

    def __repr__(self) -> str:
        return (
            f"latency_quantile_above({self.q!r}, {self.threshold_ms!r}, "
            f"{self._window_repr}{self._min_repr})"
        )


# ---------------------------------------------------------------------- quality conditions


def _check_score_range(score_range: Any) -> tuple[float, float]:
    try:
        lo, hi = score_range
    except (TypeError, ValueError):
        raise TypeError(
            f"score_range must be a pair (low, high) such as (0, 100), got {score_range!r}"
        ) from None
    for end in (lo, hi):
        if not is_real(end):
            raise TypeError(f"score_range must hold two numbers, got {score_range!r}")
        if not (math.isfinite(end) and abs(float(end)) <= VALUE_LIMIT):
            raise ValueError(f"score_range must hold two finite numbers, got {score_range!r}")
    if not lo < hi:
        raise ValueError(f"score_range must be (low, high) with low < high, got {score_range!r}")
    return float(lo), float(hi)


class ScoredCondition(Condition):
    """A condition fed by quality scores alone, on a declared ``score_range``.

    Unscored calls are neutral, so plain successes need not be reported (``lean``), and a
    score that arrives after its call (``record_late_quality``) counts like any other.
    Subclasses implement ``_score(quality, now)``: take one score, say whether to trip.

    Scores outside ``score_range`` (default ``(0.0, 1.0)``) are clamped into it: a cosine
    similarity of -0.2 counts as 0.0 for a [0, 1] condition. The first such score logs a WARNING
    (once per condition) and ``clamped_scores`` counts them; a NaN score counts as no score.
    Nothing is raised into the guarded call. Declare the scale your scores use
    (``score_range=(0, 100)`` for ratings, ``(-1, 1)`` for cosine similarity).
    """

    uses_quality = True
    lean = True
    score_range: tuple[float, float] = DEFAULT_SCORE_RANGE
    clamped_scores = 0
    _lo, _hi = DEFAULT_SCORE_RANGE

    def _set_score_range(self, score_range: Any) -> None:
        self.score_range = _check_score_range(score_range)
        self._lo, self._hi = self.score_range

    def _check_bar(self, name: str, value: Any) -> float:
        """A score threshold a "below" test can fire on: in (low, high] of the score range."""
        lo, hi = self.score_range
        if not is_real(value):
            raise TypeError(f"{name} must be a number in ({lo:g}, {hi:g}], got {value!r}")
        if not lo <= float(value) <= hi:  # also refuses NaN
            raise ValueError(
                f"{name} must be in the score range ({lo:g}, {hi:g}], got {value!r} "
                "(pass score_range=(low, high) for another scale)"
            )
        if value == lo:
            raise ValueError(
                f"{name}={value!r} can never trip: no score is below the bottom of the score "
                f"range ({lo:g}, {hi:g}]"
            )
        return float(value)

    def _range_repr(self) -> str:
        if self.score_range == DEFAULT_SCORE_RANGE:
            return ""
        lo, hi = self.score_range
        return f", score_range=({lo!r}, {hi!r})"

    def _in_range(self, quality: float) -> float | None:
        """``quality`` (outside the score range) as the condition counts it; None for NaN."""
        if quality != quality:
            clamped: float | None = None
        else:
            clamped = self._lo if quality < self._lo else self._hi
        self.clamped_scores += 1
        if self.clamped_scores == 1:
            logger.warning(
                "%r: quality score %r is outside its score range [%g, %g]; it counts as %s. "
                "Pass score_range=(low, high) if your scores use another scale (logged once "
                "per condition; see clamped_scores)",
                self,
                quality,
                self._lo,
                self._hi,
                "no score" if clamped is None else repr(clamped),
            )
        return clamped

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        if quality is None:
            return False
        if not self._lo <= quality <= self._hi:
            quality = self._in_range(quality)
            if quality is None:
                return False
        return self._score(quality, now)

    def observe_late(self, quality: float, now: float) -> bool:
        return self.observe(None, 0.0, quality, now, 0)

    def _score(self, quality: float, now: float) -> bool:
        raise NotImplementedError


class QualityBelow(ScoredCondition, WindowRule):
    """Trip when the rolling mean quality of the last ``window`` scored calls (default 20) is
    below ``threshold``, or of the last ``window_seconds`` once ``min_calls`` scores are in.

    Calls without a score are neutral: they neither enter the window nor count toward it.
    ``threshold`` must lie in ``(low, high]`` of ``score_range`` (default ``(0.0, 1.0)``).
    """

    def __init__(
        self,
        threshold: float,
        window: int | None = None,
        score_fn: ScoreFn | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
        score_range: tuple[float, float] = DEFAULT_SCORE_RANGE,
    ) -> None:
        self._set_score_range(score_range)
        self.threshold = self._check_bar("threshold", threshold)
        self._bar = self.threshold - SCORE_TOLERANCE * (self._hi - self._lo)
        self.score_fn = check_score_fn(score_fn)
        self._setup_window(
            window,
            window_seconds,
            min_calls,
            buckets,
            default_window=DEFAULT_WINDOW,
            count_window=ValueWindow,
        )

    def observe(  # the hot path of quality rules: ScoredCondition.observe, inlined
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        if quality is None:
            return False
        if not self._lo <= quality <= self._hi:
            quality = self._in_range(quality)
            if quality is None:
                return False
        w = self.window
        if type(w) is ValueWindow:
            w.push(quality)  # in the score range, so within the window's limits
        else:
            w.add(quality, False, now)
        n = w.valued
        return n >= self.min_calls and w.total < self._bar * n

    def _score(self, quality: float, now: float) -> bool:
        return self.observe(None, 0.0, quality, now, 0)

    def mean(self, now: float | None = None) -> float | None:
        """The current mean quality of the window (``None`` before any score)."""
        return self.window.aggregate(now).mean

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or (quality is not None and quality < self.threshold)

    def __repr__(self) -> str:
        fn = ", score_fn=..." if self.score_fn is not None else ""
        return (
            f"quality_below({self.threshold!r}, {self._window_repr}{fn}{self._min_repr}"
            f"{self._range_repr()})"
        )


class LowQualityRateAbove(ScoredCondition, WindowRule):
    """Trip when the share of scored calls below ``threshold`` strictly exceeds ``rate`` (in
    [0, 1)). The window holds a flag per scored call (low or not), not the scores."""

    def __init__(
        self,
        rate: float,
        threshold: float,
        window: int | None = None,
        score_fn: ScoreFn | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
        score_range: tuple[float, float] = DEFAULT_SCORE_RANGE,
    ) -> None:
        self.rate = _check_exceedable_rate("rate", rate)
        self._rate_num, self._rate_den = _exact(rate)
        self._set_score_range(score_range)
        self.threshold = self._check_bar("threshold", threshold)
        self.score_fn = check_score_fn(score_fn)
        self._setup_window(
            window, window_seconds, min_calls, buckets, default_window=DEFAULT_WINDOW
        )

    def _score(self, quality: float, now: float) -> bool:
        w = self.window
        w.add(None, quality < self.threshold, now)
        n = w.count
        return n >= self.min_calls and w.flagged * self._rate_den > self._rate_num * n

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or (quality is not None and quality < self.threshold)

    def __repr__(self) -> str:
        fn = ", score_fn=..." if self.score_fn is not None else ""
        return (
            f"low_quality_rate_above({self.rate!r}, {self.threshold!r}, "
            f"{self._window_repr}{fn}{self._min_repr}{self._range_repr()})"
        )


class ConsecutiveFailures(Condition):
    """Trip after ``n`` consecutive failures (no window).

    Lean: a failure continues the streak only if it directly follows the previous failure in the
    breaker's call sequence, so successes in between need not be reported.
    """

    lean = True

    def __init__(self, n: int) -> None:
        self.n = check_int("n", n)
        self._streak = 0
        self._last_failure_seq = -1
        self._calls: Callable[[], int] | None = None

    @property
    def streak(self) -> int:
        """Failures in a row up to the newest call (0 once a success followed them)."""
        newest = self._own_seq
        if self._calls is not None:
            newest = max(newest, self._calls())
        return self._streak if newest <= self._last_failure_seq else 0

    def follow_calls(self, calls: Callable[[], int] | None) -> None:
        self._calls = calls

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        if error is None:
            self._streak = 0
            return False
        self._streak = self._streak + 1 if seq == self._last_failure_seq + 1 else 1
        self._last_failure_seq = seq
        return self._streak >= self.n

    def reset(self) -> None:
        self._streak = 0
        self._last_failure_seq = -1

    def __repr__(self) -> str:
        return f"consecutive_failures({self.n})"


# ---------------------------------------------------------------------- user conditions

_OWNER = "_tripwise_owner"


def _own_attr(obj: Any, name: str, default: Any) -> Any:
    """``obj.name`` if the object really has it (its class or instance defines it), else
    ``default``: a ``MagicMock`` answers every ``getattr`` with a new mock."""
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return default
    return getattr(obj, name, default)


class _CustomCondition(Condition):
    """Adapts a user object with ml-breaker's protocol (``__call__(record)``, ``reset()``)."""

    uses_clock = True  # a user condition may look at latency and timestamps

    def __init__(self, inner: ConditionProtocol) -> None:
        # The mark lives in the object's own __dict__ (read without getattr, so mocks and
        # proxies that answer any attribute are not mistaken for owned conditions).
        try:
            own = vars(inner)
        except TypeError:  # __slots__, builtins: they cannot be marked; trusted not to be shared
            own = None
        if isinstance(own, dict):
            owner = own.get(_OWNER)
            if owner is not None:
                raise ValueError(
                    f"condition {inner!r} already belongs to breaker {owner!r}; every breaker "
                    "needs its own condition objects"
                )
            with contextlib.suppress(TypeError):
                own[_OWNER] = "a breaker"
        self.inner = inner
        self.uses_quality = bool(_own_attr(inner, "uses_quality", True))
        score_fn = _own_attr(inner, "score_fn", None)
        self.score_fn = score_fn if callable(score_fn) else None

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        return bool(self.inner(CallRecord(latency_ms, error, quality, now)))

    def reset(self) -> None:
        self.inner.reset()

    def __repr__(self) -> str:
        return repr(self.inner)


def as_condition(obj: Any) -> Condition:
    """Turn whatever ``trip_on`` was given into a :class:`Condition`, or raise TypeError."""
    if isinstance(obj, Condition):
        return obj
    if callable(obj) and callable(getattr(obj, "reset", None)):
        return _CustomCondition(obj)
    raise TypeError(
        "trip_on must be a condition (e.g. error_rate_above(0.5)) or an object with "
        f"__call__(record) -> bool and reset(), got {obj!r}"
    )


# ---------------------------------------------------------------------- compositions


class _Composite(Condition):
    _name = ""

    def __init__(self, *conditions: Any) -> None:
        if not conditions:
            raise ValueError(f"{self._name}() needs at least one condition")
        flat: list[Condition] = []
        for c in conditions:
            cond = as_condition(c)
            if type(cond) is type(self):
                flat.extend(cond.conditions)
            else:
                flat.append(cond)
        self.conditions: tuple[Condition, ...] = tuple(flat)
        self.uses_quality = any(c.uses_quality for c in flat)
        self.uses_clock = any(c.uses_clock for c in flat)
        self.lean = all(c.lean for c in flat)

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        # A probe has to look healthy to every condition, whatever the composition.
        return any(c.judge(error, latency_ms, quality) for c in self.conditions)

    def reset(self) -> None:
        for c in self.conditions:
            c.restart(self._own_seq)

    def observe_late(self, quality: float, now: float) -> bool:
        tripped = False
        for c in self.conditions:  # every quality condition gets the score
            if c.observe_late(quality, now):
                tripped = True
        return tripped

    def restart(self, seq: int) -> None:
        self._own_seq = seq
        for c in self.conditions:
            c.restart(seq)

    def warm(self, seq: int) -> bool:
        return all(c.warm(seq) for c in self.conditions)

    def follow_calls(self, calls: Callable[[], int] | None) -> None:
        for c in self.conditions:
            c.follow_calls(calls)

    def walk(self) -> Iterator[Condition]:
        yield self
        for c in self.conditions:
            yield from c.walk()

    def __repr__(self) -> str:
        return f"{self._name}({', '.join(repr(c) for c in self.conditions)})"


class AnyOf(_Composite):
    """Trip when any of the conditions trips; each keeps its own window."""

    _name = "any_of"

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        tripped = False
        for c in self.conditions:  # every condition sees every record: no short-circuit
            if c.observe(error, latency_ms, quality, now, seq):
                tripped = True
        return tripped


class AllOf(_Composite):
    """Trip when all of the conditions hold at once; each keeps its own window."""

    _name = "all_of"

    def observe_late(self, quality: float, now: float) -> bool:
        # The other conditions have no fresh verdict to combine with a late score, so it
        # updates their windows but never trips an all_of on its own.
        super().observe_late(quality, now)
        return False

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        tripped = True
        for c in self.conditions:
            if not c.observe(error, latency_ms, quality, now, seq):
                tripped = False
        return tripped


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
