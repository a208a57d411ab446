"""Windows stay finite and exact enough under hostile values: 1e308, -1e308, inf, NaN.

Before: two finite 1e308 values in different buckets made ``math.fsum`` in
``TimeWindow._advance`` raise OverflowError on every later advance (a control-plane tick died
for every project), and sums of squares became inf/NaN that never left the window.
Now values beyond ``±VALUE_LIMIT`` are held as ``±VALUE_LIMIT`` and NaN as "no value".
"""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwise import Aggregate, CountWindow, TimeWindow
from tripwise.core.histogram import LogHistogram
from tripwise.core.windows import VALUE_LIMIT, ValueWindow

BIG = 1e308
MAX = 1.7976931348623157e308
HOSTILE = [BIG, -BIG, MAX, -MAX, 1e200, -1e200, 1e141, math.inf, -math.inf, math.nan]
DYADIC = st.integers(-(2**20), 2**20).map(lambda k: k / 1024)
VALUES = st.none() | DYADIC | st.sampled_from(HOSTILE)
OBS = st.tuples(VALUES, st.booleans())


def held_as(value: float | None) -> float | None:
    """What a window must hold for ``value`` (the documented saturation)."""
    if value is None or math.isnan(value):
        return None
    return max(-VALUE_LIMIT, min(VALUE_LIMIT, value))


def reference(observations: list[tuple[float | None, bool]]) -> Aggregate:
    values = [v for v in (held_as(v) for v, _ in observations) if v is not None]
    return Aggregate(
        count=len(observations),
        flagged=sum(1 for _, f in observations if f),
        valued=len(values),
        total=math.fsum(values),
        sum_sq=math.fsum(v * v for v in values),
        min=min(values) if values else None,
        max=max(values) if values else None,
    )


def check_close(agg: Aggregate, ref: Aggregate, observations: list) -> None:
    """Counts and extremes exact; sums finite and within float rounding of the exact sums."""
    assert (agg.count, agg.flagged, agg.valued) == (ref.count, ref.flagged, ref.valued)
    assert (agg.min, agg.max) == (ref.min, ref.max)
    assert math.isfinite(agg.total) and math.isfinite(agg.sum_sq)
    magnitude = math.fsum(abs(v) for v in (held_as(v) for v, _ in observations) if v is not None)
    assert abs(agg.total - ref.total) <= 1e-12 * magnitude + 1e-300
    assert abs(agg.sum_sq - ref.sum_sq) <= 1e-12 * ref.sum_sq + 1e-300
    if agg.valued:
        assert agg.mean is not None and math.isfinite(agg.mean)
        assert agg.stddev is not None and math.isfinite(agg.stddev)


def test_two_huge_values_in_different_buckets_do_not_break_the_time_window() -> None:
    window = TimeWindow(10, buckets=10)
    window.add(BIG, False, 0.5)
    window.add(BIG, False, 1.5)  # a second bucket: the next advance used to raise
    for t in range(2, 30):
        window.add(1.0, False, float(t))  # every advance re-sums the buckets
        agg = window.aggregate()
        assert math.isfinite(agg.total) and math.isfinite(agg.sum_sq)
    # the huge values have left: exact again
    agg = window.aggregate(29.0)
    assert (agg.count, agg.valued, agg.total, agg.sum_sq) == (10, 10, 10.0, 10.0)
    assert (agg.min, agg.max, agg.mean) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("values", [[BIG, -BIG], [BIG, BIG, -BIG], [-MAX, -MAX], [BIG, 1.0]])
def test_huge_values_are_held_at_the_limit_and_counted(values: list[float]) -> None:
    for window in (CountWindow(8), TimeWindow(8, buckets=8)):
        for i, v in enumerate(values):
            assert window.add(v, False, float(i))
        agg = window.aggregate()
        held = [held_as(v) for v in values]
        assert agg.min == min(held) and agg.max == max(held)  # type: ignore[type-var]
        assert agg.total == math.fsum(held)  # type: ignore[arg-type]
        assert window.saturated == sum(1 for v in values if abs(v) > VALUE_LIMIT)


def test_nan_and_inf_never_poison_a_window() -> None:
    window = CountWindow(3)
    window.add(math.nan, True)
    window.add(math.inf, False)
    window.add(-math.inf, False)
    agg = window.aggregate()
    assert (agg.count, agg.flagged, agg.valued) == (3, 1, 2)
    assert (agg.total, agg.mean, agg.min, agg.max) == (0.0, 0.0, -VALUE_LIMIT, VALUE_LIMIT)
    assert (window.dropped, window.saturated) == (1, 2)
    for v in (1.0, 2.0, 3.0):  # the hostile values rotate out
        window.add(v, False)
    assert (window.total, window.sum_sq, window.aggregate().mean) == (6.0, 14.0, 2.0)


def test_a_window_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    window = TimeWindow(10)
    with caplog.at_level(logging.WARNING, logger="tripwise.windows"):
        for t in range(5):
            window.add(BIG, False, float(t))
    assert len(caplog.records) == 1
    assert "1e+140" in caplog.records[0].getMessage()
    assert window.saturated == 5


