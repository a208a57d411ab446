"""Statistical quality conditions on seeded synthetic streams: trip / no trip."""

from __future__ import annotations

import math
import random

import pytest

from tripwise import CircuitBreaker, FakeClock, State, quality_below
from tripwise.quality import (
    QualityDrift,
    low_quality_share_above,
    quality_drift,
    quality_mean_below,
    report_quality,
)
from tripwise.quality._stats import bennett_theta, binomial_critical_count


def feed(cond, scores) -> int | None:
    """Feed scores; return the 1-based index of the first trip (None if it never trips)."""
    for i, q in enumerate(scores, 1):
        if cond.observe(None, 0.0, q, 0.0, i):
            return i
    return None


def count_trips(cond, scores) -> int:
    trips = 0
    for i, q in enumerate(scores, 1):
        if cond.observe(None, 0.0, q, 0.0, i):
            trips += 1
            cond.reset()
    return trips


def beta_stream(seed: int, a: float, b: float, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.betavariate(a, b) for _ in range(n)]


HEALTHY = (8.0, 1.0)  # mean 0.889
DEGRADED = (1.0, 1.0)  # mean 0.5: the model still answers, but badly


# ---------------------------------------------------------------- statistics helpers


def binomial_tail(n: int, p: float, j: int) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(j, n + 1))


def test_binomial_critical_count_matches_exact_tail() -> None:
    for n, p, alpha in [(20, 0.1, 0.05), (50, 0.2, 1e-6), (30, 0.05, 1e-3)]:
        k = binomial_critical_count(n, p, alpha)
        assert binomial_tail(n, p, k) <= alpha < binomial_tail(n, p, k - 1)
    assert binomial_critical_count(10, 0.0, 1e-6) == 1  # any low score is evidence
    assert binomial_critical_count(5, 0.5, 1e-6) == 6  # 5 calls can never be enough


def test_bennett_theta_solves_its_equation() -> None:
    var, slack = 0.02, 0.05
    theta = bennett_theta(var, slack)
    assert var * (math.exp(theta) - 1 - theta) == pytest.approx(theta * slack, rel=1e-6)
    assert bennett_theta(0.0, 0.05) == math.inf


# ---------------------------------------------------------------- quality_mean_below


def test_upper_bounds_match_hand_computed_values() -> None:
    scores = [0.5, 0.7, 0.9, 0.7]  # mean 0.7, sample variance 0.02666...
    n, total, sq = 4, sum(scores), sum(s * s for s in scores)
    var = sum((s - 0.7) ** 2 for s in scores) / 3
    alpha = 1e-3
    z = 3.090232306167813
    normal = quality_mean_below(0.8, false_trips_per_million=1000, min_calls=2, window=4)
    assert normal.upper_bound(n, total, sq) == pytest.approx(0.7 + z * math.sqrt(var / 4))
    hoeff = quality_mean_below(0.8, false_trips_per_million=1000, method="hoeffding")
    assert hoeff.upper_bound(n, total, sq) == pytest.approx(0.7 + math.sqrt(math.log(1e3) / 8))
    bern = quality_mean_below(0.8, false_trips_per_million=1000, method="bernstein")
    l2 = math.log(2 / alpha)
    expected = 0.7 + math.sqrt(2 * var * l2 / 4) + 7 * l2 / 9
    assert bern.upper_bound(n, total, sq) == pytest.approx(expected)


@pytest.mark.parametrize("method", ["normal", "hoeffding", "bernstein"])
def test_mean_bound_holds_on_healthy_stream(method: str) -> None:
    cond = quality_mean_below(0.8, window=50, method=method)
    assert count_trips(cond, beta_stream(1, *HEALTHY, 50_000)) == 0


def test_mean_bound_trips_on_degraded_stream_within_a_window() -> None:
    cond = quality_mean_below(0.8, window=50)
    healthy = beta_stream(2, *HEALTHY, 500)
    assert feed(cond, healthy) is None
    delay = feed(cond, beta_stream(3, *DEGRADED, 200))
    assert delay is not None and delay <= 50


def test_naive_rolling_mean_trips_where_the_bound_does_not() -> None:
    stream = beta_stream(4, *HEALTHY, 20_000)
    assert count_trips(quality_below(0.8, window=20), stream) > 0
    assert count_trips(quality_mean_below(0.8, window=20, min_calls=20), stream) == 0


