"""The server-side breaker state machine, driven with explicit times (no sleeping)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="needs tripwise[server]")

from tripwise.server.evaluator.breaker import BreakerRuntime

T0 = 1_700_000_000_000


def make(**overrides: Any) -> BreakerRuntime:
    row = SimpleNamespace(
        id="b1",
        project_id="p1",
        name="b",
        metric="m",
        kind="avg",
        op="gt",
        threshold=10.0,
        kind_params={},
        window_ms=10_000,
        min_count=1,
        min_state_duration_ms=0,
        cooldown_ms=1_000,
        eval_interval_ms=100,
        half_open_backoff_enabled=True,
        half_open_backoff_cap_ms=10_000,
        half_open_indeterminate_policy="conservative",
        recovery_allow_rate_ramp_steps=4,
        state="closed",
        allow_rate=1.0,
        state_changed_ms=T0,
        rate_changed_ms=T0,
        half_open_failures=0,
        healthy_evals=0,
        override="automatic",
        override_reason=None,
    )
    for k, v in overrides.items():
        setattr(row, k, v)
    return BreakerRuntime(row, now_ms=T0)


def feed(b: BreakerRuntime, values: list[float], ok: bool = True, at: int = T0) -> None:
    for i, v in enumerate(values):
        b.add(v, ok, at + i)


@pytest.mark.parametrize(
    ("kind", "params", "values", "expected"),
    [
        ("avg", {}, [1, 2, 3, 6], 3.0),
        ("max", {}, [1, 7, 3], 7.0),
        ("min", {}, [4, 2, 9], 2.0),
        ("sum", {}, [1, 2, 3], 6.0),
        ("count", {}, [5, 5, 5, 5], 4.0),
        ("stddev", {}, [2, 4, 4, 4, 5, 5, 7, 9], 2.0),
    ],
)
def test_aggregate_kinds(
    kind: str, params: dict[str, Any], values: list[float], expected: float
) -> None:
    b = make(kind=kind, kind_params=params)
    feed(b, values)
    value, count = b.measure(T0 + 100)
    assert count == len(values)
    assert value == pytest.approx(expected)


def test_quantile_kinds_are_nearest_rank_within_one_percent() -> None:
    values = [float(v) for v in range(1, 101)]
    p95 = make(kind="p95")
    feed(p95, values)
    assert p95.measure(T0 + 200)[0] == pytest.approx(95, rel=0.01)
    p50 = make(kind="percentile", kind_params={"percentile": 50})
    feed(p50, values)
    assert p50.measure(T0 + 200)[0] == pytest.approx(50, rel=0.01)


def test_error_rate_and_consecutive_failures_use_ok_flags() -> None:
    er = make(kind="error_rate")
    feed(er, [0, 0, 0], ok=True)
    feed(er, [0], ok=False, at=T0 + 10)
    assert er.measure(T0 + 100)[0] == pytest.approx(0.25)
    cf = make(kind="consecutive_failures")
    feed(cf, [0, 0], ok=False)
    feed(cf, [0], ok=True, at=T0 + 5)
    feed(cf, [0, 0, 0], ok=False, at=T0 + 10)
    assert cf.measure(T0 + 100)[0] == 3.0


def test_delta_compares_current_with_previous_window() -> None:
    b = make(kind="delta", window_ms=1_000)
    feed(b, [10, 10], at=T0)
    feed(b, [30, 30], at=T0 + 1_000)
    assert b.measure(T0 + 1_050)[0] == pytest.approx(20)
    rel = make(kind="delta", window_ms=1_000, kind_params={"mode": "relative"})
    feed(rel, [10], at=T0)
    feed(rel, [15], at=T0 + 1_000)
    assert rel.measure(T0 + 1_050)[0] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("op", "trips"), [("gt", False), ("gte", True), ("lt", False), ("lte", True)]
)
def test_ops_compare_with_threshold(op: str, trips: bool) -> None:
    b = make(op=op, threshold=10.0)
    feed(b, [10.0])
    change = b.evaluate(T0 + 100)
    assert (change is not None and change.to_state == "open") is trips


def test_min_count_makes_small_samples_indeterminate() -> None:
    b = make(min_count=3)
    feed(b, [50, 50])
    assert b.evaluate(T0 + 100) is None
    feed(b, [50], at=T0 + 150)
    change = b.evaluate(T0 + 200)
    assert change is not None and change.to_state == "open"
    assert change.reason == "avg 50 gt 10"


def test_min_state_duration_delays_the_trip() -> None:
    b = make(min_state_duration_ms=5_000)
    feed(b, [50])
    assert b.evaluate(T0 + 100) is None
    assert b.evaluate(T0 + 5_000).to_state == "open"


def test_full_cycle_with_ramp_and_recovery() -> None:
    b = make(recovery_allow_rate_ramp_steps=4)
    feed(b, [50])
    assert b.evaluate(T0 + 100).to_state == "open"
    assert b.evaluate(T0 + 500) is None  # cooldown 1 s not over
    half = b.evaluate(T0 + 1_100)
    assert (half.to_state, half.allow_rate) == ("half_open", pytest.approx(0.2))
    rates = []
    t = T0 + 1_100
    for _ in range(3):
        t += 100
        feed(b, [1.0], at=t - 50)
        c = b.evaluate(t)
        assert c is not None and not c.is_transition
        rates.append(c.allow_rate)
    assert rates == pytest.approx([0.4, 0.6, 0.8])
    t += 100
    feed(b, [1.0], at=t - 50)
    assert b.evaluate(t) is not None  # 4th healthy check: still half-open at 1.0
    t += 100
    feed(b, [1.0], at=t - 50)
    closed = b.evaluate(t)
    assert (closed.from_state, closed.to_state, closed.allow_rate) == ("half_open", "closed", 1.0)


def test_bad_half_open_reopens_with_backoff() -> None:
    b = make(cooldown_ms=1_000, half_open_backoff_cap_ms=3_000)
    feed(b, [50])
    b.evaluate(T0 + 100)
    assert b.evaluate(T0 + 1_100).to_state == "half_open"
    feed(b, [50], at=T0 + 1_150)
    assert b.evaluate(T0 + 1_200).to_state == "open"
    assert b.current_cooldown_ms() == 2_000
    assert b.evaluate(T0 + 3_100) is None  # 1.9 s < 2 s
    assert b.evaluate(T0 + 3_200).to_state == "half_open"
    feed(b, [50], at=T0 + 3_250)
    b.evaluate(T0 + 3_300)
    assert b.current_cooldown_ms() == 3_000  # 4 s capped at 3 s


def test_backoff_disabled_keeps_cooldown() -> None:
    b = make(half_open_backoff_enabled=False, half_open_failures=3)
    assert b.current_cooldown_ms() == 1_000


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("optimistic", "rate"), ("conservative", None), ("pessimistic", "open")],
)
def test_indeterminate_policies_in_half_open(policy: str, expected: str | None) -> None:
    b = make(half_open_indeterminate_policy=policy, min_count=5)
    feed(b, [50] * 5)
    b.evaluate(T0 + 100)
    b.evaluate(T0 + 1_100)
    assert b.state == "half_open"
    change = b.evaluate(T0 + 1_200)  # no samples since half-open began
    if expected is None:
        assert change is None and b.allow_rate == pytest.approx(0.2)
    elif expected == "rate":
        assert change is not None and change.allow_rate == pytest.approx(0.4)
    else:
        assert change is not None and change.to_state == "open"


def test_override_forces_state_and_pauses_evaluation() -> None:
    b = make()
    c = b.apply_override("forced_open", "incident 42", T0 + 10)
    assert (c.to_state, c.reason) == ("open", "manual override: forced_open (incident 42)")
    assert b.evaluate(T0 + 60_000) is None  # no half-open while forced
    c = b.apply_override("forced_closed", "", T0 + 20)
    assert (c.from_state, c.to_state) == ("open", "closed")
    feed(b, [50])
    assert b.evaluate(T0 + 100) is None  # forced closed ignores the samples
    b.apply_override("automatic", "", T0 + 200)
    assert b.evaluate(T0 + 300).to_state == "open"
    with pytest.raises(ValueError, match="override mode"):
        b.apply_override("sideways", "", T0)
