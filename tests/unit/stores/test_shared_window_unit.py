"""The shared window's own logic, without Redis: the fixed flush schedule, and a window that
wraps the condition's TimeWindow and follows the breaker's clock (no sleeping)."""

from __future__ import annotations

import pytest

from tripwise.core.windows import TimeWindow
from tripwise.stores.redis_window import SharedTimeWindow, next_flush


def test_flushes_keep_a_fixed_period_however_long_a_flush_takes() -> None:
    due, period = 100.0, 0.05
    dues = []
    for flush_took in (0.001, 0.03, 0.049, 0.0, 0.02):
        now = due + flush_took  # the flush due at ``due`` ended at ``now``
        due = next_flush(due, period, now)
        dues.append(round(due, 6))
    # The grid never drifts (waiting flush_interval *after* each flush made it 112 ms vs 102).
    assert dues == [100.05, 100.1, 100.15, 100.2, 100.25]


def test_a_late_flush_skips_missed_grid_points_instead_of_bursting() -> None:
    assert next_flush(10.0, 0.05, 10.17) == pytest.approx(10.2)
    assert next_flush(10.0, 0.05, 10.05) == pytest.approx(10.1)


def _window() -> SharedTimeWindow:
    return SharedTimeWindow(TimeWindow(10.0, 10), "ns:{model}:w0-1000")


def test_the_shared_window_wraps_the_conditions_window_and_honours_now() -> None:
    shared = _window()
    assert not isinstance(shared, TimeWindow)
    shared.add(0.5, True, now=1000.0)
    shared.add(None, False, now=1000.5)
    assert (shared.count, shared.flagged, shared.valued, shared.total) == (2, 1, 1, 0.5)
    assert shared.local.count == 2  # the wrapped window got the same outcomes
    # Bucket numbers follow the breaker's clock, not the time the call happened to run at.
    batch, epochs, _ = shared.take()
    assert sum(s[0] for s in batch.values()) == 2
    shared.add(None, True, now=1030.0)  # 30 s later on the breaker's clock
    later, epochs, _ = shared.take()
    assert min(later) - min(batch) == 30  # 1 s buckets: 30 buckets on
    assert max(epochs) == min(later)  # the window's head moved with ``now``


def test_while_redis_is_away_the_window_reports_its_local_outcomes_expired_by_now() -> None:
    shared = _window()
    for i in range(4):
        shared.add(None, i % 2 == 0, now=2000.0)
    batch, _, clears = shared.take()
    shared.settle([100, 60, 0, 0.0, 0.0], batch, clears)  # the fleet: 100 calls, 60 failed
    assert (shared.count, shared.flagged) == (100, 60)
    batch, _, clears = shared.take()
    shared.settle(None, batch, clears)  # Redis failed
    assert (shared.count, shared.flagged) == (4, 2)  # this process's own, exactly
    shared.expire(2020.0)  # they age out with the breaker's clock
    assert shared.count == 0


def test_span_reads_are_refused_with_a_pointer_to_the_local_window() -> None:
    with pytest.raises(ValueError, match=r"window\.local"):
        _window().aggregate(span=5.0)
