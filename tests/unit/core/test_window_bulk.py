"""TimeWindow bulk adds, window histogram and extremes: same answers as one add per value."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwise import LogHistogram
from tripwise.core.windows import Aggregate, TimeWindow

VALUES = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
OBS = st.lists(st.tuples(st.floats(0.0, 30.0), VALUES, st.booleans()), min_size=1, max_size=120)


def group_aggregate(values: list[float], flags: list[bool]) -> Aggregate:
    hist = LogHistogram()
    hist.add_many(values)
    return Aggregate(
        count=len(values),
        flagged=sum(flags),
        valued=len(values),
        total=math.fsum(values),
        sum_sq=math.fsum(v * v for v in values),
        min=min(values),
        max=max(values),
        histogram=hist,
    )


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=80, deadline=None)
@given(obs=OBS, q=st.sampled_from([0.0, 0.5, 0.95, 0.99, 1.0]))
def test_add_aggregate_per_bucket_equals_one_add_per_value(
    obs: list[tuple[float, float, bool]], q: float
) -> None:
    obs.sort(key=lambda o: o[0])
    one = TimeWindow(10.0, 5, track_histogram=True)
    bulk = TimeWindow(10.0, 5, track_histogram=True, window_histogram=True)
    for t, v, f in obs:
        one.add(v, f, t)
    groups: dict[int, list[tuple[float, float, bool]]] = {}
    for o in obs:
        groups.setdefault(int(o[0] // bulk.width), []).append(o)
    for _, group in sorted(groups.items()):
        agg = group_aggregate([v for _, v, _ in group], [f for _, _, f in group])
        bulk.add_aggregate(agg, group[0][0])
    end = obs[-1][0]
    a, b = one.aggregate(end), bulk.aggregate(end)
    assert (a.count, a.flagged, a.valued) == (b.count, b.flagged, b.valued)
    assert close(a.total, b.total) and close(a.sum_sq, b.sum_sq)
    assert (a.min, a.max) == (b.min, b.max) == bulk.extremes(end)
    assert a.quantile(q) == bulk.quantile(q, end) == one.quantile(q, end)


def test_window_histogram_follows_expiry_and_clear() -> None:
    rng = random.Random(3)
    w = TimeWindow(10.0, 10, track_histogram=True, window_histogram=True)
    for i in range(2000):
        t = i * 0.02
        w.add(rng.lognormvariate(3, 1), False, t)
        if i % 97 == 0:
            assert w.quantile(0.95, t) == w.aggregate(t).quantile(0.95)
    assert w.quantile(0.5, 100.0) is None  # everything expired
    w.add(5.0, False, 101.0)
    w.clear()
    assert w.quantile(0.5) is None and w.count == 0


def test_add_aggregate_refuses_what_is_too_old_and_needs_a_histogram() -> None:
    w = TimeWindow(10.0, 10, track_histogram=True)
    w.add(1.0, False, 100.0)
    assert not w.add_aggregate(Aggregate(count=1, flagged=1), 50.0)
    assert not w.add_aggregate(Aggregate(), 100.0)
    assert w.count == 1
    with pytest.raises(ValueError, match="needs one"):
        w.add_aggregate(Aggregate(count=1, valued=1, total=2.0, min=2.0, max=2.0), 100.0)


def test_window_histogram_requires_bucket_histograms() -> None:
    with pytest.raises(ValueError, match="track_histogram"):
        TimeWindow(10.0, window_histogram=True)


def test_extremes_of_an_empty_window() -> None:
    w = TimeWindow(1.0, 4)
    assert w.extremes(0.0) == (None, None)
    w.add(None, True, 0.0)
    assert w.extremes(0.0) == (None, None)
    w.add(3.0, False, 0.1)
    assert w.extremes(0.2) == (3.0, 3.0)
    assert w.extremes(5.0) == (None, None)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(VALUES, max_size=200), extra=st.lists(VALUES, max_size=50))
def test_histogram_add_many_and_subtract(values: list[float], extra: list[float]) -> None:
    one, bulk = LogHistogram(), LogHistogram()
    for v in values:
        one.add(v)
    bulk.add_many(values)
    assert (one.count, one._pos, one._neg, one._zero) == (
        bulk.count,
        bulk._pos,
        bulk._neg,
        bulk._zero,
    )
    other = LogHistogram()
    other.add_many(extra)
    bulk.merge(other)
    bulk.subtract(other)
    assert (bulk.count, bulk._pos, bulk._neg, bulk._zero) == (
        one.count,
        one._pos,
        one._neg,
        one._zero,
    )


def test_histogram_subtract_refuses_counts_it_does_not_hold() -> None:
    a, b = LogHistogram(), LogHistogram()
    a.add(1.0)
    b.add(1.0, 2)
    with pytest.raises(ValueError, match="does not hold"):
        a.subtract(b)
