"""quality_drift's trip lines calibrated by simulation when fit() gets a large reference.

The analytic bound on a CUSUM's false trips is several times above the rate a simulation of
the same CUSUM measures; with 10,000 known-good scores or more, ``fit()`` simulates the bank
on its padded sample and lowers each ``h`` by the measured slack (keeping half the budget in
reserve). A live warmup (at most ``max_warmup`` calls) keeps the analytic bound, whose slack
is what covers unlucky warmups. All seeded.
"""

from __future__ import annotations

import math
import random

import pytest

import tripwise.quality._stats as stats
from tripwise.quality import QualityDrift


def beta(seed: int, a: float, b: float, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.betavariate(a, b) for _ in range(n)]


def bernoulli(seed: int, fail: float, n: int) -> list[float]:
    rng = random.Random(seed)
    return [0.0 if rng.random() < fail else 1.0 for _ in range(n)]


def analytic(monkeypatch: pytest.MonkeyPatch, sample: list[float]) -> QualityDrift:
    """The same fit without NumPy: no simulation, the analytic bound."""
    with monkeypatch.context() as patch:
        patch.setattr(stats, "_np", None)
        return QualityDrift().fit(sample)


def trips(cond: QualityDrift, scores: list[float]) -> int:
    count = 0
    for i, q in enumerate(scores, 1):
        if cond.observe(None, 0.0, q, 0.0, i):
            count += 1
            cond.statistics = [0.0] * len(cond.hs)
    return count


@pytest.mark.parametrize(
    ("sample", "lowest"),
    [(beta(1, 8.0, 1.0, 20_000), 0.97), (bernoulli(2, 0.05, 20_000), 1.0 + 1e-9)],
    ids=["softmax-like", "pass/fail"],
)
def test_a_large_reference_never_raises_the_trip_lines_and_lowers_loose_ones(
    monkeypatch: pytest.MonkeyPatch, sample: list[float], lowest: float
) -> None:
    # the Bernoulli walk's bound is already within 2x of its rate: half the budget in
    # reserve leaves nothing to take there; the continuous lanes' bounds are 3-10x loose
    calibrated, bound = QualityDrift().fit(sample), analytic(monkeypatch, sample)
    assert calibrated.thetas == pytest.approx(bound.thetas, rel=1e-9)  # the same CUSUMs
    ratios = [c / b for c, b in zip(calibrated.hs, bound.hs, strict=True)]
    assert max(ratios) <= 1.0 + 1e-9
    assert min(ratios) < lowest


def test_a_live_warmup_keeps_the_analytic_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    sample = beta(3, 8.0, 1.0, 5_000)  # max_warmup's default: a warmup never has more
    assert QualityDrift().fit(sample).hs == pytest.approx(
        analytic(monkeypatch, sample).hs, rel=1e-9
    )


def test_calibration_is_seeded() -> None:
    sample = beta(4, 8.0, 1.0, 12_000)
    assert QualityDrift().fit(sample).hs == QualityDrift().fit(sample).hs


def test_simulated_trips_needs_numpy_and_counts_each_cusum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # one lane of steps +0.5 or -0.5: a CUSUM with h = 0.5 trips on every up-step from 0,
    # one with h = 1e9 never
    counts = stats.simulated_trips(
        [[0.0, 1.0]], [0.5, 0.5], [0.0, 0.0], [0.5, 1e9], [0, 0], chains=100, steps=100
    )
    assert counts is not None and counts[1] == 0 and 2_000 < counts[0] < 5_000
    monkeypatch.setattr(stats, "_np", None)
    assert stats.simulated_trips([[0.0]], [0.5], [0.0], [1.0], [0]) is None


def test_an_unlucky_large_reference_still_keeps_false_trips_near_budget() -> None:
    # 20,000 scores seen at 4.6% failures while the model really fails 5% of the time (a
    # 2-standard-error unlucky reference): at a loose budget of 300 per million the
    # calibrated lines stay within it on the truth (100 expected at most over 300,000 calls)
    rng = random.Random(5)
    failures = 920
    sample = [0.0] * failures + [1.0] * (20_000 - failures)
    rng.shuffle(sample)
    cond = QualityDrift(false_trips_per_million=300.0).fit(sample)
    assert trips(cond, bernoulli(6, 0.05, 300_000)) <= 100


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "make"),
    [
        (21, lambda seed, n: bernoulli(seed, 0.05, n)),
        (22, lambda seed, n: beta(seed, 8.0, 1.0, n)),
    ],
    ids=["5% failures", "beta"],
)
def test_calibrated_references_keep_false_trips_within_one_per_million(seed: int, make) -> None:  # type: ignore[no-untyped-def]
    # 20 deployments, each fitted on its own 20,000-score reference, x 150,000 healthy calls
    # = 3,000,000 calls: at a true rate of 1 per million, 3 expected; > 8 has p < 0.4%
    total = 0
    for d in range(20):
        cond = QualityDrift().fit(make(seed * 100 + d, 20_000))
        total += trips(cond, make(seed * 100 + 50 + d, 150_000))
    assert total <= 8


@pytest.mark.parametrize("budget", [1.0, 30.0, 300.0])
def test_calibrated_lines_stay_above_the_simulated_point(
    monkeypatch: pytest.MonkeyPatch, budget: float
) -> None:
    # the rate is only measured at the h where the bound says 1e-3 per call: a calibrated
    # line never goes below that point, however loose the bound looked there
    sample = beta(7, 8.0, 1.0, 10_000)
    cond = QualityDrift(false_trips_per_million=budget).fit(sample)
    with monkeypatch.context() as patch:
        patch.setattr(stats, "_np", None)
        bound = QualityDrift(false_trips_per_million=budget).fit(sample)
    for h, b, theta in zip(cond.hs, bound.hs, cond.thetas, strict=True):
        assert h > 0.0
        assert h <= b * (1 + 1e-9)
        lowest = b - math.log(1e-3 * 1e6 * len(cond.hs) / budget) / theta
        assert h >= lowest * (1 - 1e-9) or h == pytest.approx(b, rel=1e-9)
