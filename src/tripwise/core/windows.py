"""Sliding windows with running aggregates, updated in O(1) per observation.

An observation is a value (or ``None``: nothing to aggregate, e.g. a call without a quality
score still counts for an error rate) and a flag (a failure, a slow call, a low score...).
Every window implements :class:`Window`: ``add(value, flag, now)``, the running totals
``count``, ``flagged``, ``valued``, ``total``, ``sum_sq``, and ``expire``/``clear``/``aggregate``.
Totals are updated on insert and subtracted on eviction; nothing is re-scanned on the hot path.
Float sums are recomputed exactly once per rotation of the window, so rounding never drifts.

- :class:`CountWindow` holds the last ``size`` observations.
- :class:`ValueWindow` holds the last ``size`` values only (no flags): the mean of a ring.
- :class:`FlagWindow` holds the last ``size`` flags only (no values): a share of slow calls.
- :class:`SequenceWindow` holds the last ``size`` calls of a numbered call sequence and is told
  only of the calls that matter (failures); it learns of the others from the numbers.
- :class:`TimeWindow` holds the observations of the last ``seconds`` in a ring of ``buckets``
  time buckets; each bucket keeps count, sum, sum of squares, min, max, flagged count and,
  when asked for, a log histogram for quantiles.

Overflow safety: values beyond ``±VALUE_LIMIT`` (1e140, ±inf included) are held as
``±VALUE_LIMIT`` (``saturated`` counts them, and the summaries given to ``add_aggregate``
that had to be saturated) and NaN values count as observations without a value (``dropped``
counts them); each window logs one WARNING the first time. So no running total can become inf
or NaN, exact re-sums never raise, and one absurd sample cannot poison a window: once it leaves
the window every aggregate is exact again.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tripwise.core.histogram import VALUE_LIMIT, LogHistogram, saturate
from tripwise.core.validation import is_finite, shown

__all__ = [
    "VALUE_LIMIT",
    "Aggregate",
    "CountWindow",
    "FlagWindow",
    "SequenceWindow",
    "TimeWindow",
    "ValueWindow",
    "Window",
]

logger = logging.getLogger("tripwise.windows")

_SQ_LIMIT = VALUE_LIMIT * VALUE_LIMIT


@runtime_checkable
class Window(Protocol):
    """What a condition needs from its window (every window here, and the Redis shared window,
    implements it). Conditions call ``add`` and read the five running totals."""

    @property
    def count(self) -> int: ...

    @property
    def flagged(self) -> int: ...

    @property
    def valued(self) -> int: ...

    @property
    def total(self) -> float: ...

    @property
    def sum_sq(self) -> float: ...

    def add(self, value: float | None, flag: bool, now: float) -> bool:
        """Add one observation made at ``now``; False if it was not taken (too old)."""
        ...

    def expire(self, now: float) -> None:
        """Drop what is older than the window as of ``now`` (no-op for count windows)."""
        ...

    def clear(self) -> None: ...

    def aggregate(self, now: float | None = None) -> Aggregate: ...


def _tame(window: CountWindow | ValueWindow | TimeWindow, value: float) -> float | None:
    """A value outside ``±VALUE_LIMIT``, as the window holds it (``None``: NaN, no value)."""
    if not (window.saturated or window.dropped):
        _warn_once(window, value)
    if value != value:
        window.dropped += 1
        return None
    window.saturated += 1
    return saturate(value)


def _warn_once(window: object, value: float) -> None:
    logger.warning(
        "%r got the value %r: values beyond +-%g are held as +-%g and NaN as no value "
        "(logged once per window; see the window's saturated and dropped counts)",
        window,
        value,
        VALUE_LIMIT,
        VALUE_LIMIT,
    )


@dataclass(frozen=True)
class Aggregate:
    """A snapshot of a window's aggregates.

    ``count`` counts observations, ``flagged`` those whose flag was set, ``valued`` those that
    carried a value; ``total``, ``sum_sq``, ``min`` and ``max`` are over the values.
    """

    count: int = 0
    flagged: int = 0
    valued: int = 0
    total: float = 0.0
    sum_sq: float = 0.0
    min: float | None = None
    max: float | None = None
    histogram: LogHistogram | None = None

    @classmethod
    def of(
        cls,
        values: Iterable[float | None],
        *,
        flagged: int = 0,
        histogram_accuracy: float | None = None,
    ) -> Aggregate:
        """The overflow-safe aggregate of a group of observations (one per item of ``values``;
        ``None`` or NaN: an observation without a value), for :meth:`TimeWindow.add_aggregate`.
        Values are saturated at ``±VALUE_LIMIT`` like a window's; sums are exact (fsum)."""
        count = 0
        held: list[float] = []
        for v in values:
            count += 1
            if v is not None and v == v:
                held.append(v if -VALUE_LIMIT <= v <= VALUE_LIMIT else saturate(v))
        hist = None
        if histogram_accuracy is not None:
            hist = LogHistogram(histogram_accuracy)
            hist.add_many(held)
        return cls(
            count=count,
            flagged=flagged,
            valued=len(held),
            total=math.fsum(held),
            sum_sq=math.fsum(v * v for v in held),
            min=min(held) if held else None,
            max=max(held) if held else None,
            histogram=hist,
        )

    @property
    def flag_rate(self) -> float:
        """Share of observations that were flagged (0.0 for an empty window)."""
        return self.flagged / self.count if self.count else 0.0

    @property
    def mean(self) -> float | None:
        return self.total / self.valued if self.valued else None

    @property
    def stddev(self) -> float | None:
        """Population standard deviation of the values."""
        if not self.valued:
            return None
        mean = self.total / self.valued
        return math.sqrt(max(0.0, self.sum_sq / self.valued - mean * mean))

    def quantile(self, q: float) -> float | None:
        """Nearest-rank quantile from the histogram (needs ``track_histogram=True``)."""
        if self.histogram is None:
            raise ValueError("this window does not track a histogram; pass track_histogram=True")
        return self.histogram.quantile(q)


