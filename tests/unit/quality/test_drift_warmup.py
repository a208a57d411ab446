"""quality_drift's learned baseline: warmups that cannot be unlucky, seeded references,
ranked scores, and expected_delay() checked against simulation."""

from __future__ import annotations

import logging
import math
import random

import pytest

from tripwise import CircuitBreaker, FakeClock, State
from tripwise.quality import QualityDrift, quality_drift, report_quality


def bernoulli(seed: int, fail: float, n: int) -> list[float]:
    rng = random.Random(seed)
    return [0.0 if rng.random() < fail else 1.0 for _ in range(n)]


def beta(seed: int, a: float, b: float, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.betavariate(a, b) for _ in range(n)]


def learn(cond: QualityDrift, scores: list[float]) -> int:
    """Feed scores until the condition is fitted; return how many it took."""
    for i, q in enumerate(scores, 1):
        assert not cond.observe(None, 0.0, q, 0.0, i)
        if cond.fitted:
            return i
    raise AssertionError("warmup never ended")


def trips(cond: QualityDrift, scores: list[float]) -> int:
    count = 0
    for i, q in enumerate(scores, 1):
        if cond.observe(None, 0.0, q, 0.0, i):
            count += 1
            cond.statistics = [0.0] * len(cond.hs)
    return count


def first_trip(cond: QualityDrift, scores: list[float]) -> int | None:
    for i, q in enumerate(scores, 1):
        if cond.observe(None, 0.0, q, 0.0, i):
            return i
    return None


# ---------------------------------------------------------------- pass/fail warmups


def test_all_pass_warmup_lasts_until_max_warmup_and_does_not_promise_zero_failures() -> None:
    cond = quality_drift(max_warmup=3000)
    assert learn(cond, [1.0] * 5000) == 3000
    # the model does fail now and then (1 in 500): an all-pass warmup must not make that a trip
    assert trips(cond, bernoulli(1, 0.002, 200_000)) == 0
    assert cond.theta < 10  # padded with failures: a single failure is not enough evidence


def test_a_warmup_of_only_zero_scores_does_not_raise() -> None:
    # a model stuck at 0 from the start: the failure share's Wilson bound is 1, nothing to pad
    # (this raised ZeroDivisionError out of observe() on the 200th call); nothing can drop
    cond = quality_drift()
    assert learn(cond, [0.0] * 300) == 200
    assert all(h == math.inf for h in cond.hs)
    assert trips(cond, [0.0] * 1000) == 0
    assert all(h == math.inf for h in QualityDrift().fit([0.0] * 20_000).hs)


def test_tiny_failure_rate_warmup_waits_for_enough_failures() -> None:
    cond = quality_drift()
    n = learn(cond, bernoulli(2, 0.01, 20_000))
    assert 2000 <= n <= 5000  # about 25 failures at 1%, not the 200-call minimum
    assert trips(cond, bernoulli(3, 0.01, 200_000)) == 0


def test_unlucky_pass_fail_warmup_does_not_tighten_the_trip_line() -> None:
    # 2% failures seen while the model really fails 5% of the time (an unlucky sample of the
    # old 200-call warmup): the padded bound keeps false trips within budget on the truth
    lucky = QualityDrift().fit([0.0] * 4 + [1.0] * 196)
    assert lucky.cusum_centres[0] < 0.98
    assert trips(lucky, bernoulli(4, 0.05, 300_000)) <= 1


def test_noisier_scores_need_a_longer_warmup() -> None:
    calm = quality_drift(transform="none")
    noisy = quality_drift(transform="none")
    n_calm = learn(calm, [min(1.0, max(0.0, q)) for q in beta(5, 40.0, 4.0, 20_000)])
    n_noisy = learn(noisy, beta(6, 2.0, 1.0, 20_000))
    assert n_calm == 200  # the minimum is enough for tight scores
    assert n_noisy > 2 * n_calm


def test_learned_baseline_is_conservative_and_survives_reset() -> None:
    cond = quality_drift()
    sample = beta(7, 8.0, 1.0, 20_000)
    n = learn(cond, sample)
    assert cond.baseline is not None and cond.sample_mean is not None
    assert cond.baseline < cond.sample_mean == pytest.approx(sum(sample[:n]) / n)
    cond.reset()
    assert cond.fitted and all(s > 0 for s in cond.statistics)


