"""LogHistogram: quantiles within the promised relative accuracy of the exact nearest rank."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwise import LogHistogram

POSITIVE = st.floats(1e-6, 1e9, allow_nan=False, allow_infinity=False)
SIGNED = st.one_of(POSITIVE, POSITIVE.map(lambda v: -v), st.just(0.0))
QS = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]), st.floats(0.0, 1.0))


def exact_nearest_rank(values: list[float], q: float) -> float:
    """The rank-th smallest value, rank = max(1, ceil(q * n)) (computed as the histogram's
    own formula does, so this test is about the values, not the rank rounding)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def within(estimate: float | None, exact: float, accuracy: float) -> bool:
    assert estimate is not None
    return abs(estimate - exact) <= accuracy * abs(exact) * (1 + 1e-9) + 1e-12


@settings(max_examples=120, deadline=None)
@given(
    values=st.lists(SIGNED, min_size=1, max_size=300),
    q=QS,
    accuracy=st.sampled_from([0.001, 0.01, 0.05]),
)
def test_quantile_within_relative_accuracy_of_exact_nearest_rank(
    values: list[float], q: float, accuracy: float
) -> None:
    hist = LogHistogram(accuracy)
    for v in values:
        hist.add(v)
    assert hist.count == len(values)
    assert within(hist.quantile(q), exact_nearest_rank(values, q), accuracy)


@settings(max_examples=50, deadline=None)
@given(
    kept=st.lists(POSITIVE, min_size=1, max_size=100),
    removed=st.lists(POSITIVE, max_size=100),
    q=QS,
)
def test_remove_undoes_add(kept: list[float], removed: list[float], q: float) -> None:
    hist = LogHistogram(0.01)
    for v in removed + kept:
        hist.add(v)
    for v in removed:
        hist.remove(v)
    assert hist.count == len(kept)
    assert within(hist.quantile(q), exact_nearest_rank(kept, q), 0.01)


@settings(max_examples=50, deadline=None)
@given(
    a=st.lists(SIGNED, max_size=100),
    b=st.lists(SIGNED, max_size=100),
    q=QS,
)
def test_merge_equals_adding_everything(a: list[float], b: list[float], q: float) -> None:
    ha, hb, both = LogHistogram(0.01), LogHistogram(0.01), LogHistogram(0.01)
    for v in a:
        ha.add(v)
        both.add(v)
    for v in b:
        hb.add(v)
        both.add(v)
    ha.merge(hb)
    assert ha.count == both.count
    assert ha.quantile(q) == both.quantile(q)


def test_empty_histogram_has_no_quantile() -> None:
    assert LogHistogram().quantile(0.5) is None


def test_quantiles_of_a_known_distribution() -> None:
    hist = LogHistogram(0.01)
    for v in range(1, 101):  # 1..100 ms
        hist.add(float(v))
    assert hist.quantile(0.5) == pytest.approx(50, rel=0.01)
    assert hist.quantile(0.95) == pytest.approx(95, rel=0.01)
    assert hist.quantile(0.99) == pytest.approx(99, rel=0.01)
    assert hist.quantile(1.0) == pytest.approx(100, rel=0.01)
    assert hist.quantile(0.0) == pytest.approx(1, rel=0.01)


@pytest.mark.parametrize(("q", "n", "rank"), [(0.07, 100, 7), (0.55, 100, 55), (0.1, 30, 3)])
def test_quantile_rank_uses_the_quantile_as_written(q: float, n: int, rank: int) -> None:
    """Nearest rank of ``q`` over ``n`` values is ``ceil(q * n)`` for the q the user wrote:
    p7 of 100 values is the 7th smallest, even though ``0.07 * 100`` is 7.000000000000001 in
    binary floats (latency_quantile_above decides the same quantile exactly)."""
    hist = LogHistogram(0.01)
    for i in range(1, n + 1):
        hist.add(float(i) if i <= rank else 1000.0)  # the rank-th smallest is `rank`
    assert hist.quantile(q) == pytest.approx(rank, rel=0.01)


def test_zero_and_negative_values_have_their_own_buckets() -> None:
    hist = LogHistogram(0.01)
    for v in (-10.0, -1.0, 0.0, 0.0, 1.0, 10.0):
        hist.add(v)
    assert hist.quantile(0.0) == pytest.approx(-10, rel=0.01)
    assert hist.quantile(0.3) == pytest.approx(-1, rel=0.01)
    assert hist.quantile(0.5) == 0.0
    assert hist.quantile(1.0) == pytest.approx(10, rel=0.01)
    hist.remove(0.0, 2)
    assert hist.count == 4


def test_clear() -> None:
    hist = LogHistogram()
    hist.add(3.0, n=5)
    hist.clear()
    assert hist.count == 0
    assert hist.quantile(0.5) is None


def test_merge_refuses_different_accuracies() -> None:
    with pytest.raises(ValueError, match="relative_accuracy"):
        LogHistogram(0.01).merge(LogHistogram(0.02))


@pytest.mark.parametrize("accuracy", [0.0, 1.0, -0.1, 2.0, math.nan])
def test_rejects_bad_relative_accuracy(accuracy: float) -> None:
    with pytest.raises(ValueError, match="relative_accuracy"):
        LogHistogram(accuracy)


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan])
def test_rejects_bad_quantile(q: float) -> None:
    hist = LogHistogram()
    hist.add(1.0)
    with pytest.raises(ValueError, match="q"):
        hist.quantile(q)
