"""Sliding windows with running aggregates, updated in O(1) per observation.

An observation is a value (or ``None``: nothing to aggregate, e.g. a call without a quality
score still counts for an error rate) and a flag (a failure, a slow call, a low score...).
Both window kinds keep running totals that are updated on insert and subtracted on eviction;
nothing is re-scanned on the hot path. Float sums are recomputed exactly once per rotation of
the window, so rounding never drifts.

- :class:`CountWindow` holds the last ``size`` observations.
- :class:`TimeWindow` holds the observations of the last ``seconds`` in a ring of ``buckets``
  time buckets; each bucket keeps count, sum, sum of squares, min, max, flagged count and,
  when asked for, a log histogram for quantiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tripwise.core.histogram import LogHistogram


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


def _check_size(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class CountWindow:
    """The last ``size`` observations."""

    __slots__ = (
        "_flags",
        "_hist",
        "_next",
        "_values",
        "count",
        "flagged",
        "size",
        "sum_sq",
        "total",
        "valued",
    )

    def __init__(self, size: int, *, track_histogram: bool = False) -> None:
        self.size = _check_size("window", size)
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

    def add(self, value: float | None, flag: bool) -> None:
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

    def aggregate(self) -> Aggregate:
        vals = [v for v in self._values if v is not None]  # min/max are read rarely: scan
        hist = None
        if self._hist is not None:
            hist = LogHistogram(self._hist.relative_accuracy)
            hist.merge(self._hist)
        return Aggregate(
            count=self.count,
            flagged=self.flagged,
            valued=self.valued,
            total=self.total,
            sum_sq=self.sum_sq,
            min=min(vals) if vals else None,
            max=max(vals) if vals else None,
            histogram=hist,
        )

    def __repr__(self) -> str:
        return f"CountWindow(size={self.size}, count={self.count}, flagged={self.flagged})"


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
        "flagged",
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
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"window_seconds must be a finite number > 0, got {seconds!r}")
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
        self._relative_accuracy = relative_accuracy
        self._b_hist: list[LogHistogram] | None = (
            [LogHistogram(relative_accuracy) for _ in range(b)] if track_histogram else None
        )
        # One histogram of the whole window (opt-in): quantile() then reads it directly instead
        # of merging every bucket's histogram, at the cost of one more update per observation.
        self._hist = LogHistogram(relative_accuracy) if window_histogram else None
        self._latest_epoch = -(2**62)
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
        a histogram. Returns False if ``now`` was too old to count (nothing is added).
        """
        if agg.count <= 0:
            return False
        i = self._slot(now)
        if i < 0:
            return False
        self._b_count[i] += agg.count
        self.count += agg.count
        self._b_flagged[i] += agg.flagged
        self.flagged += agg.flagged
        if agg.valued:
            if agg.min is None or agg.max is None:
                raise ValueError("an aggregate with values needs min and max")
            self._b_valued[i] += agg.valued
            self.valued += agg.valued
            self._b_sum[i] += agg.total
            self.total += agg.total
            self._b_sum_sq[i] += agg.sum_sq
            self.sum_sq += agg.sum_sq
            if agg.min < self._b_min[i]:
                self._b_min[i] = agg.min
            if agg.max > self._b_max[i]:
                self._b_max[i] = agg.max
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