# ---------------------------------------------------------------- seeded reference


def test_fit_seeds_the_baseline_and_warns_when_live_scores_drift_away(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cond = QualityDrift(warmup=100).fit(beta(8, 4.0, 1.0, 2000))  # reference mean 0.8
    assert cond.fitted and cond.reference_mean == pytest.approx(0.8, abs=0.02)
    with caplog.at_level(logging.WARNING, logger="tripwise.quality"):
        trips(cond, beta(9, 4.0, 1.0, 300))
        assert not caplog.records  # live traffic like the reference: quiet
        trips(cond, beta(10, 30.0, 1.0, 1000))  # the live model is better than the reference
    assert len(caplog.records) == 1
    assert "fit() reference mean" in caplog.records[0].getMessage()
    assert cond.reference_drift is not None and cond.reference_drift > 0.05


def test_refit_forgets_the_reference() -> None:
    cond = QualityDrift().fit(beta(11, 8.0, 1.0, 500))
    cond.refit()
    assert not cond.fitted and cond.reference_mean is None and cond.reference_drift is None


def test_a_large_reference_is_used_whole_and_padded_by_its_own_size() -> None:
    # fit() on an offline validation run: no cap on the sample, and every conservative margin
    # (the centre's standard error, the padded failure share) shrinks as 1 / sqrt(n), so a
    # larger reference buys a tighter baseline instead of being padded like a short warmup
    small, large = beta(41, 8.0, 1.0, 10_000), beta(42, 8.0, 1.0, 40_000)
    fit_small, fit_large = QualityDrift().fit(small), QualityDrift().fit(large)
    assert fit_large.ranks is not None and len(fit_large.ranks) == len(large)
    for fitted in (fit_small, fit_large):
        assert fitted.sample_mean is not None and fitted.baseline is not None
    margin_small = fit_small.sample_mean - fit_small.baseline  # type: ignore[operator]
    margin_large = fit_large.sample_mean - fit_large.baseline  # type: ignore[operator]
    assert 0.0 < margin_large < 0.6 * margin_small  # ~0.5: four times the sample
    pad = []
    for n in (10_000, 40_000):
        sample = bernoulli(43, 0.05, n)
        cond = QualityDrift().fit(sample)
        share = sample.count(0.0) / n
        pad.append((1.0 - cond.cusum_centres[0]) - share)  # the padded failure share's margin
    assert 0.0 < pad[1] < 0.6 * pad[0]


# ---------------------------------------------------------------- ranked scores


def test_ranks_catch_a_drop_among_scores_piled_up_near_one() -> None:
    healthy = [1.0 - 0.05 * q for q in beta(12, 1.0, 3.0, 5000)]  # all within 0.05 of 1
    ranked = QualityDrift().fit(healthy)
    raw = QualityDrift(transform="none").fit(healthy)
    assert ranked.ranks is not None and raw.ranks is None
    degraded = [1.0 - 0.1 * q for q in beta(13, 1.0, 3.0, 5000)]  # mean drop of 0.012
    delay_ranked, delay_raw = first_trip(ranked, degraded), first_trip(raw, degraded)
    assert delay_ranked is not None and delay_ranked < 200
    assert delay_raw is None or delay_raw > 2 * delay_ranked


def test_pass_fail_scores_stay_raw() -> None:
    cond = QualityDrift().fit(bernoulli(14, 0.05, 2000))
    assert cond.ranks is None and not any(cond.cusum_on_ranks)


def test_transform_is_validated() -> None:
    with pytest.raises(ValueError, match="transform must be one of"):
        quality_drift(transform="log")
    with pytest.raises(ValueError, match="max_warmup"):
        quality_drift(warmup=500, max_warmup=100)


# ---------------------------------------------------------------- expected_delay


@pytest.mark.parametrize("drop", [0.1, 0.2])
@pytest.mark.parametrize("transform", ["none", "auto"])
def test_expected_delay_matches_simulation(drop: float, transform: str) -> None:
    reference = beta(15, 8.0, 1.0, 3000)
    cond = QualityDrift(transform=transform).fit(reference)
    delays = []
    for onset in range(120):
        cond.statistics = [0.0] * len(cond.hs)
        stream = [max(0.0, q - drop) for q in beta(100 + onset, 8.0, 1.0, 3000)]
        delay = first_trip(cond, stream)
        assert delay is not None
        delays.append(delay)
    mean_delay = sum(delays) / len(delays)
    predicted = cond.expected_delay(drop)
    assert predicted == pytest.approx(mean_delay, rel=0.25)


@pytest.mark.parametrize("drop", [0.1, 0.2])
def test_expected_delay_matches_simulation_on_the_failure_lane(drop: float) -> None:
    cond = QualityDrift().fit(bernoulli(21, 0.05, 3000))
    assert all(cond.cusum_on_low)
    delays = []
    for onset in range(120):
        cond.statistics = [0.0] * len(cond.hs)
        delay = first_trip(cond, bernoulli(200 + onset, 0.05 + drop, 5000))
        assert delay is not None
        delays.append(delay)
    assert cond.expected_delay(drop) == pytest.approx(sum(delays) / len(delays), rel=0.25)


def test_expected_delay_is_infinite_within_the_slack_or_unfitted() -> None:
    assert quality_drift().expected_delay(0.2) == math.inf
    cond = quality_drift(mean=0.9, std=0.05)
    assert cond.expected_delay(0.01) == math.inf
    assert cond.expected_delay(0.2) < cond.expected_delay(0.1) < math.inf


# ---------------------------------------------------------------- in a breaker


def test_no_retrip_loop_after_a_pass_fail_model_heals() -> None:
    clock = FakeClock()
    rng = random.Random(16)
    fail = [0.05]

    def model() -> str:
        report_quality(0.0 if rng.random() < fail[0] else 1.0)
        return "model"

    breaker = CircuitBreaker(
        quality_drift(),
        fallback=lambda: "fallback",
        half_open_after=30,
        recovery_threshold=3,
        clock=clock,
        registry=None,
    )

    def run(n: int) -> None:
        for _ in range(n):
            breaker.call(model)
            clock.advance(0.1)

    run(8000)  # warmup (about 25 failures' worth) and healthy traffic
    assert breaker.trip_count == 0
    fail[0] = 0.4
    run(600)
    assert breaker.trip_count >= 1
    fail[0] = 0.05
    run(900)  # at most two 30 s open periods until it closes
    assert breaker.state is State.CLOSED
    tripped = breaker.trip_count
    run(20_000)
    assert breaker.trip_count == tripped


def test_probe_threshold_lets_healthy_probes_pass() -> None:
    continuous = QualityDrift().fit(beta(17, 8.0, 1.0, 5000))
    live = beta(18, 8.0, 1.0, 20_000)
    threshold = continuous.probe_threshold
    assert threshold is not None
    assert sum(q < threshold for q in live) / len(live) == pytest.approx(0.01, abs=0.005)
    # pass/fail: a healthy model fails now and then, so one failed check is no evidence;
    # probes fail on errors only and the head start re-trips a model that is still bad
    binary = QualityDrift().fit(bernoulli(19, 0.05, 2000))
    assert binary.probe_threshold == 0.0
    assert not binary.judge(None, 0.0, 0.0) and binary.judge(RuntimeError(), 0.0, None)
    assert quality_drift(mean=0.9, std=0.05).probe_threshold == pytest.approx(0.9 - 2.33 * 0.05)
    assert quality_drift(probe_threshold=0.5).probe_threshold == 0.5


def test_pure_python_fit_matches_the_numpy_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import tripwise.quality._stats as stats

    sample = beta(20, 8.0, 1.0, 3000)
    with_numpy = QualityDrift().fit(sample)
    monkeypatch.setattr(stats, "_np", None)
    pure = QualityDrift().fit(sample)
    assert pure.hs == pytest.approx(with_numpy.hs, rel=1e-9)
    assert pure.thetas == pytest.approx(with_numpy.thetas, rel=1e-9)


def test_low_lane_catches_bursts_of_floor_scores_within_the_first_burst() -> None:
    # calibrated scores (uniform when healthy, like StandardizedDistance); the first 30 calls
    # of every 100 are bursts in which half the scores sit at the floor (zero vectors). Without
    # the low lane a quarter of these deployments needed two to five bursts.
    delays = []
    for seed in range(20):
        rng = random.Random(seed)
        cond = QualityDrift().fit([rng.random() for _ in range(2000)])
        assert cond.low_threshold is not None and any(cond.cusum_on_low)
        assert 0.005 < cond.low_threshold < 0.02  # the known-good 1st percentile
        stream = [
            0.001 if i % 100 < 30 and rng.random() < 0.5 else rng.random() for i in range(3000)
        ]
        delays.append(first_trip(cond, stream))
    assert all(d is not None and d <= 30 for d in delays), delays


def test_low_lane_stays_quiet_on_an_occasional_floor_score() -> None:
    # one score at 0 every 50 calls (2%, twice the known-good share at the line) is no burst:
    # the low lane never reaches its line (the raw lane's shift/4 CUSUM may, slowly: 2% of
    # calls at 0 is a lasting mean drop of 0.018); one in 100 trips nothing at all
    for every in (50, 100):
        cond = QualityDrift().fit(beta(33, 8.0, 1.0, 5000))
        rng = random.Random(34)
        low = [i for i, on_low in enumerate(cond.cusum_on_low) if on_low]
        assert low
        tripped = False
        for i in range(20_000):
            q = 0.0 if i % every == 0 else rng.betavariate(8.0, 1.0)
            tripped |= cond.observe(None, 0.0, q, 0.0, i)
            assert all(cond.statistics[j] < cond.hs[j] for j in low)
        if every == 100:
            assert not tripped


def test_raw_scores_have_no_low_lane() -> None:
    raw = QualityDrift(transform="none").fit(beta(36, 8.0, 1.0, 2000))
    assert raw.low_threshold is None and not any(raw.cusum_on_low)
    binary = QualityDrift(transform="none").fit(bernoulli(35, 0.05, 2000))
    assert binary.low_threshold is None and not any(binary.cusum_on_low)


def levels(seed: int, fail: float, middle: float, n: int) -> list[float]:
    """TextQuality-like scores: 0 (failed), 0.83 (a soft problem) or 1."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r = rng.random()
        out.append(0.0 if r < fail else 0.83 if r < fail + middle else 1.0)
    return out


def test_discrete_scores_get_a_failure_lane_on_their_lowest_level() -> None:
    for healthy in (bernoulli(35, 0.05, 2000), levels(37, 0.05, 0.2, 2000)):
        cond = QualityDrift().fit(healthy)
        assert cond.low_threshold == 0.0 and all(cond.cusum_on_low) and len(cond.hs) == 4
        # the Bernoulli likelihood-ratio CUSUMs: smallest slack for the smallest rise
        assert list(cond.cusum_slacks) == sorted(cond.cusum_slacks)
        share = healthy.count(0.0) / len(healthy)
        assert 0.9 < cond.cusum_centres[0] < 1.0 - share  # 1 - an upper bound on the share


def test_failure_lane_ignores_the_middle_level_and_catches_more_failures() -> None:
    cond = QualityDrift().fit(levels(38, 0.05, 0.2, 3000))
    # many more soft problems but no more failures: the failure share is what the lane reads
    assert first_trip(cond, levels(39, 0.05, 0.6, 20_000)) is None
    cond.statistics = [0.0] * len(cond.hs)
    delay = first_trip(cond, levels(40, 0.15, 0.2, 5000))  # failures 5% -> 15%
    assert delay is not None and delay < 400


def test_few_failures_seen_keep_the_mean_cusums() -> None:
    # a failure share known from fewer than 50 failures is too loose for the failure lane's
    # small slacks: an all-pass or nearly all-pass sample keeps the mean CUSUM bank
    for sample in ([1.0] * 3000, [0.0] * 20 + [1.0] * 2000):
        cond = QualityDrift().fit(sample)
        assert cond.low_threshold is None and not any(cond.cusum_on_low)


def test_unlucky_continuous_warmup_does_not_tighten_the_low_line() -> None:
    # a warmup that missed the low tail: the lowest 1.5% of 2,000 healthy scores cut away, so
    # 1% of the sample but 2.4% of live healthy scores sit at or below the low line (a warmup
    # about 1 in 100,000 draws). Taken at face value, that share trips 3 times in 200,000
    # healthy calls; the Wilson bound keeps it to at most one.
    rng = random.Random(41)
    sample = sorted(rng.random() for _ in range(2000))[30:]
    cond = QualityDrift().fit(sample)
    assert cond.low_threshold is not None and cond.low_threshold > 0.02
    assert trips(cond, [rng.random() for _ in range(200_000)]) <= 1