MAX_SIZE = 10_000_000
"""The most calls a count window (or buckets a time window) may hold: each costs memory up
front, and a typo like ``window=10**9`` should fail at once, not swap the machine."""


def _check_size(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
        raise ValueError(f"{name} must be an integer >= 1 and <= {MAX_SIZE:_}, got {value!r}")
    return value


class CountWindow:
    """The last ``size`` observations."""

    __slots__ = (
        "_flags",
        "_hist",
        "_next",
        "_values",
        "count",
        "dropped",
        "flagged",
        "saturated",
        "size",
        "sum_sq",
        "total",
        "valued",
    )

    def __init__(self, size: int, *, track_histogram: bool = False) -> None:
        self.size = _check_size("window", size)
        self.saturated = self.dropped = 0
        self._values: list[float | None] = [None] * size
        self._flags: list[bool] = [False] * size
        self._hist = LogHistogram() if track_histogram else None
        self._next = 0
        self.count = 0
        self.flagged = 0
        self.valued = 0
        self.total = 0.0
        self.sum_sq = 0.0

    @property
    def full(self) -> bool:
        return self.count == self.size

    def add(self, value: float | None, flag: bool, now: float = 0.0) -> bool:
        """Add an observation (``now`` is accepted for the :class:`Window` protocol)."""
        if value is not None and not -VALUE_LIMIT <= value <= VALUE_LIMIT:
            value = _tame(self, value)
        i = self._next
        if self.count == self.size:
            if self._flags[i]:
                self.flagged -= 1
            old = self._values[i]
            if old is not None:
                self.valued -= 1
                self.total -= old
                self.sum_sq -= old * old
                if self._hist is not None:
                    self._hist.remove(old)
        else:
            self.count += 1
        self._flags[i] = flag
        self._values[i] = value
        if flag:
            self.flagged += 1
        if value is not None:
            self.valued += 1
            self.total += value
            self.sum_sq += value * value
            if self._hist is not None:
                self._hist.add(value)
        i += 1
        if i == self.size:
            i = 0
            if self.valued:
                self._resum()
        self._next = i
        return True

    def expire(self, now: float) -> None:
        """Nothing expires from a count window."""

    def _resum(self) -> None:
        vals = [v for v in self._values if v is not None]
        self.total = math.fsum(vals)
        self.sum_sq = math.fsum(v * v for v in vals)

    def clear(self) -> None:
        self._values = [None] * self.size
        self._flags = [False] * self.size
        if self._hist is not None:
            self._hist.clear()
        self._next = self.count = self.flagged = self.valued = 0
        self.total = self.sum_sq = 0.0

    def aggregate(self, now: float | None = None) -> Aggregate:
        vals = [v for v in self._values if v is not None]  # min/max are read rarely: scan
        hist = None
        if self._hist is not None:
            hist = LogHistogram(self._hist.relative_accuracy)
            hist.merge(self._hist)
        return Aggregate(  # the scan is there anyway: sums exact as of this read
            count=self.count,
            flagged=self.flagged,
            valued=self.valued,
            total=math.fsum(vals),
            sum_sq=math.fsum(v * v for v in vals),
            min=min(vals) if vals else None,
            max=max(vals) if vals else None,
            histogram=hist,
        )

    def __repr__(self) -> str:
        return f"CountWindow(size={self.size}, count={self.count}, flagged={self.flagged})"


class ValueWindow:
    """The last ``size`` values (no flags, no ``None``): a ring with a running sum.

    About three times cheaper per observation than :class:`CountWindow` (no flags, no sums of
    squares on the hot path): what a rolling mean needs and no more. ``sum_sq``, ``min`` and
    ``max`` are computed when read.

    A window can watch its own mean (:meth:`watch_mean`): :meth:`push` then answers whether
    the mean fell below a floor, so a rolling-mean rule is one call per value.
    """

    __slots__ = (
        "_next",
        "_ring",
        "dropped",
        "floor",
        "min_count",
        "saturated",
        "size",
        "total",
        "valued",
    )

    flagged = 0  # holds no flags

    def __init__(self, size: int) -> None:
        self.size = _check_size("window", size)
        self._ring = [0.0] * size
        self._next = 0
        self.valued = 0
        self.total = 0.0
        self.saturated = self.dropped = 0
        self.floor = -math.inf  # (no floor: push answers False)
        self.min_count = 1

    def watch_mean(self, floor: float, min_count: int) -> None:
        """From now on :meth:`push` answers whether the mean of the held values is below
        ``floor`` with at least ``min_count`` values held (``quality_below``'s whole test)."""
        if not math.isfinite(floor):
            raise ValueError(f"floor must be a finite number, got {floor!r}")
        self.floor = float(floor)
        self.min_count = _check_size("min_count", min_count)

    @property
    def count(self) -> int:
        return self.valued

    @property
    def full(self) -> bool:
        return self.valued == self.size

    @property
    def sum_sq(self) -> float:
        return math.fsum(v * v for v in self._held())

    def add(self, value: float | None, flag: bool = False, now: float = 0.0) -> bool:
        """Add a value; a ``None`` (or NaN) value is not held (returns False)."""
        if value is None or flag or not -VALUE_LIMIT <= value <= VALUE_LIMIT:
            value = self._unusual(value, flag)
            if value is None:
                return False
        self.push(value)
        return True

    def push(self, value: float, now: float = 0.0) -> bool:
        """:meth:`add` for a value the caller knows is a number within ``±VALUE_LIMIT`` (a
        score already brought into its condition's range): the hot path of ``quality_below``.
        True if the mean is now below the watched floor (see :meth:`watch_mean`); ``now`` is
        not used (a count window), it makes ``push`` a condition's quick step."""
        ring = self._ring
        i = self._next
        if self.valued == self.size:
            self.total += value - ring[i]
        else:
            self.valued += 1
            self.total += value
        ring[i] = value
        i += 1
        if i == self.size:
            i = 0
            self.total = math.fsum(ring)  # full once it rotates: exact, so no drift
        self._next = i
        n = self.valued
        return n >= self.min_count and self.total < self.floor * n

    def _unusual(self, value: float | None, flag: bool) -> float | None:
        if flag:
            raise ValueError("a ValueWindow holds values only; use a CountWindow for flags")
        return None if value is None else _tame(self, value)

    def _held(self) -> list[float]:
        if self.valued == self.size:
            return list(self._ring)
        return self._ring[: self.valued]  # not yet rotated: the first ``valued`` slots

    def expire(self, now: float) -> None:
        """Nothing expires from a count window."""

    def clear(self) -> None:
        self._ring = [0.0] * self.size
        self._next = self.valued = 0
        self.total = 0.0

    def aggregate(self, now: float | None = None) -> Aggregate:
        vals = self._held()
        return Aggregate(
            count=len(vals),
            valued=len(vals),
            total=self.total,
            sum_sq=math.fsum(v * v for v in vals),
            min=min(vals) if vals else None,
            max=max(vals) if vals else None,
        )

    def __repr__(self) -> str:
        return f"ValueWindow(size={self.size}, count={self.valued})"


class FlagWindow:
    """The last ``size`` flags (a slow call, a failure...), without values: what a count-window
    rule that only counts flagged calls needs (``latency_above``, ``slow_call_rate_above``).

    A ring of booleans and two counters; :meth:`push` is the hot path."""

    __slots__ = ("_next", "_ring", "count", "flagged", "size")

    valued = 0  # holds no values
    total = 0.0
    sum_sq = 0.0
    saturated = dropped = 0

    def __init__(self, size: int) -> None:
        self.size = _check_size("window", size)
        self._ring = [False] * size
        self._next = 0
        self.count = 0
        self.flagged = 0

    @property
    def full(self) -> bool:
        return self.count == self.size

    def add(self, value: float | None, flag: bool, now: float = 0.0) -> bool:
        """Add one flag (``value`` must be ``None``: this window holds no values). The hot path
        of ``latency_above``."""
        if value is not None:
            raise ValueError("a FlagWindow holds flags only; use a CountWindow for values")
        ring = self._ring
        i = self._next
        if self.count == self.size:
            if ring[i]:
                self.flagged -= 1
        else:
            self.count += 1
        if flag:
            self.flagged += 1
            ring[i] = True
        else:
            ring[i] = False
        i += 1
        self._next = 0 if i == self.size else i
        return True

    def expire(self, now: float) -> None:
        """Nothing expires from a count window."""

    def clear(self) -> None:
        self._ring = [False] * self.size
        self._next = self.count = self.flagged = 0

    def aggregate(self, now: float | None = None) -> Aggregate:
        return Aggregate(count=self.count, flagged=self.flagged)

    def __repr__(self) -> str:
        return f"FlagWindow(size={self.size}, count={self.count}, flagged={self.flagged})"


class SequenceWindow:
    """The last ``size`` calls of a numbered call sequence (1, 2, ...), told only of some.

    The breaker numbers its calls; a lean condition reports only the flagged ones (failures)
    with :meth:`record`, so a plain success costs the window nothing. It keeps the numbers of
    the flagged calls still in the window (a deque, O(1) amortised) and derives how many calls
    the window holds from the numbers. ``count`` and ``flagged`` are as of the newest call it
    knows of: the newest recorded one, or, once :meth:`follow` gave it the breaker's counter,
    the newest the breaker numbered. It holds no values.
    """

    __slots__ = ("_base", "_calls", "_flags", "_last", "size")

    valued = 0
    total = 0.0
    sum_sq = 0.0

    def __init__(self, size: int) -> None:
        self.size = _check_size("window", size)
        self._flags: deque[int] = deque()
        self._base = 0  # calls numbered <= base are before the current history
        self._last = 0  # the newest call number recorded
        self._calls: Callable[[], int] | None = None

    def follow(self, calls: Callable[[], int] | None) -> None:
        """Read the newest call number from ``calls()`` (the breaker's counter) for
        ``count``/``flagged``/``aggregate``, so they count the successes it was not told of."""
        self._calls = calls

    def newest(self) -> int:
        """The newest call number the window knows of."""
        newest = self._last
        if self._calls is not None:
            try:
                newest = max(newest, self._calls())
            except Exception:  # a broken counter must not break a read of the window
                logger.exception("SequenceWindow: the followed call counter failed")
        return newest

    def record(self, seq: int, flag: bool) -> tuple[int, int]:
        """Call number ``seq`` happened (flagged or not): ``(calls, flagged)`` in the window that
        ends with it."""
        flags = self._flags
        if flag:
            flags.append(seq)
        if seq > self._last:
            self._last = seq
        oldest = seq - self.size  # calls numbered <= oldest fell out of the window
        while flags and flags[0] <= oldest:
            flags.popleft()
        return min(seq - self._base, self.size), len(flags)

    def calls_after(self, seq: int) -> int:
        """How many calls since the history began, as of call ``seq``."""
        return seq - self._base

    def restart(self, seq: int) -> None:
        """Empty the window; calls numbered after ``seq`` are the new history."""
        self._flags.clear()
        self._base = self._last = seq

    def add(self, value: float | None, flag: bool, now: float = 0.0) -> bool:
        """The next call of the sequence (the :class:`Window` protocol; ``value`` is not held)."""
        self.record(self.newest() + 1, flag)
        return True

    @property
    def count(self) -> int:
        return max(0, min(self.newest() - self._base, self.size))

    @property
    def flagged(self) -> int:
        oldest = self.newest() - self.size
        return sum(1 for s in self._flags if s > oldest)

    @property
    def full(self) -> bool:
        return self.count == self.size

    def expire(self, now: float) -> None:
        """Nothing expires by time from a count window."""

    def clear(self) -> None:
        self.restart(self.newest())

    def aggregate(self, now: float | None = None) -> Aggregate:
        newest = self.newest()
        oldest = newest - self.size
        return Aggregate(
            count=max(0, min(newest - self._base, self.size)),
            flagged=sum(1 for s in self._flags if s > oldest),
        )

    def __repr__(self) -> str:
        return f"SequenceWindow(size={self.size}, count={self.count}, flagged={self.flagged})"


class TimeWindow:
    """Observations of the last ``seconds``, in a ring of ``buckets`` equal time buckets.

    Times are passed in (seconds on any monotonic scale, typically the breaker's clock); the
    window covers the ``buckets`` most recent bucket periods, so an observation leaves it between
    ``seconds - seconds/buckets`` and ``seconds`` after it was added. Observations older than the
    window (relative to the newest time seen) are dropped.
    """

    __slots__ = (
        "_b_count",
        "_b_epoch",
        "_b_flagged",
        "_b_hist",
        "_b_max",
        "_b_min",
        "_b_sum",
        "_b_sum_sq",
        "_b_valued",
        "_hist",
        "_latest_epoch",
        "_relative_accuracy",
        "buckets",
        "count",
        "dropped",
        "flagged",
        "saturated",
        "seconds",
        "sum_sq",
        "total",
        "valued",
        "width",
    )

    def __init__(
        self,
        seconds: float,
        buckets: int = 10,
        *,
        track_histogram: bool = False,
        relative_accuracy: float = 0.01,
        window_histogram: bool = False,
    ) -> None:
        if window_histogram and not track_histogram:
            raise ValueError("window_histogram=True needs track_histogram=True")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"window_seconds must be a number, got {seconds!r}")
        if not is_finite(seconds) or seconds <= 0:
            raise ValueError(f"window_seconds must be a finite number > 0, got {shown(seconds)}")
        self.buckets = _check_size("buckets", buckets)
        self.seconds = float(seconds)
        self.width = self.seconds / buckets
        b = buckets
        self._b_epoch = [-(2**62)] * b
        self._b_count = [0] * b
        self._b_flagged = [0] * b
        self._b_valued = [0] * b
        self._b_sum = [0.0] * b
        self._b_sum_sq = [0.0] * b
        self._b_min = [math.inf] * b
        self._b_max = [-math.inf] * b
        if isinstance(relative_accuracy, bool) or not isinstance(relative_accuracy, (int, float)):
            raise TypeError(
                f"relative_accuracy must be a number in (0, 1), got {relative_accuracy!r}"
            )
        if not 0.0 < relative_accuracy < 1.0:  # also refuses NaN
            raise ValueError(f"relative_accuracy must be in (0, 1), got {relative_accuracy!r}")
        self._relative_accuracy = relative_accuracy
        self._b_hist: list[LogHistogram] | None = (
            [LogHistogram(relative_accuracy) for _ in range(b)] if track_histogram else None
        )
        # One histogram of the whole window (opt-in): quantile() then reads it directly instead
        # of merging every bucket's histogram, at the cost of one more update per observation.
        self._hist = LogHistogram(relative_accuracy) if window_histogram else None
        self._latest_epoch = -(2**62)
        self.saturated = self.dropped = 0
        self.count = 0
        self.flagged = 0
        self.valued = 0
        self.total = 0.0
        self.sum_sq = 0.0

    def _advance(self, epoch: int) -> None:
        """Move the window's head to ``epoch``: drop buckets that fell out, re-sum exactly."""
        self._latest_epoch = epoch
        oldest = epoch - self.buckets + 1
        for i in range(self.buckets):
            if self._b_epoch[i] < oldest and self._b_count[i]:
                self.count -= self._b_count[i]
                self.flagged -= self._b_flagged[i]
                self.valued -= self._b_valued[i]
                self._reset_bucket(i, self._b_epoch[i])
        self.total = math.fsum(self._b_sum)
        self.sum_sq = math.fsum(self._b_sum_sq)

    def _reset_bucket(self, i: int, epoch: int) -> None:
        self._b_epoch[i] = epoch
        self._b_count[i] = self._b_flagged[i] = self._b_valued[i] = 0
        self._b_sum[i] = self._b_sum_sq[i] = 0.0
        self._b_min[i] = math.inf
        self._b_max[i] = -math.inf
        if self._b_hist is not None:
            if self._hist is not None and self._b_hist[i].count:
                self._hist.subtract(self._b_hist[i])
            self._b_hist[i].clear()

    def expire(self, now: float) -> None:
        """Drop what is older than the window as of ``now`` (reads call this for you)."""
        epoch = int(now // self.width)
        if epoch > self._latest_epoch:
            self._advance(epoch)

    def _slot(self, now: float) -> int:
        """The bucket index for an observation made at ``now`` (recycling a stale bucket), or
        -1 when ``now`` is older than the window."""
        epoch = int(now // self.width)
        if epoch > self._latest_epoch:
            self._advance(epoch)
        elif epoch <= self._latest_epoch - self.buckets:
            return -1
        i = epoch % self.buckets
        if self._b_epoch[i] != epoch:
            if self._b_epoch[i] > epoch:
                return -1
            self.count -= self._b_count[i]
            self.flagged -= self._b_flagged[i]
            self.valued -= self._b_valued[i]
            self.total -= self._b_sum[i]
            self.sum_sq -= self._b_sum_sq[i]
            self._reset_bucket(i, epoch)
        return i

    def add(self, value: float | None, flag: bool, now: float) -> bool:
        """Add an observation made at ``now``; returns False if it was too old to count."""
        if value is not None and not -VALUE_LIMIT <= value <= VALUE_LIMIT:
            value = _tame(self, value)
        i = self._slot(now)
        if i < 0:
            return False
        self._b_count[i] += 1
        self.count += 1
        if flag:
            self._b_flagged[i] += 1
            self.flagged += 1
        if value is not None:
            self._b_valued[i] += 1
            self.valued += 1
            self._b_sum[i] += value
            self.total += value
            sq = value * value
            self._b_sum_sq[i] += sq
            self.sum_sq += sq
            if value < self._b_min[i]:
                self._b_min[i] = value
            if value > self._b_max[i]:
                self._b_max[i] = value
            if self._b_hist is not None:
                self._b_hist[i].add(value)
                if self._hist is not None:
                    self._hist.add(value)
        return True

    def add_aggregate(self, agg: Aggregate, now: float) -> bool:
        """Add a pre-aggregated group of observations all made at ``now`` in one step.

        Equivalent to calling :meth:`add` once per observation of the group (bulk ingest: the
        group's sums and histogram are computed once and shared by every window that takes
        them). ``agg.histogram`` is required when the group has values and this window tracks
        a histogram. Returns False if ``now`` was too old to count (nothing is added). Sums and
        extremes beyond what ``agg.valued`` values within ``±VALUE_LIMIT`` can reach are
        saturated (see :meth:`Aggregate.of`); an aggregate carrying NaN raises ValueError.
        """
        if agg.count <= 0:
            return False
        if agg.valued and (agg.min is None or agg.max is None):
            raise ValueError("an aggregate with values needs min and max")
        i = self._slot(now)
        if i < 0:
            return False
        self._b_count[i] += agg.count
        self.count += agg.count
        self._b_flagged[i] += agg.flagged
        self.flagged += agg.flagged
        if agg.valued:
            lo, hi, total, sum_sq = _tame_aggregate(self, agg)
            self._b_valued[i] += agg.valued
            self.valued += agg.valued
            self._b_sum[i] += total
            self.total += total
            self._b_sum_sq[i] += sum_sq
            self.sum_sq += sum_sq
            if lo < self._b_min[i]:
                self._b_min[i] = lo
            if hi > self._b_max[i]:
                self._b_max[i] = hi
            if self._b_hist is not None:
                if agg.histogram is None:
                    raise ValueError("this window tracks a histogram: the aggregate needs one")
                self._b_hist[i].merge(agg.histogram)
                if self._hist is not None:
                    self._hist.merge(agg.histogram)
        return True

    def clear(self) -> None:
        for i in range(self.buckets):
            self._reset_bucket(i, -(2**62))
        self._latest_epoch = -(2**62)
        self.count = self.flagged = self.valued = 0
        self.total = self.sum_sq = 0.0

    def aggregate(
        self, now: float | None = None, *, span: float | None = None, offset: float = 0.0
    ) -> Aggregate:
        """Aggregates of the buckets in ``(now - offset - span, now - offset]``.

        Without ``span``/``offset`` this is the whole window. A shifted span (``offset=seconds``)
        reads the previous period, e.g. for a current-minus-previous delta; the window must then
        have been built long enough to hold both periods.
        """
        if now is not None:
            self.expire(now)
        head = self._latest_epoch - round(offset / self.width)
        n = self.buckets if span is None else max(1, round(span / self.width))
        lo = head - n + 1
        count = flagged = valued = 0
        sums: list[float] = []
        sqs: list[float] = []
        mn, mx = math.inf, -math.inf
        hist = LogHistogram(self._relative_accuracy) if self._b_hist is not None else None
        b_count = self._b_count
        for i, e in enumerate(self._b_epoch):
            if lo <= e <= head and b_count[i]:
                count += b_count[i]
                flagged += self._b_flagged[i]
                valued += self._b_valued[i]
                sums.append(self._b_sum[i])
                sqs.append(self._b_sum_sq[i])
                if self._b_min[i] < mn:
                    mn = self._b_min[i]
                if self._b_max[i] > mx:
                    mx = self._b_max[i]
                if hist is not None and self._b_hist is not None:
                    hist.merge(self._b_hist[i])
        return Aggregate(
            count=count,
            flagged=flagged,
            valued=valued,
            total=math.fsum(sums),
            sum_sq=math.fsum(sqs),
            min=mn if valued else None,
            max=mx if valued else None,
            histogram=hist,
        )

    def extremes(self, now: float | None = None) -> tuple[float | None, float | None]:
        """``(min, max)`` of the values in the whole window (``(None, None)`` without values);
        a scan of the buckets' own extremes, cheaper than a full :meth:`aggregate`."""
        if now is not None:
            self.expire(now)
        if not self.valued:
            return None, None
        return min(self._b_min), max(self._b_max)  # expired buckets are reset to +-inf

    def quantile(self, q: float, now: float | None = None) -> float | None:
        """Nearest-rank ``q``-quantile of the whole window (needs ``track_histogram=True``).

        With ``window_histogram=True`` this reads the window's own histogram (no merging);
        otherwise it merges the buckets' histograms like :meth:`aggregate`.
        """
        if now is not None:
            self.expire(now)
        if self._hist is not None:
            return self._hist.quantile(q)
        return self.aggregate().quantile(q)

    def __repr__(self) -> str:
        return (
            f"TimeWindow(seconds={self.seconds!r}, buckets={self.buckets}, "
            f"count={self.count}, flagged={self.flagged})"
        )


def _tame_aggregate(window: TimeWindow, agg: Aggregate) -> tuple[float, float, float, float]:
    """``(min, max, total, sum_sq)`` of ``agg``, saturated as if each value had been."""
    assert agg.min is not None and agg.max is not None
    n = agg.valued
    lo, hi, total, sum_sq = agg.min, agg.max, agg.total, agg.sum_sq
    bound = VALUE_LIMIT * n
    if (
        -VALUE_LIMIT <= lo <= VALUE_LIMIT
        and -VALUE_LIMIT <= hi <= VALUE_LIMIT
        and -bound <= total <= bound
        and 0.0 <= sum_sq <= _SQ_LIMIT * n
    ):
        return lo, hi, total, sum_sq
    if lo != lo or hi != hi or total != total or sum_sq != sum_sq:
        raise ValueError(f"an aggregate must not carry NaN, got {agg!r}")
    if not (window.saturated or window.dropped):
        _warn_once(window, max(abs(lo), abs(hi), abs(total)))
    window.saturated += 1
    return (
        saturate(lo),
        saturate(hi),
        max(-bound, min(bound, total)),
        max(0.0, min(_SQ_LIMIT * n, sum_sq)),
    )
