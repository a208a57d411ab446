"""A change detector for a mean quality that drifts down: one-sided CUSUM.

Each scored call adds ``baseline - score - slack`` to a running sum floored at zero; the
condition trips when the sum reaches ``h``. A healthy model keeps the sum near zero (its
scores average the baseline, and ``slack`` pulls the sum down); a model whose mean quality
drops by more than ``slack`` makes it climb steadily, so even a small lasting drop trips,
after about ``h / (drop - slack)`` calls, and noise cannot masquerade as one.

``h`` comes from ``false_trips_per_million`` through an exact bound rather than a normal
approximation: scores lie in [0, 1] and have a known variance, so Bennett's inequality gives a
``theta`` with ``E[exp(theta * increment)] <= 1`` for a healthy model; a CUSUM excursion then
reaches ``h`` with probability at most ``exp(-theta * h)``, and there is at most one excursion
start per call, so expected false trips per million healthy calls are at most
``1e6 * exp(-theta * h)``. Heavy-tailed score distributions are covered (only the variance
and the [0, 1] range are used).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from tripwise.core.conditions import Condition, ScoreFn
from tripwise.core.records import check_score
from tripwise.quality._stats import PER_MILLION, bennett_theta, check_false_trips


class QualityDrift(Condition):
    """One-sided CUSUM on quality scores; trips on a lasting drop of the mean.

    The healthy baseline (mean and standard deviation of the scores) is given (``mean``,
    ``std``), fitted from known-good scores (``fit``), or learned from the first ``warmup``
    scored calls. A learned baseline is made conservative (mean lowered by two standard
    errors, variance raised to its upper ~95% bound) so estimation noise does not turn into
    false trips. The baseline survives ``reset()`` (the breaker resets its conditions on every
    close); ``refit()`` forgets it.
    """

    uses_quality = True
    lean = True

    def __init__(
        self,
        shift: float = 0.1,
        score_fn: ScoreFn | None = None,
        *,
        mean: float | None = None,
        std: float | None = None,
        warmup: int = 200,
        false_trips_per_million: float = 1.0,
        probe_threshold: float | None = None,
    ) -> None:
        if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not 0 < shift <= 1:
            raise ValueError(f"shift must be a drop in mean quality in (0, 1], got {shift!r}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std of healthy scores, or neither")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 10:
            raise ValueError(f"warmup must be an integer >= 10 scored calls, got {warmup!r}")
        if score_fn is not None and not callable(score_fn):
            raise TypeError(f"score_fn must be a callable taking the result, got {score_fn!r}")
        if probe_threshold is not None:
            probe_threshold = check_score(probe_threshold, "probe_threshold")
        self.shift = float(shift)
        self.slack = self.shift / 2.0
        self.score_fn = score_fn
        self.warmup = warmup
        self.false_trips_per_million = check_false_trips(false_trips_per_million)
        self._probe_threshold = probe_threshold
        self.baseline: float | None = None
        self.variance: float | None = None
        self.theta = self.h = math.nan
        self.statistic = 0.0  # the CUSUM sum S
        self._learned: list[float] = []
        if mean is not None and std is not None:
            self._set_baseline(check_score(mean, "mean"), _check_std(std) ** 2)

    # ------------------------------------------------------------ baseline

    def _set_baseline(self, mean: float, variance: float) -> None:
        self.baseline = mean
        self.variance = max(variance, 1e-12)
        self.theta = bennett_theta(self.variance, self.slack)
        self.h = math.log(PER_MILLION / self.false_trips_per_million) / self.theta
        self.statistic = 0.0
        self._learned = []

    def fit(self, scores: Iterable[float]) -> QualityDrift:
        """Set the healthy baseline from known-good scores (at least 10)."""
        values = [check_score(s, "fit() score") for s in scores]
        if len(values) < 10:
            raise ValueError(f"fit() needs at least 10 known-good scores, got {len(values)}")
        n = len(values)
        mean = math.fsum(values) / n
        var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
        # conservative: mean lowered by two standard errors, variance raised to an upper bound
        self._set_baseline(
            max(0.0, mean - 2.0 * math.sqrt(var / n)), var * (1.0 + 2.0 * math.sqrt(2.0 / (n - 1)))
        )
        return self

    def refit(self) -> None:
        """Forget the baseline; the next ``warmup`` scored calls teach a new one."""
        self.baseline = self.variance = None
        self.theta = self.h = math.nan
        self.statistic = 0.0
        self._learned = []

    @property
    def fitted(self) -> bool:
        return self.baseline is not None

    @property
    def probe_threshold(self) -> float | None:
        """A half-open probe scoring below this is a failed probe (default: baseline - 3 std)."""
        if self._probe_threshold is not None:
            return self._probe_threshold
        if self.baseline is None or self.variance is None:
            return None
        return max(0.0, self.baseline - 3.0 * math.sqrt(self.variance))

    def expected_delay(self, drop: float) -> float:
        """Roughly how many scored calls it takes to trip after the mean drops by ``drop``."""
        if not self.fitted or drop <= self.slack:
            return math.inf
        return self.h / (drop - self.slack)

    # ------------------------------------------------------------ condition protocol

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
        return self._step(quality)

    def observe_late(self, quality: float, now: float) -> bool:
        return self._step(quality)

    def _step(self, quality: float) -> bool:
        baseline = self.baseline
        if baseline is None:
            self._learned.append(quality)
            if len(self._learned) >= self.warmup:
                self.fit(self._learned)
            return False
        s = self.statistic + (baseline - quality - self.slack)
        self.statistic = s if s > 0.0 else 0.0
        return self.statistic >= self.h

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        threshold = self.probe_threshold
        return error is not None or (
            quality is not None and threshold is not None and quality < threshold
        )

    def reset(self) -> None:
        self.statistic = 0.0

    def __repr__(self) -> str:
        base = (
            f", mean={self.baseline:.4g}, std={math.sqrt(self.variance or 0.0):.4g}"
            if self.baseline is not None
            else f", warmup={self.warmup}"
        )
        return (
            f"quality_drift(shift={self.shift!r}{base}, "
            f"false_trips_per_million={self.false_trips_per_million!r})"
        )


def _check_std(std: Any) -> float:
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not (0 <= std <= 0.5):
        raise ValueError(f"std of scores in [0, 1] must be in [0, 0.5], got {std!r}")
    return float(std)


def quality_drift(
    shift: float = 0.1,
    score_fn: ScoreFn | None = None,
    *,
    mean: float | None = None,
    std: float | None = None,
    warmup: int = 200,
    false_trips_per_million: float = 1.0,
    probe_threshold: float | None = None,
) -> QualityDrift:
    """Trip when the mean quality drifts down by about ``shift`` or more (CUSUM)."""
    return QualityDrift(
        shift,
        score_fn,
        mean=mean,
        std=std,
        warmup=warmup,
        false_trips_per_million=false_trips_per_million,
        probe_threshold=probe_threshold,
    )
