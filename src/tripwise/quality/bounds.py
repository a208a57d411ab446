"""Window conditions that trip on *evidence*, not on one unlucky window.

``quality_below(0.8, window=20)`` trips whenever 20 scores happen to average below 0.8, and a
healthy model with mean 0.88 does that by chance every few hundred calls. These conditions
trip only when a one-sided confidence bound puts the window's quality below the threshold.
The bound's level comes from ``false_trips_per_million``: each check is a test at level
``alpha = false_trips_per_million / 1e6``, and since a trip needs a positive test, a stream
whose true quality sits exactly at the threshold trips at most that often per million scored
calls (in expectation); healthy traffic, better than the threshold, trips far less.
"""

from __future__ import annotations

import math

from tripwise.core.conditions import ScoreFn, WindowRule, check_rate, check_score_fn
from tripwise.quality._scored import ScoredCondition
from tripwise.quality._stats import (
    PER_MILLION,
    binomial_critical_count,
    check_false_trips,
    normal_upper_quantile,
)

_METHODS = ("normal", "hoeffding", "bernstein")


class _ScoredWindow(ScoredCondition, WindowRule):
    """A count or time window over scored calls only; windows hold at least 2 scores."""

    def _setup(
        self,
        window: int,
        window_seconds: float | None,
        min_calls: int,
        buckets: int,
        score_fn: ScoreFn | None,
    ) -> None:
        self.score_fn = check_score_fn(score_fn)
        self._setup_window(window, window_seconds, min_calls, buckets, smallest=2)


class QualityMeanBelow(_ScoredWindow):
    """Trips when the upper confidence bound on the window's mean quality is below
    ``threshold``: the quality is worse than the threshold with confidence ``1 - alpha``.

    ``method``: ``"normal"`` (default; CLT bound with the window's sample standard deviation,
    sharp but approximate for small windows of skewed scores), ``"hoeffding"`` (exact for any
    scores in [0, 1], needs a larger gap or window), ``"bernstein"`` (empirical Bernstein:
    exact, uses the sample variance, needs windows of a few hundred).
    """

    def __init__(
        self,
        threshold: float,
        window: int = 50,
        score_fn: ScoreFn | None = None,
        *,
        min_calls: int = 20,
        false_trips_per_million: float = 1.0,
        method: str = "normal",
        probe_threshold: float | None = None,
        window_seconds: float | None = None,
        buckets: int = 10,
        score_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        self._unit_scores_only(score_range)
        self.threshold = check_rate("threshold", threshold)
        self.false_trips_per_million = check_false_trips(false_trips_per_million)
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
        self.method = method
        self.probe_threshold = (
            self.threshold
            if probe_threshold is None
            else check_rate("probe_threshold", probe_threshold)
        )
        self._setup(window, window_seconds, min_calls, buckets, score_fn)
        alpha = self.false_trips_per_million / PER_MILLION
        self.alpha = alpha
        self._z = normal_upper_quantile(alpha)
        self._log_term = math.log(1.0 / alpha)
        self._log_term2 = math.log(2.0 / alpha)

    def upper_bound(self, n: int, total: float, sum_sq: float) -> float:
        """The one-sided upper confidence bound on the mean of ``n`` scores."""
        mean = total / n
        if self.method == "hoeffding":
            return mean + math.sqrt(self._log_term / (2.0 * n))
        var = max(0.0, (sum_sq - n * mean * mean) / (n - 1))
        if self.method == "normal":
            return mean + self._z * math.sqrt(var / n)
        return (  # empirical Bernstein (Maurer & Pontil 2009, theorem 4)
            mean
            + math.sqrt(2.0 * var * self._log_term2 / n)
            + 7.0 * self._log_term2 / (3.0 * (n - 1))
        )

    def _score(self, quality: float, now: float) -> bool:
        self._add(quality, False, now)
        w = self.window
        n = w.valued
        if n < self.min_calls or w.total >= self.threshold * n:
            return False  # too few scores, or the mean itself is fine: no test needed
        return self.upper_bound(n, w.total, w.sum_sq) < self.threshold

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or (quality is not None and quality < self.probe_threshold)

    def __repr__(self) -> str:
        return (
            f"quality_mean_below({self.threshold!r}, {self._window_repr}, "
            f"min_calls={self.min_calls}, false_trips_per_million="
            f"{self.false_trips_per_million!r}, method={self.method!r})"
        )


class LowQualityShareAbove(_ScoredWindow):
    """Trips when an exact binomial test says the share of scored calls below ``threshold``
    exceeds ``rate`` (the share of low scores you accept from a healthy model).

    Distribution-free: it only assumes calls are independent, whatever the scores look like,
    so the false-trip guarantee holds exactly. Critical counts are computed once per window
    size and cached; each call is then O(1).
    """

    def __init__(
        self,
        rate: float,
        threshold: float,
        window: int = 50,
        score_fn: ScoreFn | None = None,
        *,
        min_calls: int = 20,
        false_trips_per_million: float = 1.0,
        window_seconds: float | None = None,
        buckets: int = 10,
        score_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        self._unit_scores_only(score_range)
        self.rate = check_rate("rate", rate)
        if self.rate == 1.0:  # no share of low scores can exceed 1
            raise ValueError(f"rate must be in [0, 1), got {rate!r}")
        self.threshold = check_rate("threshold", threshold)
        self.false_trips_per_million = check_false_trips(false_trips_per_million)
        self._setup(window, window_seconds, min_calls, buckets, score_fn)
        self.alpha = self.false_trips_per_million / PER_MILLION
        self._critical: dict[int, int] = {}

    def critical_count(self, n: int) -> int:
        """How many low scores out of ``n`` it takes to trip."""
        k = self._critical.get(n)
        if k is None:
            k = self._critical[n] = binomial_critical_count(n, self.rate, self.alpha)
        return k

    def _score(self, quality: float, now: float) -> bool:
        low = quality < self.threshold
        self._add(quality, low, now)
        if not low:
            return False  # a good score never makes the evidence stronger
        w = self.window
        n = w.count
        return n >= self.min_calls and w.flagged >= self.critical_count(n)

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or (quality is not None and quality < self.threshold)

    def __repr__(self) -> str:
        return (
            f"low_quality_share_above({self.rate!r}, {self.threshold!r}, {self._window_repr}, "
            f"min_calls={self.min_calls}, false_trips_per_million="
            f"{self.false_trips_per_million!r})"
        )


quality_mean_below = QualityMeanBelow
"""Trip when the window's mean quality is confidently below ``threshold`` (the class itself:
one signature, ``isinstance`` works)."""

low_quality_share_above = LowQualityShareAbove
"""Trip when the share of scores below ``threshold`` is confidently above ``rate`` (the class
itself)."""
