"""Trip conditions: small composable objects that watch call records and say when to trip.

Every condition owns its window, sees every record (compositions never short-circuit, so no
condition starves) and answers in O(1). The ml-breaker protocol is honoured: a condition is
callable with a :class:`CallRecord` and returns True when the breaker should trip, and has
``reset()``. Any object with that protocol can be passed as ``trip_on``.

Built-in conditions also implement ``observe(error, latency_ms, quality, now)``, the same
decision without building a record (the breaker's fast path), and ``judge(...)``, which says
whether one call looks bad to the condition (used to judge half-open probes).
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from tripwise.core.histogram import exact_ratio
from tripwise.core.records import CallRecord
from tripwise.core.validation import check_int as check_int  # re-exported for other layers
from tripwise.core.validation import check_positive as check_positive
from tripwise.core.validation import check_rate as check_rate
from tripwise.core.validation import check_score_fn as check_score_fn
from tripwise.core.windows import Aggregate, CountWindow, TimeWindow

ScoreFn = Callable[[Any], float]

DEFAULT_TIME_MIN_CALLS = 10
"""Minimum calls before a time-window rule may trip, when ``min_calls`` is not given."""


@runtime_checkable
class ConditionProtocol(Protocol):
    """What ``trip_on`` accepts: ml-breaker's condition protocol."""

    def __call__(self, record: CallRecord) -> bool: ...

    def reset(self) -> None: ...


_exact = exact_ratio  # 0.58 is 29/50: 29 failures of 50 are exactly at the rate, not above


SCORE_TOLERANCE = 1e-9
"""Means of quality scores are compared with this tolerance: 0.1 and 0.7 average 0.4 even
though their float sum is 0.7999999999999999."""


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
        return any_of(self, other)

    def __and__(self, other: Any) -> AllOf:
        return all_of(self, other)


class WindowRule(Condition):
    """A rule over a count window (``window`` calls) or a time window (``window_seconds``).

    Subclasses call ``_setup_window`` once in ``__init__`` and feed the window with ``_add``.
    """

    window: CountWindow | TimeWindow
    min_calls: int

    def _setup_window(
        self,
        window: int,
        window_seconds: float | None,
        min_calls: int | None,
        buckets: int,
        *,
        smallest: int = 1,
    ) -> None:
        """Build the window; ``smallest`` is the least ``window`` and ``min_calls`` allowed."""
        if window_seconds is not None:
            self.uses_clock = True
            self.window = TimeWindow(window_seconds, buckets)
            self.min_calls = (
                DEFAULT_TIME_MIN_CALLS
                if min_calls is None
                else check_int("min_calls", min_calls, smallest)
            )
        else:
            self.window = CountWindow(check_int("window", window, smallest))
            self.min_calls = (
                window if min_calls is None else check_int("min_calls", min_calls, smallest)
            )
            if self.min_calls > window:
                raise ValueError(
                    f"min_calls must be <= window ({window}) for a count window, got {min_calls!r}"
                )
        self._window_repr = (
            f"window_seconds={window_seconds!r}"
            if window_seconds is not None
            else f"window={window}"
        )
        self._min_repr = f", min_calls={min_calls}" if min_calls is not None else ""

    def _add(self, value: float | None, flag: bool, now: float) -> None:
        w = self.window
        if type(w) is CountWindow:
            w.add(value, flag)
        else:
            w.add(value, flag, now)  # type: ignore[call-arg]

    def _count(self, now: float) -> int:
        w = self.window
        if type(w) is TimeWindow:
            w.expire(now)
        return w.count

    def aggregate(self, now: float | None = None) -> Aggregate:
        w = self.window
        if isinstance(w, TimeWindow):
            return w.aggregate(now)
        return w.aggregate()

    def reset(self) -> None:
        self.window.clear()