def test_min_calls_is_respected() -> None:
    cond = quality_mean_below(0.9, window=50, min_calls=30)
    assert feed(cond, [0.0] * 29) is None
    assert feed(cond, [0.0]) == 1


def test_unscored_calls_are_neutral() -> None:
    cond = quality_mean_below(0.9, window=20, min_calls=20)
    for i in range(100):
        assert not cond.observe(RuntimeError("x"), 5.0, None, 0.0, i)
    assert cond.window.valued == 0


def test_mean_bound_validates_parameters() -> None:
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\]"):
        quality_mean_below(1.5)
    with pytest.raises(ValueError, match="false_trips_per_million must be > 0"):
        quality_mean_below(0.8, false_trips_per_million=0)
    with pytest.raises(ValueError, match="method must be one of"):
        quality_mean_below(0.8, method="t")
    with pytest.raises(ValueError, match=r"min_calls must be <= window \(10\)"):
        quality_mean_below(0.8, window=10, min_calls=20)
    with pytest.raises(ValueError, match="min_calls must be an integer >= 2"):
        quality_mean_below(0.8, min_calls=1)
    with pytest.raises(TypeError, match="score_fn must be a callable"):
        quality_mean_below(0.8, score_fn=3)  # type: ignore[arg-type]


def test_time_window_form() -> None:
    cond = quality_mean_below(0.8, window_seconds=10, min_calls=20)
    assert cond.uses_clock
    for i in range(19):  # 19 zeros: below min_calls
        assert not cond.observe(None, 0.0, 0.0, i * 0.01, i)
    scores = beta_stream(5, *HEALTHY, 200)  # 90 s later the zeros have expired
    assert all(not cond.observe(None, 0.0, q, 100 + i * 0.1, i) for i, q in enumerate(scores))


# ---------------------------------------------------------------- low_quality_share_above


def test_share_bound_trips_exactly_at_the_critical_count() -> None:
    cond = low_quality_share_above(0.1, 0.5, window=20, min_calls=20)
    k = cond.critical_count(20)
    assert k == binomial_critical_count(20, 0.1, 1e-6)
    good, bad = [0.9] * (20 - k), [0.1] * k
    assert feed(cond, good + bad[:-1]) is None
    assert feed(cond, bad[-1:]) == 1


def test_share_bound_no_trip_on_healthy_trips_on_degraded() -> None:
    healthy = beta_stream(6, *HEALTHY, 50_000)
    share = sum(q < 0.6 for q in healthy) / len(healthy)  # ~1.7 % below 0.6
    cond = low_quality_share_above(0.05, 0.6, window=50)
    assert share < 0.05
    assert count_trips(cond, healthy) == 0
    cond.reset()
    delay = feed(cond, beta_stream(7, *DEGRADED, 200))
    assert delay is not None and delay <= 50


def test_share_bound_validates_parameters() -> None:
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        low_quality_share_above(1.0, 0.5)
    with pytest.raises(TypeError, match="threshold must be a number"):
        low_quality_share_above(0.1, "0.5")  # type: ignore[arg-type]


# ---------------------------------------------------------------- quality_drift (CUSUM)


def test_drift_learns_baseline_then_stays_quiet_on_healthy_traffic() -> None:
    cond = quality_drift(warmup=200)
    stream = beta_stream(8, *HEALTHY, 100_000)
    assert feed(cond, stream[:199]) is None
    assert not cond.fitted
    assert count_trips(cond, stream[199:]) == 0
    assert cond.fitted
    assert cond.baseline == pytest.approx(8 / 9, abs=0.03)
    assert cond.baseline <= sum(stream[:200]) / 200  # made conservative


def test_drift_trips_on_a_drop_and_delay_matches_the_estimate() -> None:
    cond = QualityDrift(0.1).fit(beta_stream(9, *HEALTHY, 1000))
    assert feed(cond, beta_stream(10, *HEALTHY, 5000)) is None
    drop = 8 / 9 - 2 / 3
    estimate = cond.expected_delay(drop)
    delay = feed(cond, beta_stream(11, 2.0, 1.0, 500))  # mean drops from 0.889 to 0.667
    assert delay is not None
    assert 0.3 * estimate <= delay <= 3 * estimate
    assert delay <= 50


