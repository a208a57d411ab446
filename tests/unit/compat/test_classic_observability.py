"""Breakers built through the classic APIs are what the seed's operators look at: the snapshot,
readiness, Prometheus (the seed dashboard queries) and the classic stats functions."""

from __future__ import annotations

import gc
import weakref

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tripwise import Registry, default_registry
from tripwise.compat import classic
from tripwise.compat.classic import CircuitBreaker, CircuitBreakerError, CircuitBreakerRegistry
from tripwise.observe import readiness, register_metrics, snapshot, status_app


async def down() -> None:
    raise ConnectionError("max-serve unreachable")


def samples(metrics: CollectorRegistry, name: str) -> dict[str, float]:
    text = generate_latest(metrics).decode()
    return {
        s.labels["name"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


async def test_get_circuit_breaker_is_seen_by_snapshot_readiness_metrics_and_stats() -> None:
    breaker = classic.get_circuit_breaker("max_gpu")  # the seed's default config: 3 failures
    metrics = CollectorRegistry()
    register_metrics(preset="seed", prometheus_registry=metrics)
    assert samples(metrics, "circuit_breaker_state")["max_gpu"] == 1.0  # closed
    assert snapshot()["circuit_breakers"]["max_gpu"]["state"] == "closed"

    for _ in range(3):
        with pytest.raises((ConnectionError, CircuitBreakerError)):
            await breaker.call(down)

    # circuit_breaker_state{name="max_gpu"} == 0 is the seed's "breaker open" alert
    assert samples(metrics, "circuit_breaker_state")["max_gpu"] == 0.0
    assert samples(metrics, "circuit_breaker_failures_total")["max_gpu"] == 3.0
    entry = snapshot()["circuit_breakers"]["max_gpu"]
    assert (entry["state"], entry["total_failures"]) == ("open", 3)
    assert readiness(critical=["max_gpu"]) == {"ready": False, "open": ["max_gpu"], "missing": []}
    stats = classic.get_circuit_stats("max_gpu")
    assert stats is not None and stats["total_failures"] == 3 and stats["state"] == "open"
    assert "max_gpu" in classic.get_all_circuit_stats()
    assert classic.get_all_circuit_breakers()["max_gpu"] is breaker

    transport = httpx.ASGITransport(app=status_app(critical=["max_gpu"]))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        ready = await client.get("/ready")
        assert (ready.status_code, ready.json()["open"]) == (503, ["max_gpu"])
        listed = (await client.get("/")).json()["circuit_breakers"]
        assert listed["max_gpu"]["state"] == "open"


def test_decorated_and_constructed_classic_breakers_join_the_registry() -> None:
    @classic.circuit_breaker("classic-visible", failure_threshold=2)
    def call() -> str:
        return "ok"

    assert call() == "ok"
    assert default_registry.find("classic-visible") is call.circuit_breaker.engine  # type: ignore[attr-defined]
    own = Registry()
    breaker = CircuitBreaker(name="payments", registry=own)
    assert own.get("payments") is breaker.engine
    assert default_registry.find("payments") is None
    hidden = CircuitBreaker(name="payments", registry=None)  # opted out: no name clash
    assert hidden.engine.registry is None
    scoped = CircuitBreakerRegistry(registry=own)
    search = scoped.get_or_create("search")
    assert own.get("search") is search.engine


def test_a_taken_name_is_refused_instead_of_hiding_one_breaker() -> None:
    first = CircuitBreaker(name="inventory")
    with pytest.raises(ValueError, match="'inventory' is already registered"):
        CircuitBreaker(name="inventory")
    assert default_registry.get("inventory") is first.engine
    with pytest.raises(TypeError, match="name must be a non-empty string"):
        CircuitBreakerRegistry().get_or_create("")


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "5"])
def test_classic_timeout_must_be_a_finite_positive_number(bad: object) -> None:
    with pytest.raises(ValueError, match="timeout must be a finite number of seconds > 0"):
        CircuitBreaker(timeout=bad, registry=None)  # type: ignore[arg-type]


def test_excluded_exceptions_must_be_exception_classes() -> None:
    with pytest.raises(TypeError, match="excluded_exceptions"):
        CircuitBreaker(excluded_exceptions=[ValueError, "KeyError"], registry=None)  # type: ignore[list-item]


def test_reporting_timeouts_to_the_snapshot_keeps_no_breaker_alive() -> None:
    breaker = CircuitBreaker(timeout=1.0, registry=None)
    engine = weakref.ref(breaker.engine)
    del breaker
    gc.collect()
    assert engine() is None
