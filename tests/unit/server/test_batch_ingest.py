"""Bulk ingest: the columnar fast path, the per-sample path and one add per sample agree."""

from __future__ import annotations

import math
import random
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="needs tripwise[server]")

from tests.unit.server.test_breaker_runtime import T0, make
from tripwise.server.evaluator.batch import _group_slow, group_samples
from tripwise.server.evaluator.breaker import KINDS, BreakerRuntime
from tripwise.server.evaluator.failure_run import FailureRun
from tripwise.server.evaluator.projects import ProjectRuntime, RouterRuntime

NOW = T0 + 60_000


def samples(n: int, seed: int = 1, **fixed: Any) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = {
            "router_id": rng.choice(["r1", "r2"]),
            "metric": rng.choice(["latency", "score"]),
            "ts_ms": NOW - rng.randrange(30_000),
            "value": rng.lognormvariate(3, 1),
            "ok": rng.random() > 0.2,
        }
        s.update(fixed)
        out.append(s)
    return out


def project(kinds: tuple[str, ...] = KINDS) -> ProjectRuntime:
    p = ProjectRuntime(
        SimpleNamespace(id="p1", org_id="o", name="p", enable_signed_ingest=False, ingest_secret="")
    )
    for i, kind in enumerate(kinds):
        b = make(id=f"b{i}", kind=kind, metric="latency", window_ms=20_000)
        p.breakers[b.id] = b
    p.routers["r1"] = RouterRuntime("r1", "main", True, set(p.breakers))
    return p


def test_fast_and_slow_paths_group_a_valid_batch_alike() -> None:
    batch = samples(300)
    rejected: Counter[str] = Counter()
    assert group_samples(batch, NOW, rejected) == _group_slow(batch, NOW, rejected)
    assert not rejected


def test_bad_samples_are_counted_by_reason_and_the_rest_kept() -> None:
    batch = samples(10, router_id="r1", metric="latency")
    batch += [
        "not an object",
        {"router_id": "", "metric": "m", "ts_ms": NOW, "value": 1.0, "ok": True},
        {"router_id": "r1", "metric": "latency", "ts_ms": NOW, "value": float("nan"), "ok": True},
        {"router_id": "r1", "metric": "latency", "ts_ms": NOW, "value": 10**400, "ok": True},
        {"router_id": "r1", "metric": "latency", "ts_ms": "soon", "value": 1.0, "ok": True},
        {"router_id": "r1", "metric": "latency", "ts_ms": NOW, "value": 1.0, "ok": "yes"},
        {"router_id": "r1", "metric": "latency", "ts_ms": NOW + 10**7, "value": 1.0, "ok": True},
        {"router_id": "r1", "metric": "latency", "ts_ms": NOW + 1_000, "value": 2, "ok": False},
    ]
    rejected: Counter[str] = Counter()
    groups = group_samples(batch, NOW, rejected)
    assert rejected == {
        "invalid_sample": 1,
        "invalid_router_id": 1,
        "invalid_value": 2,
        "invalid_ts_ms": 1,
        "invalid_ok": 1,
        "ts_ms_in_future": 1,
    }
    tss, values, oks = groups[("r1", "latency")]
    assert len(tss) == 11
    assert (tss[-1], values[-1], oks[-1]) == (NOW, 2.0, False)  # skew clamped, int as float


@pytest.mark.parametrize("kind", KINDS)
def test_bulk_ingest_measures_like_one_add_per_sample(kind: str) -> None:
    bulk = project((kind,))
    one = make(id="x", kind=kind, metric="latency", window_ms=20_000)
    batch = samples(400, seed=7)
    for start in range(0, 400, 100):  # four batches, several buckets each
        rejected: Counter[str] = Counter()
        bulk.ingest(batch[start : start + 100], NOW, rejected)
        assert rejected["unknown_router"] == sum(
            s["router_id"] == "r2" for s in batch[start : start + 100]
        )
    for s in sorted(batch, key=lambda s: s["ts_ms"]):
        if s["router_id"] == "r1" and s["metric"] == "latency":
            one.add(s["value"], s["ok"], s["ts_ms"])
    b: BreakerRuntime = bulk.breakers["b0"]
    value, count = b.measure(NOW)
    expected, expected_count = one.measure(NOW)
    assert count == expected_count
    assert expected is not None and count > 0
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_consecutive_failures_orders_samples_by_timestamp() -> None:
    run = FailureRun()
    run.add(1_000, False)
    run.add(3_000, False)
    run.add(2_000, True)  # arrives late, stamped between the failures: ends the first one only
    assert run.length(3_000, 10_000) == 1
    run.add(500, True)  # older than the latest success: changes nothing
    run.add(1_500, False)  # a failure stamped before the latest success: not in the run
    assert run.length(3_000, 10_000) == 1
    run.add_many([4_000, 5_000, 6_000], [False, False, False])
    assert run.length(6_000, 10_000) == 4
    assert run.length(14_500, 10_000) == 2  # 3_000 and 4_000 left the window
    run.add_many([7_000, 8_000], [True, True])
    assert run.length(8_000, 10_000) == 0


def test_consecutive_failures_breaker_counts_the_trailing_run() -> None:
    b = make(kind="consecutive_failures", threshold=2, op="gte")
    b.add(1.0, False, T0 + 10)
    b.add(1.0, False, T0 + 30)
    b.add(1.0, True, T0 + 20)  # late success between them
    assert b.measure(T0 + 40)[0] == 1.0
    b.add(1.0, False, T0 + 40)
    assert b.measure(T0 + 40)[0] == 2.0
    change = b.evaluate(T0 + 50)
    assert change is not None and change.to_state == "open"


def test_bucket_summaries_stay_finite_for_values_validation_would_refuse() -> None:
    # ingest refuses |value| > MAX_ABS_VALUE; should a huge value ever get through, the
    # summary is the core's overflow-safe aggregate (held at ±VALUE_LIMIT), never inf or nan
    from tripwise.core.histogram import VALUE_LIMIT
    from tripwise.server.evaluator.batch import summarize

    values = [1e300, 1e300, -1e308, 2.0]
    ((_, agg),) = summarize([NOW] * 4, values, [True, False, True, True], 60.0, True, True)
    assert agg.histogram is not None and agg.histogram.count == 4
    assert (agg.count, agg.flagged, agg.valued) == (4, 1, 4)
    assert (agg.min, agg.max) == (-VALUE_LIMIT, VALUE_LIMIT)
    assert agg.total == VALUE_LIMIT + 2.0 and agg.sum_sq == 3 * VALUE_LIMIT**2 + 4.0
    assert agg.stddev is not None and math.isfinite(agg.stddev)