class ErrorRateAbove(WindowRule):
    """Trips when the failure rate of the window strictly exceeds ``rate``.

    The count-window form is lean: it keeps the sequence numbers of the failures still in the
    window (a deque, O(1) amortised) and derives the number of calls from the sequence, so
    successes never touch it.
    """

    def __init__(
        self,
        rate: float,
        window: int = 20,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        self.rate = check_rate("rate", rate)
        self._rate_num, self._rate_den = _exact(rate)
        self._setup_window(window, window_seconds, min_calls, buckets)
        self.lean = window_seconds is None
        self._size = window
        self._failure_seqs: deque[int] = deque()
        self._base = 0  # calls numbered <= base are before the current history

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        if not self.lean:
            self._add(None, error is not None, now)
            w = self.window
            n = w.count
            return n >= self.min_calls and w.flagged * self._rate_den > self._rate_num * n
        fails = self._failure_seqs
        if error is not None:
            fails.append(seq)
        oldest = seq - self._size  # seqs <= oldest fell out of the window
        while fails and fails[0] <= oldest:
            fails.popleft()
        n = min(seq - self._base, self._size)
        return n >= self.min_calls and len(fails) * self._rate_den > self._rate_num * n

    def restart(self, seq: int) -> None:
        super().restart(seq)
        self._base = seq

    def warm(self, seq: int) -> bool:
        # Once min_calls calls are in, a success only lowers the rate (or keeps it).
        return not self.lean or seq - self._base >= self.min_calls

    def reset(self) -> None:
        self.window.clear()
        self._failure_seqs.clear()
        self._base = self._own_seq

    def failure_count(self) -> int:
        """Failures currently in the window (count windows: as of the last failure)."""
        return len(self._failure_seqs) if self.lean else self.window.flagged

    def __repr__(self) -> str:
        return f"error_rate_above({self.rate!r}, {self._window_repr}{self._min_repr})"


class LatencyAbove(WindowRule):
    """Trips when every latency in the (full) window exceeds ``threshold_ms``."""

    uses_clock = True

    def __init__(
        self,
        threshold_ms: float,
        window: int = 20,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        self.threshold_ms = check_positive("threshold_ms", threshold_ms)
        self._setup_window(window, window_seconds, min_calls, buckets)

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        self._add(None, latency_ms > self.threshold_ms, now)
        w = self.window
        return w.count >= self.min_calls and w.flagged == w.count

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or latency_ms > self.threshold_ms

    def __repr__(self) -> str:
        return f"latency_above({self.threshold_ms!r}, {self._window_repr}{self._min_repr})"


class SlowCallRateAbove(WindowRule):
    """Trips when the share of calls slower than ``slow_ms`` strictly exceeds ``rate``."""

    uses_clock = True

    def __init__(
        self,
        rate: float,
        slow_ms: float,
        window: int = 20,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        self.rate = check_rate("rate", rate)
        self._rate_num, self._rate_den = _exact(rate)
        self.slow_ms = check_positive("slow_ms", slow_ms)
        self._setup_window(window, window_seconds, min_calls, buckets)

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        self._add(None, latency_ms > self.slow_ms, now)
        w = self.window
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
    """Trips when the nearest-rank ``q``-quantile of latency exceeds ``threshold_ms``.

    Decided exactly in O(1): the q-quantile of ``n`` latencies exceeds T exactly when at least
    ``n - ceil(q*n) + 1`` of them exceed T, so only a count of slow calls is kept.
    """

    uses_clock = True

    def __init__(
        self,
        q: float,
        threshold_ms: float,
        window: int = 20,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not (0.0 < q <= 1.0):
            raise ValueError(f"q must be a quantile in (0, 1] (0.95 for p95), got {q!r}")
        self.q = float(q)
        self._q_num, self._q_den = _exact(q)
        self.threshold_ms = check_positive("threshold_ms", threshold_ms)
        self._setup_window(window, window_seconds, min_calls, buckets)

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        self._add(None, latency_ms > self.threshold_ms, now)
        w = self.window
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


class QualityBelow(WindowRule):
    """Trips when the mean quality of the window's scored calls drops below ``threshold``.

    Calls without a score are neutral: they neither enter the window nor count toward it.
    """

    uses_quality = True
    lean = True

    def __init__(
        self,
        threshold: float,
        window: int = 20,
        score_fn: ScoreFn | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        self.threshold = check_rate("threshold", threshold)
        self._bar = self.threshold - SCORE_TOLERANCE
        self.score_fn = check_score_fn(score_fn)
        self._setup_window(window, window_seconds, min_calls, buckets)
        # A count window only needs the scores and their sum: a plain ring is ~3x cheaper
        # than the general CountWindow (flags, sums of squares, histogram hooks).
        self._ring: list[float] = [0.0] * window if window_seconds is None else []
        self._next = 0
        self._filled = 0
        self._sum = 0.0

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
        ring = self._ring
        if not ring:  # time window
            self._add(quality, False, now)
            w = self.window
            return w.valued >= self.min_calls and w.total < self._bar * w.valued
        i = self._next
        if self._filled == len(ring):
            self._sum += quality - ring[i]
        else:
            self._filled += 1
            self._sum += quality
        ring[i] = quality
        i += 1
        if i == len(ring):
            i = 0
            self._sum = math.fsum(ring[: self._filled])  # exact once per rotation: no drift
        self._next = i
        return self._filled >= self.min_calls and self._sum < self._bar * self._filled

    def mean(self) -> float | None:
        """The current mean quality of the window (``None`` before any score)."""
        if self._ring:
            return self._sum / self._filled if self._filled else None
        return self.window.aggregate().mean if isinstance(self.window, CountWindow) else None

    def reset(self) -> None:
        self.window.clear()
        if self._ring:
            self._ring = [0.0] * len(self._ring)
        self._next = self._filled = 0
        self._sum = 0.0

    def observe_late(self, quality: float, now: float) -> bool:
        return self.observe(None, 0.0, quality, now, 0)

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or (quality is not None and quality < self.threshold)

    def __repr__(self) -> str:
        fn = ", score_fn=..." if self.score_fn is not None else ""
        return f"quality_below({self.threshold!r}, {self._window_repr}{fn}{self._min_repr})"


class LowQualityRateAbove(WindowRule):
    """Trips when the share of scored calls below ``threshold`` strictly exceeds ``rate``."""

    uses_quality = True
    lean = True

    def __init__(
        self,
        rate: float,
        threshold: float,
        window: int = 20,
        score_fn: ScoreFn | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
    ) -> None:
        self.rate = check_rate("rate", rate)
        self._rate_num, self._rate_den = _exact(rate)
        self.threshold = check_rate("threshold", threshold)
        self.score_fn = check_score_fn(score_fn)
        self._setup_window(window, window_seconds, min_calls, buckets)

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
        self._add(None, quality < self.threshold, now)
        w = self.window
        n = w.count
        return n >= self.min_calls and w.flagged * self._rate_den > self._rate_num * n

    def observe_late(self, quality: float, now: float) -> bool:
        return self.observe(None, 0.0, quality, now, 0)

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or (quality is not None and quality < self.threshold)

    def __repr__(self) -> str:
        fn = ", score_fn=..." if self.score_fn is not None else ""
        return (
            f"low_quality_rate_above({self.rate!r}, {self.threshold!r}, "
            f"{self._window_repr}{fn}{self._min_repr})"
        )


class ConsecutiveFailures(Condition):
    """Trips after ``n`` failures in a row (no window).

    Lean: a failure continues the streak only if it directly follows the previous failure in the
    breaker's call sequence, so successes in between need not be reported.
    """

    lean = True

    def __init__(self, n: int) -> None:
        self.n = check_int("n", n)
        self.streak = 0
        self._last_failure_seq = -1

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        if error is None:
            self.streak = 0
            return False
        self.streak = self.streak + 1 if seq == self._last_failure_seq + 1 else 1
        self._last_failure_seq = seq
        return self.streak >= self.n

    def reset(self) -> None:
        self.streak = 0
        self._last_failure_seq = -1

    def __repr__(self) -> str:
        return f"consecutive_failures({self.n})"


class _CustomCondition(Condition):
    """Adapts a user object with ml-breaker's protocol (``__call__(record)``, ``reset()``)."""

    uses_clock = True  # a user condition may look at latency and timestamps

    def __init__(self, inner: ConditionProtocol) -> None:
        owner = getattr(inner, "_tripwise_owner", None)
        if owner is not None:
            raise ValueError(
                f"condition {inner!r} already belongs to breaker {owner!r}; every breaker "
                "needs its own condition objects"
            )
        # Objects with __slots__ cannot be marked; they are trusted not to be shared.
        with contextlib.suppress(AttributeError, TypeError):
            inner._tripwise_owner = "a breaker"  # type: ignore[attr-defined]
        self.inner = inner
        self.uses_quality = bool(getattr(inner, "uses_quality", True))
        self.score_fn = getattr(inner, "score_fn", None)

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


class _Composite(Condition):
    def __init__(self, name: str, conditions: tuple[Any, ...]) -> None:
        if not conditions:
            raise ValueError(f"{name}() needs at least one condition")
        flat: list[Condition] = []
        for c in conditions:
            cond = as_condition(c)
            if type(cond) is type(self):
                flat.extend(cond.conditions)
            else:
                flat.append(cond)
        self.conditions: tuple[Condition, ...] = tuple(flat)
        self._name = name
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
        for c in self.conditions:
            c.restart(seq)

    def warm(self, seq: int) -> bool:
        return all(c.warm(seq) for c in self.conditions)

    def walk(self) -> Iterator[Condition]:
        yield self
        for c in self.conditions:
            yield from c.walk()

    def __repr__(self) -> str:
        return f"{self._name}({', '.join(repr(c) for c in self.conditions)})"


class AnyOf(_Composite):
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


# The public, ml-breaker-compatible constructors.


def quality_below(
    threshold: float,
    window: int = 20,
    score_fn: ScoreFn | None = None,
    *,
    window_seconds: float | None = None,
    min_calls: int | None = None,
    buckets: int = 10,
) -> QualityBelow:
    """Trip when the rolling mean quality of the last ``window`` scored calls is below
    ``threshold`` (or of the last ``window_seconds``, once ``min_calls`` scores are in)."""
    return QualityBelow(
        threshold,
        window,
        score_fn,
        window_seconds=window_seconds,
        min_calls=min_calls,
        buckets=buckets,
    )


def latency_above(
    threshold_ms: float,
    window: int = 20,
    *,
    window_seconds: float | None = None,
    min_calls: int | None = None,
    buckets: int = 10,
) -> LatencyAbove:
    """Trip when all latencies in a full window exceed ``threshold_ms``."""
    return LatencyAbove(
        threshold_ms, window, window_seconds=window_seconds, min_calls=min_calls, buckets=buckets
    )


def error_rate_above(
    rate: float,
    window: int = 20,
    *,
    window_seconds: float | None = None,
    min_calls: int | None = None,
    buckets: int = 10,
) -> ErrorRateAbove:
    """Trip when the failure rate over a full window strictly exceeds ``rate``."""
    return ErrorRateAbove(
        rate, window, window_seconds=window_seconds, min_calls=min_calls, buckets=buckets
    )


def consecutive_failures(n: int) -> ConsecutiveFailures:
    """Trip after ``n`` consecutive failures."""
    return ConsecutiveFailures(n)


def slow_call_rate_above(
    rate: float,
    slow_ms: float,
    window: int = 20,
    *,
    window_seconds: float | None = None,
    min_calls: int | None = None,
    buckets: int = 10,
) -> SlowCallRateAbove:
    """Trip when more than ``rate`` of the calls take longer than ``slow_ms``."""
    return SlowCallRateAbove(
        rate, slow_ms, window, window_seconds=window_seconds, min_calls=min_calls, buckets=buckets
    )


def latency_quantile_above(
    q: float,
    threshold_ms: float,
    window: int = 20,
    *,
    window_seconds: float | None = None,
    min_calls: int | None = None,
    buckets: int = 10,
) -> LatencyQuantileAbove:
    """Trip when the ``q`` latency quantile (0.95 = p95) exceeds ``threshold_ms``."""
    return LatencyQuantileAbove(
        q,
        threshold_ms,
        window,
        window_seconds=window_seconds,
        min_calls=min_calls,
        buckets=buckets,
    )


def low_quality_rate_above(
    rate: float,
    threshold: float,
    window: int = 20,
    score_fn: ScoreFn | None = None,
    *,
    window_seconds: float | None = None,
    min_calls: int | None = None,
    buckets: int = 10,
) -> LowQualityRateAbove:
    """Trip when more than ``rate`` of the scored calls score below ``threshold``."""
    return LowQualityRateAbove(
        rate,
        threshold,
        window,
        score_fn,
        window_seconds=window_seconds,
        min_calls=min_calls,
        buckets=buckets,
    )


def any_of(*conditions: Any) -> AnyOf:
    """Trip when any of the conditions trips; each keeps its own window."""
    return AnyOf("any_of", conditions)


def all_of(*conditions: Any) -> AllOf:
    """Trip when all of the conditions hold at once; each keeps its own window."""
    return AllOf("all_of", conditions)