def test_value_window_saturates_too() -> None:
    window = ValueWindow(2)
    window.add(BIG)
    window.add(BIG)
    assert window.total == 2 * VALUE_LIMIT
    assert window.add(math.nan) is False and window.dropped == 1
    window.add(0.5)
    window.add(0.25)
    assert (window.total, window.aggregate().mean) == (0.75, 0.375)


def test_add_aggregate_saturates_overflowed_summaries_and_refuses_nan() -> None:
    window = TimeWindow(10)
    huge = Aggregate(count=2, valued=2, total=math.inf, sum_sq=math.inf, min=BIG, max=math.inf)
    assert window.add_aggregate(huge, 1.0)
    agg = window.aggregate()
    assert (agg.total, agg.sum_sq) == (2 * VALUE_LIMIT, 2 * VALUE_LIMIT**2)
    assert (agg.min, agg.max) == (VALUE_LIMIT, VALUE_LIMIT)
    with pytest.raises(ValueError, match="NaN"):
        window.add_aggregate(Aggregate(count=1, valued=1, total=math.nan, min=0.0, max=0.0), 1.0)


def test_aggregate_of_raw_samples_is_overflow_safe() -> None:
    agg = Aggregate.of([BIG, BIG, -BIG, None, math.nan], flagged=1, histogram_accuracy=0.01)
    assert (agg.count, agg.flagged, agg.valued) == (5, 1, 3)
    assert agg.total == VALUE_LIMIT
    assert agg.histogram is not None and agg.histogram.count == 3
    window = TimeWindow(10, track_histogram=True)
    window.add_aggregate(agg, 0.0)
    assert window.quantile(1.0) == pytest.approx(VALUE_LIMIT, rel=0.01)


def test_histogram_holds_huge_and_infinite_values_at_the_limit() -> None:
    hist = LogHistogram()
    for v in (BIG, math.inf, -math.inf, 5.0):
        hist.add(v)
    hist.add_many([MAX, 2.0])
    assert hist.count == 6
    assert hist.quantile(1.0) == pytest.approx(VALUE_LIMIT, rel=0.01)
    assert hist.quantile(0.0) == pytest.approx(-VALUE_LIMIT, rel=0.01)
    with pytest.raises(ValueError, match="nan"):
        hist.add(math.nan)


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 8), observations=st.lists(OBS, max_size=50))
def test_count_window_under_hostile_values_matches_reference(size: int, observations) -> None:
    window = CountWindow(size)
    for i, (value, flag) in enumerate(observations):
        window.add(value, flag)
        held = observations[max(0, i + 1 - size) : i + 1]
        ref = reference(held)
        check_close(window.aggregate(), ref, held)
        assert math.isfinite(window.total) and math.isfinite(window.sum_sq)


TIMES = st.integers(0, 200).map(lambda k: 1000.0 + k / 4)


@settings(max_examples=150, deadline=None)
@given(
    buckets=st.sampled_from([1, 2, 4, 8]),
    steps=st.lists(st.tuples(OBS, TIMES), max_size=50),
)
def test_time_window_under_hostile_values_matches_reference(buckets: int, steps) -> None:
    """Brute force: keep every observation with its bucket number, select the window's."""
    width = 1.0
    window = TimeWindow(width * buckets, buckets)
    held: list[tuple[int, float | None, bool]] = []
    head: int | None = None
    for (value, flag), t in steps:
        epoch = math.floor(t / width)
        taken = head is None or epoch > head - buckets
        assert window.add(value, flag, t) == taken
        if taken:
            head = epoch if head is None else max(head, epoch)
            held.append((epoch, value, flag))
        assert head is not None
        inside = [(v, f) for e, v, f in held if e > head - buckets]
        check_close(window.aggregate(), reference(inside), inside)
        assert math.isfinite(window.total) and math.isfinite(window.sum_sq)


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(1, 8),
    hostile=st.lists(st.tuples(st.sampled_from(HOSTILE), st.booleans()), min_size=1, max_size=20),
    clean=st.lists(st.tuples(DYADIC, st.booleans()), min_size=16, max_size=30),
)
def test_once_hostile_values_leave_every_aggregate_is_exact_again(
    size: int, hostile: list, clean: list
) -> None:
    count_window = CountWindow(size)
    time_window = TimeWindow(size, buckets=size)  # 1 s buckets
    t = 0.0
    for value, flag in hostile:
        count_window.add(value, flag)
        time_window.add(value, flag, t)
    for value, flag in clean:
        t += 1.0
        count_window.add(value, flag)
        time_window.add(value, flag, t)
    tail = clean[-size:]
    ref = reference(tail)
    for agg in (count_window.aggregate(), time_window.aggregate()):
        assert (agg.count, agg.flagged, agg.valued) == (ref.count, ref.flagged, ref.valued)
        assert (agg.total, agg.sum_sq, agg.min, agg.max) == (
            ref.total,
            ref.sum_sq,
            ref.min,
            ref.max,
        )
    # a full rotation of clean values re-summed the count window: its running totals are exact
    assert (count_window.total, count_window.sum_sq) == (ref.total, ref.sum_sq)
    assert (time_window.total, time_window.sum_sq) == (ref.total, ref.sum_sq)
