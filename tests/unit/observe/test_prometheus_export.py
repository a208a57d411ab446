"""Prometheus exposition, checked with prometheus-client's own text parser."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    Registry,
    consecutive_failures,
    report_quality,
)
from tripwise.observe import PrometheusMetrics, register_metrics
from tripwise.policies import DegradedTier, FallbackChain, Tier


def scrape(preg: CollectorRegistry) -> dict[str, Any]:
    """{family name: family} from the text exposition."""
    text = generate_latest(preg).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(family: Any, suffix: str = "", **labels: str) -> float:
    for s in family.samples:
        if s.name == family.name + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no sample {family.name}{suffix} {labels} in {family.samples}")


def traffic(registry: Registry, clock: FakeClock) -> CircuitBreaker:
    breaker = CircuitBreaker(
        consecutive_failures(2),
        name="ranker",
        clock=clock,
        registry=registry,
        track_latency=True,
        require_quality_signal=True,
    )

    @breaker
    def call(ok: bool, score: float) -> str:
        clock.advance(0.030)
        report_quality(score)
        if not ok:
            raise ConnectionError
        return "x"

    return breaker, call  # type: ignore[return-value]


def run_traffic(registry: Registry, clock: FakeClock) -> CircuitBreaker:
    breaker, call = traffic(registry, clock)  # type: ignore[misc]
    call(True, 0.9)
    call(True, 0.8)
    for _ in range(2):
        with pytest.raises((ConnectionError, CircuitBreakerOpen)):
            call(False, 0.1)
    with pytest.raises(CircuitBreakerOpen):
        call(True, 0.9)  # rejected
    return breaker  # type: ignore[no-any-return]


def test_default_preset_exports_state_trips_outcomes_histograms_and_tier_usage() -> None:
    registry, preg, clock = Registry(), CollectorRegistry(), FakeClock()
    collector = register_metrics(registry, prometheus_registry=preg, prefix="app")
    run_traffic(registry, clock)
    chain = FallbackChain(
        [Tier("primary", lambda: 1 / 0), DegradedTier("sorry")], name="qa", registry=registry
    )
    chain.call()
    families = scrape(preg)
    assert sample(families["app_breaker_state"], name="ranker") == 1.0  # open
    assert sample(families["app_breaker_trips"], "_total", name="ranker") == 1.0
    calls = families["app_breaker_calls"]
    assert sample(calls, "_total", name="ranker", outcome="success") == 2
    assert sample(calls, "_total", name="ranker", outcome="failure") == 2
    assert sample(calls, "_total", name="ranker", outcome="rejected") == 1
    assert sample(calls, "_total", name="ranker", outcome="ignored") == 0
    latency = families["app_breaker_latency_ms"]
    assert latency.type == "histogram"
    assert sample(latency, "_count", name="ranker") == 4
    assert sample(latency, "_sum", name="ranker") == pytest.approx(120.0)
    assert sample(latency, "_bucket", name="ranker", le="50.0") == 4
    quality = families["app_breaker_quality"]
    # Failed calls carry no quality score; the two successes scored 0.9 and 0.8.
    assert sample(quality, "_count", name="ranker") == 2
    assert sample(quality, "_bucket", name="ranker", le="0.8") == 1
    assert sample(quality, "_sum", name="ranker") == pytest.approx(1.7)
    usage = families["app_fallback_tier_usage"]
    assert sample(usage, "_total", chain="qa", tier="degraded") == 1
    assert sample(usage, "_total", chain="qa", tier="primary") == 0
    assert sample(families["app_fallback_tier_failures"], "_total", chain="qa", tier="primary") == 1
    # The chain's default tier breaker was created after registration and is exported too.
    assert sample(families["app_breaker_state"], name="qa.primary") == 0.0
    collector.unregister()
    assert "app_breaker_state" not in scrape(preg)


def test_compat_preset_emits_ml_breaker_and_seed_names() -> None:
    registry, preg, clock = Registry(), CollectorRegistry(), FakeClock()
    register_metrics(registry, prometheus_registry=preg, preset="compat")
    run_traffic(registry, clock)
    chain = FallbackChain(
        [Tier("gpu", lambda: "ok", breaker=False), DegradedTier("d")],
        name="ai",
        registry=registry,
    )
    chain.call()
    families = scrape(preg)
    assert sample(families["ml_breaker_state"], name="ranker") == 1.0
    assert sample(families["ml_breaker_trip"], "_total", name="ranker") == 1
    assert sample(families["ml_breaker_call"], "_total", name="ranker", outcome="rejected") == 1
    assert sample(families["ml_breaker_quality_score"], "_count", name="ranker") == 2
    assert sample(families["ml_breaker_latency_ms"], "_count", name="ranker") == 4
    assert sample(families["circuit_breaker_state"], name="ranker") == 0.0  # 0 = open
    assert sample(families["circuit_breaker_requests"], "_total", name="ranker") == 4
    assert sample(families["circuit_breaker_failures"], "_total", name="ranker") == 2
    usage = families["fallback_chain_tier_usage"]
    assert usage.samples[0].name == "fallback_chain_tier_usage"  # no _total: seed queries work
    assert sample(usage, tier="gpu", chain="ai") == 1
    text = generate_latest(preg).decode()
    for name in (
        "ml_breaker_state",
        "ml_breaker_trip_total",
        "ml_breaker_call_total",
        "ml_breaker_quality_score",
        "ml_breaker_latency_ms",
        "circuit_breaker_state",
        "circuit_breaker_requests_total",
        "circuit_breaker_failures_total",
        'fallback_chain_tier_usage{chain="ai",tier="gpu"}',
    ):
        assert name in text


def test_ml_breaker_entry_point_registers_once() -> None:
    registry, preg = Registry(), CollectorRegistry()
    first = PrometheusMetrics.register(registry, preg)
    assert PrometheusMetrics.register(registry, preg) is first
    CircuitBreaker(name="m", registry=registry)
    assert sample(scrape(preg)["ml_breaker_state"], name="m") == 0.0


def test_without_histograms_breakers_keep_their_lean_path() -> None:
    registry, preg = Registry(), CollectorRegistry()
    breaker = CircuitBreaker(name="lean", registry=registry)
    register_metrics(registry, prometheus_registry=preg, histograms=False)
    assert breaker.path.lean
    assert "tripwise_breaker_latency_ms" not in scrape(preg)


def test_bad_prefix_and_preset_are_rejected() -> None:
    with pytest.raises(ValueError, match="prefix must be a valid Prometheus"):
        register_metrics(Registry(), prefix="my-app", prometheus_registry=CollectorRegistry())
    with pytest.raises(ValueError, match="preset must be one of"):
        register_metrics(Registry(), preset="ml", prometheus_registry=CollectorRegistry())
