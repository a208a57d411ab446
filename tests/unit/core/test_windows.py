"""CountWindow and TimeWindow: running aggregates against a brute-force reference."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwise import Aggregate, CountWindow, TimeWindow

# Dyadic values (k / 1024): every sum and sum of squares below is exact in binary floats.
DYADIC = st.integers(-(2**20), 2**20).map(lambda k: k / 1024)
OBS = st.tuples(st.none() | DYADIC, st.booleans())


def reference_aggregate(held: list[tuple[float | None, bool]]) -> Aggregate:
    values = [v for v, _ in held if v is not None]
    return Aggregate(
        count=len(held),
        flagged=sum(1 for _, f in held if f),
        valued=len(values),
        total=math.fsum(values),
        sum_sq=math.fsum(v * v for v in values),
        min=min(values) if values else None,
        max=max(values) if values else None,
    )


def assert_same(agg: Aggregate, ref: Aggregate) -> None:
    assert (agg.count, agg.flagged, agg.valued) == (ref.count, ref.flagged, ref.valued)
    assert (agg.total, agg.sum_sq, agg.min, agg.max) == (ref.total, ref.sum_sq, ref.min, ref.max)
    assert agg.mean == ref.mean
    assert agg.flag_rate == ref.flag_rate


# ------------------------------------------------------------------ CountWindow


@settings(max_examples=80, deadline=None)
@given(size=st.integers(1, 12), observations=st.lists(OBS, max_size=60))
def test_count_window_matches_reference(size: int, observations: list) -> None:
    window = CountWindow(size)
    for i, (value, flag) in enumerate(observations):
        window.add(value, flag)
        held = observations[max(0, i + 1 - size) : i + 1]
        ref = reference_aggregate(held)
        assert_same(window.aggregate(), ref)
        # the running attributes the conditions read are exact too
        assert (window.count, window.flagged, window.valued) == (ref.count, ref.flagged, ref.valued)
        assert (window.total, window.sum_sq) == (ref.total, ref.sum_sq)
        assert window.full == (ref.count == size)


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 10),
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200),
)
def test_count_window_sums_do_not_drift_on_arbitrary_floats(size: int, values: list) -> None:
    window = CountWindow(size)
    for value in values:
        window.add(value, False)
    held = values[-size:]
    scale = math.fsum(abs(v) for v in values[-2 * size :]) + 1.0
    assert window.total == pytest.approx(math.fsum(held), abs=1e-12 * scale)
    assert window.aggregate().mean == pytest.approx(math.fsum(held) / len(held), abs=1e-12 * scale)


def test_count_window_evicts_the_oldest_observation() -> None:
    window = CountWindow(3)
    for value, flag in [(1.0, True), (2.0, False), (None, True), (4.0, False)]:
        window.add(value, flag)
    agg = window.aggregate()
    assert (agg.count, agg.flagged, agg.valued) == (3, 1, 2)
    assert (agg.total, agg.min, agg.max) == (6.0, 2.0, 4.0)
    assert agg.mean == 3.0
    assert agg.stddev == 1.0
    assert agg.flag_rate == pytest.approx(1 / 3)


def test_count_window_clear_empties_it() -> None:
    window = CountWindow(2, track_histogram=True)
    window.add(5.0, True)
    window.clear()
    agg = window.aggregate()
    assert (agg.count, agg.flagged, agg.valued, agg.total) == (0, 0, 0, 0.0)
    assert agg.mean is None and agg.stddev is None and agg.min is None
    assert agg.flag_rate == 0.0
    assert agg.quantile(0.5) is None


def test_count_window_histogram_follows_evictions() -> None:
    window = CountWindow(4, track_histogram=True)
    for v in [1000.0, 1000.0, 1000.0, 1000.0, 1.0, 2.0, 3.0, 4.0]:
        window.add(v, False)
    agg = window.aggregate()
    assert agg.quantile(1.0) == pytest.approx(4.0, rel=0.01)
    assert agg.quantile(0.5) == pytest.approx(2.0, rel=0.01)


def test_aggregate_without_histogram_refuses_quantiles() -> None:
    window = CountWindow(3)
    window.add(1.0, False)
    with pytest.raises(ValueError, match="track_histogram"):
        window.aggregate().quantile(0.5)


# ------------------------------------------------------------------ TimeWindow


@dataclass
class TimeRef:
    """What a time window of ``buckets`` buckets of ``width`` seconds must hold."""

    width: float
    buckets: int
    head: int | None = None
    held: list[tuple[int, float | None, bool]] | None = None

    def epoch(self, t: float) -> int:
        return math.floor(t / self.width)

    def add(self, value: float | None, flag: bool, t: float) -> bool:
        e = self.epoch(t)
        if self.held is None:
            self.held = []
        if self.head is not None and e <= self.head - self.buckets:
            return False  # older than the window as of the newest time seen
        self.head = e if self.head is None else max(self.head, e)
        self.held.append((e, value, flag))
        return True

    def expire(self, t: float) -> None:
        e = self.epoch(t)
        self.head = e if self.head is None else max(self.head, e)

    def aggregate(self) -> Aggregate:
        if self.head is None or not self.held:
            return reference_aggregate([])
        lo = self.head - self.buckets + 1
        return reference_aggregate([(v, f) for e, v, f in self.held if e >= lo])


# times on a 1/8 s grid, with widths 1/2, 1, 2 or 4 s: floor(t / width) is exact
TIMES = st.integers(0, 400).map(lambda k: 1000.0 + k / 8)


@settings(max_examples=80, deadline=None)
@given(
    buckets=st.sampled_from([1, 2, 3, 4, 8]),
    width=st.sampled_from([0.5, 1.0, 2.0, 4.0]),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("add"), OBS, TIMES),
            st.tuples(st.just("expire"), st.none(), TIMES),
        ),
        max_size=60,
    ),
)
def test_time_window_matches_reference(buckets: int, width: float, steps: list) -> None:
    """Observations arrive in any order; the window keeps the ``buckets`` newest bucket periods
    (relative to the newest time seen) and drops anything older."""
    window = TimeWindow(width * buckets, buckets)
    ref = TimeRef(width, buckets)
    for kind, obs, t in steps:
        if kind == "add":
            value, flag = obs
            assert window.add(value, flag, t) == ref.add(value, flag, t), (value, flag, t)
        else:
            window.expire(t)
            ref.expire(t)
        expected = ref.aggregate()
        assert_same(window.aggregate(), expected)
        assert (window.count, window.flagged, window.valued) == (
            expected.count,
            expected.flagged,
            expected.valued,
        )


def test_time_window_buckets_expire_as_time_passes() -> None:
    window = TimeWindow(10, buckets=5)  # five 2-second buckets
    window.add(1.0, True, 100.0)  # bucket [100, 102)
    window.add(2.0, False, 103.0)  # bucket [102, 104)
    assert window.aggregate(109.9).count == 2  # window holds buckets 100..109
    agg = window.aggregate(110.0)  # bucket [100, 102) left the window
    assert (agg.count, agg.flagged, agg.total) == (1, 0, 2.0)
    assert window.aggregate(114.0).count == 0
    assert window.count == 0


def test_time_window_observation_leaves_between_seconds_minus_width_and_seconds() -> None:
    window = TimeWindow(60, buckets=6)
    window.add(None, True, 1019.0)  # bucket [1010, 1020)
    window.expire(1069.999)
    assert window.count == 1  # 50.999 s later: still in
    window.expire(1070.0)
    assert window.count == 0  # 51 s later: gone (between 50 and 60 s after it was added)


def test_time_window_drops_observations_older_than_the_window() -> None:
    window = TimeWindow(10, buckets=10)
    assert window.add(1.0, False, 200.0) is True
    assert window.add(2.0, False, 195.5) is True  # out of order but inside the window
    assert window.add(3.0, False, 190.9) is False  # too old: bucket 190 left the window
    agg = window.aggregate()
    assert (agg.count, agg.total, agg.min, agg.max) == (2, 3.0, 1.0, 2.0)


def test_time_window_aggregate_of_a_span_and_of_the_previous_period() -> None:
    window = TimeWindow(20, buckets=20)  # 1-second buckets, 20 s of history
    for t in range(100, 110):
        window.add(1.0, True, float(t))  # previous 10 s: failures
    for t in range(110, 120):
        window.add(2.0, False, float(t))  # current 10 s: successes
    current = window.aggregate(119.5, span=10)
    previous = window.aggregate(119.5, span=10, offset=10)
    assert (current.count, current.flagged, current.total) == (10, 0, 20.0)
    assert (previous.count, previous.flagged, previous.total) == (10, 10, 10.0)
    assert window.aggregate(119.5).count == 20


def test_time_window_clear() -> None:
    window = TimeWindow(10, buckets=2, track_histogram=True)
    window.add(3.0, True, 5.0)
    window.clear()
    assert window.aggregate().count == 0
    assert window.add(1.0, False, 0.0) is True  # no memory of the old head time


def test_time_window_histogram_quantiles_cover_the_window_only() -> None:
    window = TimeWindow(4, buckets=4, track_histogram=True)
    for _i in range(100):
        window.add(1000.0, False, 10.0)
    for v in (1.0, 2.0, 3.0, 4.0):
        window.add(v, False, 20.0)  # the 1000s are now 10 s old: out of the window
    agg = window.aggregate()
    assert agg.count == 4
    assert agg.quantile(1.0) == pytest.approx(4.0, rel=0.01)
    assert agg.quantile(0.25) == pytest.approx(1.0, rel=0.01)


def test_time_window_stddev_and_mean() -> None:
    window = TimeWindow(10, buckets=10)
    for t, v in enumerate([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]):
        window.add(v, False, float(t))
    agg = window.aggregate()
    assert agg.mean == 5.0
    assert agg.stddev == 2.0


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "3", None])
def test_count_window_rejects_bad_sizes(size: object) -> None:
    with pytest.raises(ValueError, match=r"(window|size).*>= 1"):
        CountWindow(size)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", [0, -5, math.nan, math.inf])
def test_time_window_rejects_bad_seconds(seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds"):
        TimeWindow(seconds)


@pytest.mark.parametrize("seconds", ["60", None, True])
def test_time_window_rejects_non_numbers(seconds: object) -> None:
    with pytest.raises(TypeError, match="seconds"):
        TimeWindow(seconds)  # type: ignore[arg-type]


@pytest.mark.parametrize("buckets", [0, -1, 2.5, True])
def test_time_window_rejects_bad_buckets(buckets: object) -> None:
    with pytest.raises(ValueError, match="buckets"):
        TimeWindow(10, buckets)  # type: ignore[arg-type]
