"""Seeded statistical tests of quality_drift's false-trip rate over fresh warmups.

Every deployment learns its own warmup (lucky and unlucky ones alike), then sees healthy
traffic; the trips counted are false trips. The short variants run in the default suite with
a budget loose enough to be measured in a few hundred thousand calls; the ``slow`` variants
(``pytest -m slow``) check the default budget of 1 per million over millions of calls.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tripwise.quality import QualityDrift

Draw = Callable[[random.Random], float]


def pass_fail(fail: float) -> Draw:
    return lambda rng: 0.0 if rng.random() < fail else 1.0


def confidence(rng: random.Random) -> float:
    return rng.betavariate(8.0, 1.0)  # softmax-like: piled up near 1


def false_trips(draw: Draw, budget: float, deployments: int, calls: int, seed: int) -> int:
    rng = random.Random(seed)
    total = 0
    for _ in range(deployments):
        cond = QualityDrift(false_trips_per_million=budget)
        seq = 0
        while not cond.fitted:
            seq += 1
            cond.observe(None, 0.0, draw(rng), 0.0, seq)
        observe = cond.observe
        for i in range(calls):
            if observe(None, 0.0, draw(rng), 0.0, i):
                total += 1
                cond.reset()
    return total


@pytest.mark.parametrize(
    ("seed", "draw"),
    [(1, pass_fail(0.05)), (2, pass_fail(0.01)), (3, confidence)],
    ids=["5% failures", "1% failures", "beta"],
)
def test_false_trips_stay_within_a_loose_budget_over_fresh_warmups(seed: int, draw: Draw) -> None:
    # 300 per million, 20 deployments x 10,000 calls: at most 60 expected
    assert false_trips(draw, 300.0, 20, 10_000, seed=seed) <= 60


def test_no_false_trip_at_the_default_budget_in_a_short_run() -> None:
    assert false_trips(pass_fail(0.05), 1.0, 5, 40_000, seed=3) == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "draw"),
    [(11, pass_fail(0.05)), (12, pass_fail(0.10)), (13, pass_fail(0.005)), (14, confidence)],
    ids=["5% failures", "10% failures", "0.5% failures", "beta"],
)
def test_false_trips_within_one_per_million_over_fresh_warmups(seed: int, draw: Draw) -> None:
    # 50 deployments x 60,000 calls = 3,000,000 healthy calls each: at a true rate of 1 per
    # million, 3 expected; more than 8 happens with probability < 0.4%
    assert false_trips(draw, 1.0, 50, 60_000, seed=seed) <= 8
