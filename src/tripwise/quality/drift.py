"""A change detector for a mean quality that drifts down: one-sided CUSUM.

Each scored call adds ``baseline - score - slack`` to a running sum floored at zero; the
condition trips when the sum reaches ``h``. A healthy model keeps the sum near zero (its
scores average the baseline, and ``slack`` pulls the sum down); a model whose mean quality
drops by more than ``slack`` makes it climb steadily, so even a small lasting drop trips,
after about ``h / (drop - slack)`` calls, and noise cannot masquerade as one.

``h`` comes from ``false_trips_per_million``. If ``theta > 0`` satisfies
``E[exp(theta * increment)] <= 1`` for a healthy model, ``exp(theta * S)`` is a
supermartingale, a CUSUM excursion reaches ``h`` with probability at most ``exp(-theta * h)``,
and since every trip needs its own excursion start (one per call at most), expected false
trips per million healthy calls are at most ``1e6 * exp(-theta * h)``. Setting that equal to
the budget gives ``h = ln(1e6 / budget) / theta``. ``theta`` comes from:

- ``bound="empirical"`` (default when a sample is known: ``fit`` or the warmup): the largest
  theta for which the *sample's* average of ``exp(theta * increment)`` (plus one worst-case
  score of 0) is <= 1. Uses the real shape of the score distribution, e.g. softmax confidences
  piled up near 1; the guarantee is as good as the sample is representative.
- ``bound="bennett"`` (default when only ``mean``/``std`` are given): Bennett's inequality for
  scores in [0, 1] with that variance. Holds for any distribution; slower to trip.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from tripwise.core.conditions import ScoreFn, check_score_fn
from tripwise.core.records import check_score
from tripwise.quality._scored import ScoredCondition
from tripwise.quality._stats import (
    PER_MILLION,
    bennett_theta,
    check_false_trips,
    empirical_theta,
)

_BOUNDS = ("auto", "empirical", "bennett")


class QualityDrift(ScoredCondition):
    """One-sided CUSUM on quality scores; trips on a lasting drop of the mean.

    The healthy baseline (mean and standard deviation of the scores) is given (``mean``,
    ``std``), fitted from known-good scores (``fit``), or learned from the first ``warmup``
    scored calls. A learned baseline is made conservative (mean lowered by two standard
    errors, variance raised to its upper ~95% bound) so estimation noise does not turn into
    false trips. The baseline survives ``reset()`` (the breaker resets its conditions on every
    close); ``refit()`` forgets it.

    After a reset (the breaker closing after a recovery) the sum restarts at
    ``head_start * h`` instead of 0 (a "fast initial response" CUSUM): a model that is still
    bad trips again quickly, while a healthy one drains the head start within a few dozen
    calls (and trips from it with probability at most ``exp(-theta * h * (1 - head_start))``).
    """

    def __init__(
        self,
        shift: float = 0.1,
        score_fn: ScoreFn | None = None,
        *,
        mean: float | None = None,
        std: float | None = None,
        warmup: int = 200,
        false_trips_per_million: float = 1.0,
        bound: str = "auto",
        head_start: float = 0.5,
        probe_threshold: float | None = None,
    ) -> None:
        if bound not in _BOUNDS:
            raise ValueError(f"bound must be one of {_BOUNDS}, got {bound!r}")
        if bound == "empirical" and mean is not None:
            raise ValueError(
                "bound='empirical' needs sample scores (fit() or warmup), not mean/std"
            )
        if (
            isinstance(head_start, bool)
            or not isinstance(head_start, (int, float))
            or not 0.0 <= head_start < 1.0
        ):
            raise ValueError(f"head_start must be a fraction of h in [0, 1), got {head_start!r}")
        if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not 0 < shift <= 1:
            raise ValueError(f"shift must be a drop in mean quality in (0, 1], got {shift!r}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std of healthy scores, or neither")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 10:
            raise ValueError(f"warmup must be an integer >= 10 scored calls, got {warmup!r}")
        if probe_threshold is not None:
            probe_threshold = check_score(probe_threshold, "probe_threshold")
        self.shift = float(shift)
        self.slack = self.shift / 2.0
        self.score_fn = check_score_fn(score_fn)
        self.warmup = warmup
        self.false_trips_per_million = check_false_trips(false_trips_per_million)
        self.bound = bound
        self.head_start = float(head_start)
        self._probe_threshold = probe_threshold
        self.baseline: float | None = None
        self.variance: float | None = None
        self.theta = self.h = math.nan
        self.statistic = 0.0  # the CUSUM sum S
        self._learned: list[float] = []
        if mean is not None and std is not None:
            self._set_baseline(check_score(mean, "mean"), _check_std(std) ** 2, None)

    # ------------------------------------------------------------ baseline

    def _set_baseline(self, mean: float, variance: float, sample: list[float] | None) -> None:
        self.baseline = mean
        self.variance = max(variance, 1e-12)
        if sample is not None and self.bound != "bennett":
            self.theta = empirical_theta(sample, mean, self.slack)
        else:
            self.theta = bennett_theta(self.variance, self.slack)
        # theta = inf: scores cannot fall further below this baseline: nothing to detect
        self.h = (
            math.log(PER_MILLION / self.false_trips_per_million) / self.theta
            if math.isfinite(self.theta)
            else math.inf
        )
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
            max(0.0, mean - 2.0 * math.sqrt(var / n)),
            var * (1.0 + 2.0 * math.sqrt(2.0 / (n - 1))),
            values,
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
        """A half-open probe scoring below this is a failed probe (default: baseline - 2 std)."""
        if self._probe_threshold is not None:
            return self._probe_threshold
        if self.baseline is None or self.variance is None:
            return None
        return max(0.0, self.baseline - 2.0 * math.sqrt(self.variance))

    def expected_delay(self, drop: float) -> float:
        """Roughly how many scored calls it takes to trip after the mean drops by ``drop``."""
        if not self.fitted or drop <= self.slack:
            return math.inf
        return self.h / (drop - self.slack)

    # ------------------------------------------------------------ condition protocol

    def _score(self, quality: float, now: float) -> bool:
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
        self.statistic = self.head_start * self.h if math.isfinite(self.h) else 0.0

    def __repr__(self) -> str:
        base = (
            f", mean={self.baseline:.4g}, std={math.sqrt(self.variance or 0.0):.4g}"
            if self.baseline is not None
            else f", warmup={self.warmup}"
        )
        return (
            f"quality_drift(shift={self.shift!r}{base}, "
            f"false_trips_per_million={self.false_trips_per_million!r}, bound={self.bound!r})"
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
    bound: str = "auto",
    head_start: float = 0.5,
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
        bound=bound,
        head_start=head_start,
        probe_threshold=probe_threshold,
    )
