"""A change detector for a mean quality that drifts down: a bank of one-sided CUSUMs.

Each CUSUM adds ``centre - x - slack`` to a running sum floored at zero and trips when the
sum reaches its ``h``. A healthy model keeps the sums near zero (its scores average the
centre, and ``slack`` pulls them down); a model whose quality drops by more than a CUSUM's
``slack`` makes its sum climb, so a lasting drop trips after about ``h / (drop - slack)``
calls. A CUSUM is fastest for drops near ``2 * slack``; the bank runs four (slacks
``shift/2``, ``shift``, ``2 * shift``, ``4 * shift``), so drops from ``shift`` to
``8 * shift`` are all caught close to the best delay any detector could reach.

For continuous scores a second bank reads ranks instead of raw scores: each score's mid-rank
among the known-good ones (uniform on [0, 1] for a healthy model, whatever the shape of its
scores), so a drop among scores piled up near 1 (softmax confidences) weighs as much as a
drop anywhere. Beside ranks the raw lane keeps two small slacks (``shift/4``, ``shift/2``,
or 10 and 20 standard errors of the baseline if larger): for scores that fall to 0 (a rank
cannot go below 0) and for slow ramps. A third, "low"
lane (continuous scores with ranks) counts scores at or below the known-good 1st percentile:
two Bernoulli CUSUMs on that share, tuned for 20% and 60% of calls low (likelihood-ratio
slacks), catch bursts of scores at the bottom of the range (zero vectors,
a flaky join) within a handful of calls, where a CUSUM on the mean or the ranks adds a
bounded step per call and drains between bursts. Its healthy share is a Wilson upper bound
(z = 2), the sample padded with low scores up to it.
Discrete scores (pass/fail, or a few levels such as ``TextQuality``'s 0 / 0.83 / 1) get a
"failure" lane instead: Bernoulli likelihood-ratio CUSUMs on the share of scores at the
lowest known-good level, tuned for that share rising by ``shift`` x 0.5, 1, 2 and 4 (healthy
share at a Wilson upper bound, z = 0.5).

``h`` comes from ``false_trips_per_million``, split over the CUSUMs. If ``theta > 0``
satisfies ``E[exp(theta * increment)] <= 1`` for a healthy model, ``exp(theta * S)`` is a
supermartingale and an excursion that starts with a step ``d > 0`` reaches ``h`` with
probability at most ``exp(theta * (d - h))``; so expected false trips per call are at most
``factor * exp(-theta * h)``, ``factor`` the average of ``exp(theta * d)`` over positive
steps (see ``_stats.excursion_factor``), divided by how much rarer excursions are than
calls that could start one (an excursion keeps the sum away from 0 for ``1 + d / -mean``
calls on average; ``_stats.excursion_rarity``). Both are computed on the padded sample
(below), whose increments are stochastically larger than the model's, so the bound holds
for the model too. From a reference of 10,000 known-good scores or more (``fit()``), each
CUSUM's ``h`` is then lowered by the slack a simulation on that sample measures in the bound
(``QualityDrift._calibrated``), aiming at half the budget; live warmups keep the bound.
``theta``:

- ``bound="empirical"`` (default when a sample is known: ``fit`` or the warmup): the largest
  theta for which the *sample's* average of ``exp(theta * increment)`` (plus worst-case
  scores of 0, see below) is <= 1. Uses the real shape of the score distribution.
- ``bound="bennett"`` (default when only ``mean``/``std`` are given): Bennett's inequality for
  scores in [0, 1] with that variance. Holds for any distribution; slower to trip.

A baseline learned from a sample must not be luckier than the model: a warmup that happened
to see few low scores would set the trip line too tight. So the learned centre is the sample
mean lowered by half a standard error (from an upper bound on the variance), the sample used
for ``theta`` is padded with worst-case scores (one for continuous scores; for pass/fail
scores, failures up to a Wilson upper bound on the failure share, so an all-pass warmup
cannot claim failures never happen), and the warmup keeps going past ``warmup`` calls until
that standard error is below a tenth of the slack (and a discrete score has shown 50
failures), or ``max_warmup`` is reached.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tripwise.core.conditions import ScoreFn, check_score_fn
from tripwise.core.records import check_score
from tripwise.quality._scored import ScoredCondition
from tripwise.quality._stats import (
    PER_MILLION,
    bennett_theta,
    check_false_trips,
    empirical_theta,
    excursion_factor,
    excursion_rarity,
    simulated_trips,
    theta_slope,
)

logger = logging.getLogger("tripwise.quality")

_BOUNDS = ("auto", "empirical", "bennett")
_TRANSFORMS = ("auto", "rank", "none")
_SLACK_FACTORS = (0.5, 1.0, 2.0, 4.0)  # the bank: tuned for drops of 1, 2, 4, 8 x shift
_RAW_BESIDE_RANKS = (0.25, 0.5)  # the raw lane's slacks (x shift) beside ranks: slow drifts
_PRECISION = 0.1  # the warmup ends when the baseline's standard error <= this * slack
_WILSON_Z = 0.5  # pass/fail scores: failures padded up to this Wilson upper bound
_MIN_FAILURES = 50  # discrete warmups last until this many failures (or max_warmup)
_RANK_SHIFT_MIN, _RANK_SHIFT_MAX = 0.02, 0.25  # the rank drop the bank is tuned around
_MIN_DISTINCT_FOR_RANKS = 20  # fewer distinct known-good scores: a discrete score, kept raw
_MARGIN_Z = 0.5  # the learned baseline: the sample mean lowered by this many standard errors
_LOW_QUANTILE = 0.01  # the low lane: scores at or below this known-good quantile are "low"
_LOW_Z = 2.0  # the low lane's healthy low share: a Wilson upper bound at this z
_LOW_TARGETS = (0.2, 0.6)  # the low lane's CUSUMs: tuned for these shares of low scores
_MIN_LOW = 5  # the low lane needs at least this many known-good scores at or below its line
_MIN_CALIBRATION = 10_000  # known-good scores needed to calibrate h by simulation (fit())
_CALIBRATED_SHARE = 0.5  # calibrated h: the estimated rate aims at this share of the budget
_SIM_RATE = 1e-3  # calibration: each CUSUM is simulated where its bound says this per call
_SIM_CHAINS, _SIM_STEPS = 1000, 400  # simulated calls (see _stats.simulated_trips)


def _bernoulli_slack(p0: float, p1: float) -> float:
    """The slack of the likelihood-ratio CUSUM for a low share rising from p0 to p1, in units
    of (1 - low) around the centre 1 - p0: steps ``1 - k`` on a low score, ``-k`` otherwise."""
    k = math.log((1.0 - p0) / (1.0 - p1)) / math.log(p1 * (1.0 - p0) / (p0 * (1.0 - p1)))
    return k - p0


def _variance_upper(var: float, n: int) -> float:
    """An upper ~95% bound on a variance estimated from ``n`` values (normal theory)."""
    return var * (1.0 + 2.0 * math.sqrt(2.0 / (n - 1)))


def _wilson_upper(failures: int, n: int, z: float) -> float:
    """Wilson score upper bound on a failure share seen ``failures`` times in ``n``."""
    p = failures / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z2 / n))


@dataclass(frozen=True)
class _Lane:
    """CUSUMs sharing an input (raw scores or their ranks) and a centre."""

    on_ranks: bool
    centre: float
    slacks: tuple[float, ...]
    variance: float
    sample: list[float] | None  # padded known-good sample, in the lane's units
    on_low: bool = False  # reads 0 for a score at or below ``low_threshold``, else 1


class QualityDrift(ScoredCondition):
    """A bank of one-sided CUSUMs on quality scores (and their ranks); trips on a lasting drop.

    ``transform``: ``"auto"`` (ranks, the low lane and a small-slack raw lane for continuous
    scores; the failure lane for pass/fail or few distinct values, once 50 failures were
    seen, else raw), ``"rank"`` (ranks and the low lane only), ``"none"`` (raw only: then a
    drop of the mean smaller than ``shift / 2`` never trips on average). ``low_threshold``
    is the low or failure lane's line (None without one).

    The healthy baseline is given (``mean``, ``std``), seeded from known-good scores
    (``fit``, e.g. an offline validation run), or learned from the first scored calls (at
    least ``warmup``, more when the scores are too noisy for a tight estimate, at most
    ``max_warmup``). See the module docstring for how a learned baseline is kept from being
    unlucky. The baseline survives ``reset()`` (the breaker resets its conditions on every
    close); ``refit()`` forgets it. After ``fit()``, the live scores keep being averaged and a
    warning is logged (once) when their mean drifts far from the reference.

    After a reset (the breaker closing after a recovery) each sum restarts at
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
        max_warmup: int = 5000,
        false_trips_per_million: float = 1.0,
        bound: str = "auto",
        head_start: float = 0.5,
        probe_threshold: float | None = None,
        transform: str = "auto",
        score_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        self._unit_scores_only(score_range)
        if transform not in _TRANSFORMS:
            raise ValueError(f"transform must be one of {_TRANSFORMS}, got {transform!r}")
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
        if isinstance(max_warmup, bool) or not isinstance(max_warmup, int) or max_warmup < warmup:
            raise ValueError(
                f"max_warmup must be an integer >= warmup ({warmup}), got {max_warmup!r}"
            )
        if probe_threshold is not None:
            probe_threshold = check_score(probe_threshold, "probe_threshold")
        self.shift = float(shift)
        self.slacks = tuple(self.shift * f for f in _SLACK_FACTORS)
        self.slack = self.slacks[0]
        self.score_fn = check_score_fn(score_fn)
        self.warmup = warmup
        self.max_warmup = max_warmup
        self.false_trips_per_million = check_false_trips(false_trips_per_million)
        self.bound = bound
        self.head_start = float(head_start)
        self._probe_threshold = probe_threshold
        self._probe_default: float | None = None
        self.baseline: float | None = None
        self.variance: float | None = None
        self.sample_mean: float | None = None  # the estimate before it was made conservative
        self.transform = transform
        self.ranks: list[float] | None = None  # sorted known-good scores, in rank mode
        self.rank_shift = math.nan
        self.cusum_on_ranks: tuple[bool, ...] = ()
        self.cusum_on_low: tuple[bool, ...] = ()
        self._plan: tuple[tuple[int, float, float, float], ...] = ()
        self.low_threshold: float | None = None  # the low lane's line (None: no low lane)
        self._fail_share = self._fail_gap = math.nan  # the failure lane's sample share, step
        self.cusum_centres: tuple[float, ...] = ()
        self.cusum_slacks: tuple[float, ...] = ()
        self.cusum_variances: tuple[float, ...] = ()
        self.thetas: tuple[float, ...] = ()
        self.hs: tuple[float, ...] = ()
        self.statistics: list[float] = [0.0] * len(self.slacks)
        self.theta = self.h = math.nan
        self.reference_mean: float | None = None
        self._live_sum = 0.0
        self._live_count = 0
        self._warned = False
        self._learned: list[float] = []
        self._learned_sum = 0.0
        self._learned_sq = 0.0
        self._learned_mixed = False  # a score strictly between 0 and 1 was seen
        if mean is not None and std is not None:
            m = check_score(mean, "mean")
            var = _check_std(std) ** 2
            self._set_baseline(m, m, var, [_Lane(False, m, self.slacks, var, None)])

    # ------------------------------------------------------------ baseline

    def _set_baseline(
        self,
        mean: float,
        sample_mean: float,
        variance: float,
        lanes: list[_Lane],
        probe: float | None = None,
        count: int | None = None,
    ) -> None:
        """Install a baseline: the raw conservative ``mean``, the ``sample_mean`` and the
        ``variance`` of the scores (probes, reports), and the CUSUMs of each lane; ``count``
        known-good scores behind the lanes' samples (None: no sample, the analytic bound)."""
        self.baseline = mean
        self.sample_mean = sample_mean
        self.variance = max(variance, 1e-12)
        if probe is None:
            probe = max(0.0, sample_mean - 2.33 * math.sqrt(variance))
        self._probe_default = probe
        budget = self.false_trips_per_million / sum(len(lane.slacks) for lane in lanes)
        on_ranks, on_low, centres, slacks, variances, thetas, hs = [], [], [], [], [], [], []
        nats, lane_of = [], []
        for index, lane in enumerate(lanes):
            for slack in lane.slacks:
                factor = 1.0
                if lane.sample is not None and self.bound != "bennett":
                    theta = empirical_theta(lane.sample, lane.centre, slack)
                    factor = excursion_factor(lane.sample, lane.centre, slack, theta)
                    factor /= excursion_rarity(lane.sample, lane.centre, slack)
                else:
                    theta = bennett_theta(max(lane.variance, 1e-12), slack)
                on_ranks.append(lane.on_ranks)
                on_low.append(lane.on_low)
                centres.append(lane.centre)
                slacks.append(slack)
                variances.append(max(lane.variance, 1e-12))
                thetas.append(theta)
                lane_of.append(index)
                # theta = inf: scores cannot fall this far below the centre: nothing to detect
                finite = math.isfinite(theta) and factor > 0.0
                nats.append(math.log(PER_MILLION * factor / budget) if finite else math.inf)
                hs.append(max(0.0, nats[-1]) / theta if finite else math.inf)
        if count is not None and count >= _MIN_CALIBRATION and self.bound != "bennett":
            hs = self._calibrated(lanes, lane_of, centres, slacks, thetas, nats, hs, count)
        self.cusum_on_ranks = tuple(on_ranks)
        self.cusum_on_low = tuple(on_low)
        self.cusum_centres = tuple(centres)
        self.cusum_slacks = tuple(slacks)
        self.cusum_variances = tuple(variances)
        self.thetas, self.hs = tuple(thetas), tuple(hs)
        # per CUSUM: which input it reads (0 raw, 1 rank, 2 low), its centre, slack and h
        self._plan = tuple(
            zip(
                [2 if lo else 1 if rk else 0 for lo, rk in zip(on_low, on_ranks, strict=True)],
                centres,
                slacks,
                hs,
                strict=True,
            )
        )
        self.theta, self.h = self.thetas[0], self.hs[0]
        self.statistics = [0.0] * len(hs)
        self._learned = []

    def _calibrated(
        self,
        lanes: list[_Lane],
        lane_of: list[int],
        centres: list[float],
        slacks: list[float],
        thetas: list[float],
        nats: list[float],
        hs: list[float],
        count: int,
    ) -> list[float]:
        """Trip lines calibrated by simulating each CUSUM on its lane's padded sample; never
        above the analytic ``h``.

        The analytic bound (``nats - theta * h`` nats above the CUSUM's share of the budget)
        is 3-10x above the rate measured on a known distribution: it ignores the overshoot
        past ``h`` and what the renewal argument leaves out. So each CUSUM is simulated
        (``_SIM_CHAINS x _SIM_STEPS`` draws from the padded sample) at the ``h`` where the
        bound says ``_SIM_RATE`` per call, and the bound is scaled by the measured share
        ``looseness`` (from an upper Poisson bound on the trips; at most 1), assumed to hold
        at the real ``h`` (the ratio did not grow with ``h`` in simulations from 0.35 to
        0.65 of it). The simulation takes the sample as the truth; an error ``se`` in the
        baseline multiplies the rate by about ``exp((u * se / slope)^2 / 2)`` at ``u = theta
        * h`` (the Gaussian average of ``exp(-theta(e) * h)`` for theta moving by ``theta *
        e / slope``), so ``u`` solves ``u - (u * se / slope)^2 / 2 = nats + ln(looseness /
        _CALIBRATED_SHARE)``: half the budget is left to what the estimate misses. Where
        that ``h`` is above the analytic one the analytic ``h`` stays, as without NumPy.
        Only for ``_MIN_CALIBRATION`` known-good scores or more (a ``fit()`` reference): on
        a live warmup of 1,000-5,000 calls the bound's slack is what covers unlucky
        warmups (docs/benchmarks.md, fourth pass)."""
        sim_nats = math.log(_SIM_RATE * PER_MILLION * sum(len(la.slacks) for la in lanes))
        sim_nats -= math.log(self.false_trips_per_million)
        sim_hs = [
            (nat - sim_nats) / theta if math.isfinite(nat) and nat - sim_nats > 1.0 else math.inf
            for nat, theta in zip(nats, thetas, strict=True)
        ]
        if sim_nats < 1.0 or all(math.isinf(h) for h in sim_hs):
            return hs
        samples = [lane.sample or [lane.centre] for lane in lanes]
        trips = simulated_trips(
            samples,
            centres,
            slacks,
            sim_hs,
            lane_of,
            chains=_SIM_CHAINS,
            steps=_SIM_STEPS,
            seed=count,
        )
        if trips is None:
            return hs
        calls = _SIM_CHAINS * _SIM_STEPS
        out = []
        for i, h in enumerate(hs):
            if math.isinf(sim_hs[i]) or not math.isfinite(h):
                out.append(h)
                continue
            k = trips[i]
            looseness = min(1.0, (k + 2.0 * math.sqrt(k + 1.0) + 2.0) / (calls * _SIM_RATE))
            target = nats[i] + math.log(looseness / _CALIBRATED_SHARE)
            lane = lanes[lane_of[i]]
            slope = theta_slope(lane.sample or [], centres[i], slacks[i], thetas[i])
            if not slope > 0.0 or not math.isfinite(slope):
                out.append(h)
                continue
            spread = math.sqrt(lane.variance / count) / slope
            if spread <= 0.0:
                u = target
            else:
                disc = 1.0 - 2.0 * spread * spread * target
                u = (1.0 - math.sqrt(disc)) / (spread * spread) if disc > 0.0 else nats[i]
            # never below the simulated line: under it the rate was not measured
            out.append(max(sim_hs[i], min(h, u / thetas[i])))
        return out

    def fit(self, scores: Iterable[float]) -> QualityDrift:
        """Seed the healthy baseline from known-good scores (at least 10), e.g. the scores of
        an offline validation run. Live scores are then compared with this reference, and a
        warning is logged when their mean drifts far from it."""
        self._fit(scores)
        self.reference_mean = self.sample_mean
        self._live_sum, self._live_count, self._warned = 0.0, 0, False
        return self

    def _fit(self, scores: Iterable[float]) -> None:
        values = [check_score(s, "fit() score") for s in scores]
        n = len(values)
        if n < 10:
            raise ValueError(f"fit() needs at least 10 known-good scores, got {n}")
        mean = math.fsum(values) / n
        var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
        binary = all(v == 0.0 or v == 1.0 for v in values)
        padded = [*values, 0.0]  # one worst-case score: the sample may miss the low tail
        if binary:
            # pass/fail: pad failures up to a Wilson upper bound on the failure share, so a
            # warmup that saw few failures (or none) cannot promise that failures are rare
            failures = n - round(math.fsum(values))
            upper = _wilson_upper(failures, n, _WILSON_Z)
            var = max(var, upper * (1.0 - upper))
            # all failures (a model stuck at 0): nothing left to pad, and nothing can drop
            extra = max(1, math.ceil((upper * n - failures) / (1.0 - upper))) if upper < 1.0 else 1
            padded = values + [0.0] * extra
        var_up = _variance_upper(var, n)
        raw_baseline = max(0.0, mean - _MARGIN_Z * math.sqrt(var_up / n))
        lanes = []
        self.ranks = None
        self.low_threshold = None
        distinct = len(set(values))
        ranked = self.transform == "rank" or (
            self.transform == "auto" and distinct >= _MIN_DISTINCT_FOR_RANKS
        )
        fail = None
        if self.transform == "auto" and not ranked:
            fail = self._fail_lane(values)
        if fail is not None:
            lanes.append(fail)
        elif self.transform != "rank" or binary or distinct < 2:
            slacks = tuple(self.shift * f for f in _SLACK_FACTORS)
            if ranked and self.transform == "auto":
                # beside ranks, the raw lane only needs small slacks: it is there for drifts
                # too slow for the rank lane and for scores falling below the known range.
                # No slack below ten standard errors of the baseline (the warmup's own rule
                # for its lanes): a small slack would trust a noisy warmup's centre
                scale = max(self.shift, 4.0 * math.sqrt(var_up / n) / _PRECISION)
                slacks = tuple(scale * f for f in _RAW_BESIDE_RANKS)
            lanes.append(_Lane(False, raw_baseline, slacks, var_up, padded))
        if ranked:
            lanes.append(self._rank_lane(values))
            low = self._low_lane(values)
            if low is not None:
                lanes.append(low)
        probe = 0.0 if binary else sorted(values)[int(0.01 * n)]
        self._set_baseline(raw_baseline, mean, var_up, lanes, probe, n)

    def _rank_lane(self, values: list[float]) -> _Lane:
        """CUSUMs on ranks: each live score is replaced by its mid-rank among the known-good
        ones (uniform on [0, 1] for a healthy model, whatever the shape of its scores), so a
        drop among scores piled up near 1 (softmax confidences) counts as much as one in the
        middle. The raw lane catches scores falling to 0 (a rank cannot go below 0)."""
        self.ranks = sorted(values)
        n = len(values)
        units = [self._rank(v) for v in values]
        centre = math.fsum(units) / n
        rank_var = _variance_upper(math.fsum((u - centre) ** 2 for u in units) / (n - 1), n)
        self.rank_shift = self._rank_shift(values, self._rank, centre)
        return _Lane(
            True,
            max(0.0, centre - _MARGIN_Z * math.sqrt(rank_var / n)),
            tuple(self.rank_shift * f for f in _SLACK_FACTORS),
            rank_var,
            [*units, 0.0],  # one worst-case rank: the sample may have missed the low tail
        )

    def _fail_lane(self, values: list[float]) -> _Lane | None:
        """Discrete scores (pass/fail, or a few levels such as TextQuality's): Bernoulli
        likelihood-ratio CUSUMs on the share of scores at the lowest known-good level (the
        "failures"), tuned for that share rising by ``shift`` x 0.5, 1, 2 and 4. Steps of a
        mean CUSUM would count a middle level as a partial failure; the failure share is where
        such scores move. The healthy share is taken at a Wilson upper bound (the sample
        padded with failures up to it), so a warmup that saw few failures cannot promise that
        failures are rare; below 50 failures seen, the mean CUSUMs stay instead."""
        n = len(values)
        line = min(values)
        failures = sum(1 for v in values if v <= line)
        p0 = _wilson_upper(failures, n, _WILSON_Z)
        if failures < _MIN_FAILURES or failures > n // 2:
            # too few failures seen to bound their share tightly (the small slacks of this
            # lane would trust it), or no level rare enough to be one: the mean CUSUMs
            return None
        units = [0.0 if v <= line else 1.0 for v in values]
        extra = max(1, math.ceil((p0 * n - failures) / (1.0 - p0)))
        # every p1 below 1 (capped half way), so all deployments get the same layout
        slacks = tuple(
            _bernoulli_slack(p0, min(p0 + self.shift * f, (1.0 + p0) / 2.0)) for f in _SLACK_FACTORS
        )
        self.low_threshold = line
        passing = [v for v in values if v > line]
        self._fail_gap = math.fsum(passing) / len(passing) - line if passing else 1.0
        self._fail_share = failures / n
        return _Lane(False, 1.0 - p0, slacks, p0 * (1.0 - p0), units + [0.0] * extra, True)

    def _low_lane(self, values: list[float]) -> _Lane | None:
        """CUSUMs on the share of scores at or below the known-good 1st percentile (a
        Bernoulli CUSUM: near-optimal for bursts of scores at the bottom of the range, where
        a CUSUM on the mean or the ranks adds a bounded step per call and drains between
        bursts). The healthy share is taken at a Wilson upper bound (the sample padded with
        low scores up to it), so an unlucky warmup cannot make the line too tight."""
        ranked = sorted(values)
        n = len(ranked)
        line = ranked[int(_LOW_QUANTILE * n)]
        low = bisect_right(ranked, line)
        if low < _MIN_LOW or low > n // 4:
            return None  # too few low scores to bound their share, or a pile-up at the line
        p0 = _wilson_upper(low, n, _LOW_Z)
        units = [0.0 if v <= line else 1.0 for v in values]
        extra = max(1, math.ceil((p0 * n - low) / (1.0 - p0)))
        slacks = []
        for target in _LOW_TARGETS:
            p1 = max(target, 4.0 * p0)
            if p1 >= 1.0:
                continue
            # the Bernoulli likelihood-ratio CUSUM for p0 -> p1, in units of (1 - low)
            k = math.log((1.0 - p0) / (1.0 - p1)) / math.log(p1 * (1.0 - p0) / (p0 * (1.0 - p1)))
            slacks.append(k - p0)
        if not slacks:
            return None
        self.low_threshold = line
        return _Lane(False, 1.0 - p0, tuple(slacks), p0 * (1.0 - p0), units + [0.0] * extra, True)

    def _rank_shift(
        self, values: list[float], rank: Callable[[float], float], centre: float
    ) -> float:
        """The rank drop the rank CUSUMs are tuned around, for a drop of ``shift`` in the mean.

        Two degradations bracket how a mean drop shows in ranks: every score dropping by
        ``shift`` (the most visible) and a share ``shift / mean`` of the scores falling to 0
        (the least visible). The bank spans 8x, from the latter up."""
        n = len(values)
        uniform = centre - math.fsum(rank(max(0.0, v - self.shift)) for v in values) / n
        mean = math.fsum(values) / n
        share = min(1.0, self.shift / mean) if mean > 0.0 else 1.0
        contamination = share * (centre - rank(0.0))
        return min(_RANK_SHIFT_MAX, max(_RANK_SHIFT_MIN, contamination, uniform / 8.0))

    def _rank(self, quality: float) -> float:
        ranked = self.ranks
        assert ranked is not None
        return (bisect_left(ranked, quality) + bisect_right(ranked, quality)) / (2 * len(ranked))

    def refit(self) -> None:
        """Forget the baseline; the next scored calls (``warmup`` or more) teach a new one."""
        self.baseline = self.variance = self.sample_mean = self.reference_mean = None
        self._probe_default = None
        self.ranks = None
        self.cusum_on_ranks = self.cusum_centres = self.cusum_slacks = self.cusum_variances = ()
        self.cusum_on_low = ()
        self._plan = ()
        self.low_threshold = None
        self.thetas = self.hs = ()
        self.theta = self.h = math.nan
        self.statistics = [0.0] * len(self.slacks)
        self._clear_warmup()

    def _clear_warmup(self) -> None:
        self._learned = []
        self._learned_sum = self._learned_sq = 0.0
        self._learned_mixed = False

    @property
    def fitted(self) -> bool:
        return self.baseline is not None

    @property
    def statistic(self) -> float:
        """The first (most sensitive) CUSUM's sum, kept for reading; see ``statistics``."""
        return self.statistics[0]

    @property
    def probe_threshold(self) -> float | None:
        """A half-open probe scoring below this is a failed probe.

        Default: the 1st percentile of the known-good scores (mean - 2.33 std when only those
        were given), so a healthy probe fails about 1 time in 100 and a healed model closes
        within one or two half-open periods. For pass/fail scores no single score is
        implausible for a healthy model (it fails now and then): probes then fail on errors
        only, and a model that is still bad is re-tripped by the head start instead."""
        if self._probe_threshold is not None:
            return self._probe_threshold
        return self._probe_default

    @property
    def reference_drift(self) -> float | None:
        """Live mean minus the ``fit()`` reference mean (None before ``fit`` or live scores)."""
        if self.reference_mean is None or self._live_count == 0:
            return None
        return self._live_sum / self._live_count - self.reference_mean

    def expected_delay(self, drop: float) -> float:
        """About how many scored calls it takes to trip after every score drops by ``drop``.

        Siegmund's approximation of a CUSUM's average run length (it counts the overshoot
        past ``h`` and the walk's restarts at 0), for the conservative centre's offset from
        the sample mean (on ranks: the mean rank the dropped known-good scores would get),
        taken over the bank's CUSUMs (the fastest one trips first)."""
        if self.baseline is None or self.sample_mean is None:
            return math.inf
        dropped_raw = self.sample_mean - drop
        dropped_rank = math.nan
        if self.ranks is not None:
            ranked = self.ranks
            dropped_rank = math.fsum(self._rank(max(0.0, v - drop)) for v in ranked) / len(ranked)
        dropped_low = math.nan
        line = self.low_threshold
        if line is not None and self.ranks is not None:
            ranked = self.ranks
            dropped_low = sum(1 for v in ranked if v - drop > line) / len(ranked)
        elif line is not None:  # the failure lane: the drop made of passing calls failing
            dropped_low = 1.0 - min(1.0, self._fail_share + drop / self._fail_gap)
        best = math.inf
        for on_low, on_ranks, centre, slack, var, h in zip(
            self.cusum_on_low,
            self.cusum_on_ranks,
            self.cusum_centres,
            self.cusum_slacks,
            self.cusum_variances,
            self.hs,
            strict=True,
        ):
            if not math.isfinite(h):
                continue
            sigma = math.sqrt(var)
            dropped = dropped_low if on_low else dropped_rank if on_ranks else dropped_raw
            mu = (centre - dropped - slack) / sigma
            if mu <= 0.0:
                continue  # the drop is within this CUSUM's slack: it never trips on average
            b = h / sigma + 1.166
            best = min(best, (math.exp(-2.0 * mu * b) + 2.0 * mu * b - 1.0) / (2.0 * mu * mu))
        return best

    # ------------------------------------------------------------ condition protocol

    def _score(self, quality: float, now: float) -> bool:
        if self.baseline is None:
            self._learn(quality)
            return False
        if self.reference_mean is not None:
            self._track_reference(quality)
        rank = self._rank(quality) if self.ranks is not None else quality
        line = self.low_threshold
        inputs = (quality, rank, 1.0 if line is None or quality > line else 0.0)
        stats = self.statistics
        tripped = False
        for i, (kind, centre, slack, h) in enumerate(self._plan):
            s = stats[i] + ((centre - inputs[kind]) - slack)
            s = s if s > 0.0 else 0.0
            stats[i] = s
            if s >= h:
                tripped = True
        return tripped

    def _learn(self, quality: float) -> None:
        self._learned.append(quality)
        self._learned_sum += quality
        self._learned_sq += quality * quality
        if 0.0 < quality < 1.0:
            self._learned_mixed = True
        n = len(self._learned)
        if n < self.warmup:
            return
        if n < self.max_warmup and not self._precise_enough(n):
            return
        learned = self._learned
        self._clear_warmup()
        self._fit(learned)

    def _precise_enough(self, n: int) -> bool:
        """Is the warmup's estimate of the baseline tight enough to stop learning?"""
        mean = self._learned_sum / n
        var = max(0.0, (self._learned_sq - n * mean * mean) / (n - 1))
        if not self._learned_mixed:  # pass/fail so far: judge by a bound on the failure share
            failures = n - round(self._learned_sum)
            if failures < _MIN_FAILURES:
                return False  # a rare failure share is only known well once seen a few times
            upper = _wilson_upper(failures, n, _WILSON_Z)
            var = max(var, upper * (1.0 - upper))
            if self.transform == "auto" and not self._share_precise(failures, n):
                return False
        elif self.transform != "none":
            if n % 64:
                return False  # ranked: the rank shift costs a sort; check every 64 calls
            ranked = sorted(self._learned)
            if len(set(ranked)) < _MIN_DISTINCT_FOR_RANKS:
                if self.transform == "auto":
                    failures = bisect_right(ranked, ranked[0])
                    if failures < _MIN_FAILURES:
                        return False  # the failure lane: its share is only known once seen often
                    if not self._share_precise(failures, n):
                        return False
                return math.sqrt(_variance_upper(var, n) / n) <= _PRECISION * self.shift / 2.0
            m = len(ranked)

            def rank(q: float) -> float:
                return (bisect_left(ranked, q) + bisect_right(ranked, q)) / (2 * m)

            rank_shift = self._rank_shift(ranked, rank, 0.5)
            return math.sqrt(_variance_upper(1.0 / 12.0, n) / n) <= _PRECISION * rank_shift
        return math.sqrt(_variance_upper(var, n) / n) <= _PRECISION * self.shift / 2.0

    def _share_precise(self, failures: int, n: int) -> bool:
        """Is the failure share known well enough for the failure lane's smallest slack?

        The lane's Bernoulli slacks are in units of the failure share, and the smallest one
        (``_bernoulli_slack(p0, p0 + shift / 2)``, about 0.022 at a 5% share) is less than
        half the mean lanes' ``shift / 2``: the warmup's own rule (standard error <= 0.1 x
        slack) is applied to it, on the share's standard error ``sqrt(p (1 - p) / n)``. An
        imprecise share is what made this CUSUM overspend: its trip rate grows by about
        ``exp(a^2 / 2)`` for ``a`` nats per standard error of the share (about 3 at a 5% share
        after 2,000 calls), which the Wilson padding (``a / 2``) does not cover. No failure
        lane (more than half failing): nothing to check."""
        if failures > n // 2:
            return True
        p0 = _wilson_upper(failures, n, _WILSON_Z)
        slack = _bernoulli_slack(p0, min(p0 + self.shift / 2.0, (1.0 + p0) / 2.0))
        share = failures / n
        return math.sqrt(share * (1.0 - share) / n) <= _PRECISION * slack

    def _track_reference(self, quality: float) -> None:
        self._live_sum += quality
        self._live_count += 1
        n = self._live_count
        if self._warned or n % self.warmup or self.reference_mean is None:
            return
        live = self._live_sum / n
        sigma = math.sqrt(self.variance or 0.0)
        gap = abs(live - self.reference_mean)
        if gap > max(self.slacks[0], 4.0 * sigma / math.sqrt(n)):
            self._warned = True
            logger.warning(
                "quality_drift: live mean quality %.4g over %d calls is %.3g away from the "
                "fit() reference mean %.4g; the reference may not describe this deployment "
                "(refit() learns a new baseline from live traffic)",
                live,
                n,
                gap,
                self.reference_mean,
            )

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        threshold = self.probe_threshold
        return error is not None or (
            quality is not None and threshold is not None and quality < threshold
        )

    def reset(self) -> None:
        if not self.hs:
            self.statistics = [0.0] * len(self.slacks)
            return
        self.statistics = [self.head_start * h if math.isfinite(h) else 0.0 for h in self.hs]

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


quality_drift = QualityDrift
"""Trip when the quality drifts down by about ``shift`` or more (a CUSUM bank): the default
quality condition, for softmax confidences, embedding scores and pass/fail checks alike (the
class itself: one signature, ``isinstance`` works)."""