def test_drift_h_follows_false_trip_budget() -> None:
    strict = quality_drift(mean=0.9, std=0.1, false_trips_per_million=0.01)
    loose = quality_drift(mean=0.9, std=0.1, false_trips_per_million=100)
    assert strict.h > loose.h
    # the budget is split over the bank's CUSUMs
    assert math.exp(-strict.theta * strict.h) * 1e6 == pytest.approx(0.01 / len(strict.hs))


def test_drift_false_trips_stay_under_budget_with_a_loose_budget() -> None:
    # a budget of 2,000 per million is measurable in 200k calls: the bound must hold
    cond = quality_drift(0.1, mean=8 / 9, std=math.sqrt(8 / 810), false_trips_per_million=2000)
    trips = count_trips(cond, beta_stream(12, *HEALTHY, 200_000))
    assert trips <= 2000 * 0.2


def test_drift_baseline_survives_reset_with_a_head_start_and_refit_forgets_it() -> None:
    cond = quality_drift(mean=0.9, std=0.05)
    feed(cond, [0.5] * 3)
    assert cond.statistic > 0
    cond.reset()
    assert cond.statistic == pytest.approx(0.5 * cond.h) and cond.baseline == 0.9
    cond.refit()
    assert not cond.fitted and cond.probe_threshold is None and cond.statistic == 0


def test_head_start_retrips_a_still_bad_model_sooner_and_drains_on_a_good_one() -> None:
    sample = beta_stream(14, *HEALTHY, 1000)
    fir = QualityDrift(0.1).fit(sample)
    plain = QualityDrift(0.1, head_start=0.0).fit(sample)
    bad = beta_stream(15, 2.0, 1.0, 500)
    fir.reset()
    plain.reset()
    assert feed(fir, bad) < feed(plain, bad)
    fir.reset()
    feed(fir, beta_stream(16, *HEALTHY, 200))
    assert fir.statistic < 0.1 * fir.h


def test_empirical_bound_trips_faster_than_bennett_with_same_budget() -> None:
    sample = beta_stream(17, *HEALTHY, 1000)
    empirical = QualityDrift(0.1, bound="empirical").fit(sample)
    bennett = QualityDrift(0.1, bound="bennett").fit(sample)
    assert empirical.h < bennett.h
    assert count_trips(empirical, beta_stream(18, *HEALTHY, 100_000)) == 0


def test_a_baseline_too_low_to_drop_never_trips() -> None:
    cond = QualityDrift(0.2).fit([0.05] * 50)
    assert cond.h == math.inf
    assert feed(cond, [0.0] * 100) is None
    cond.reset()
    assert cond.statistic == 0.0


def test_drift_validates_parameters() -> None:
    with pytest.raises(ValueError, match="shift must be"):
        quality_drift(0)
    with pytest.raises(ValueError, match="both mean and std"):
        quality_drift(mean=0.9)
    with pytest.raises(ValueError, match="std of scores"):
        quality_drift(mean=0.9, std=0.7)
    with pytest.raises(ValueError, match="at least 10"):
        QualityDrift().fit([0.9] * 5)
    with pytest.raises(ValueError, match="warmup"):
        quality_drift(warmup=3)
    with pytest.raises(ValueError, match="bound must be one of"):
        quality_drift(bound="gauss")
    with pytest.raises(ValueError, match="needs sample scores"):
        quality_drift(mean=0.9, std=0.1, bound="empirical")
    with pytest.raises(ValueError, match="head_start"):
        quality_drift(head_start=1.0)


# ---------------------------------------------------------------- inside a breaker


def test_breaker_trips_falls_back_and_recovers_on_quality_drift() -> None:
    clock = FakeClock()
    rng = random.Random(13)
    healthy = [True]

    def model() -> str:
        a, b = HEALTHY if healthy[0] else DEGRADED
        report_quality(rng.betavariate(a, b))
        return "model"

    breaker = CircuitBreaker(
        quality_drift(mean=8 / 9, std=0.1),
        fallback=lambda: "fallback",
        half_open_after=10,
        recovery_threshold=3,
        clock=clock,
        registry=None,
    )
    assert all(breaker.call(model) == "model" for _ in range(2000))
    healthy[0] = False
    answers = [breaker.call(model) for _ in range(60)]
    assert breaker.state is State.OPEN
    assert answers.index("fallback") <= 50
    healthy[0] = True
    clock.advance(10)
    for _ in range(3):
        breaker.call(model)
    assert breaker.state is State.CLOSED
