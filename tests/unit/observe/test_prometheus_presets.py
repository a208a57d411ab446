"""Several presets side by side, all-or-nothing registration, and the status app's /metrics
serving breaker metrics without an explicit register_metrics()."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tripwise import CircuitBreaker, Registry, consecutive_failures
from tripwise.observe import register_metrics, status_app


def families(text: str) -> list[str]:
    return [f.name for f in text_string_to_metric_families(text)]


def setup() -> tuple[Registry, CollectorRegistry]:
    registry = Registry()
    breaker = CircuitBreaker(consecutive_failures(1), name="max_gpu", registry=registry)
    breaker.call(lambda: "ok")
    return registry, CollectorRegistry()


def test_the_observability_guide_top_to_bottom_default_then_compat() -> None:
    registry, preg = setup()
    register_metrics(registry, prometheus_registry=preg)
    register_metrics(registry, preset="compat", prometheus_registry=preg)
    names = families(generate_latest(preg).decode())
    assert len(names) == len(set(names))  # every family exactly once (stores included)
    for name in ("tripwise_breaker_state", "ml_breaker_state", "circuit_breaker_state"):
        assert name in names
    assert "tripwise_store_available" in names


def test_a_clashing_registration_registers_nothing() -> None:
    registry, preg = setup()
    first = register_metrics(registry, preset="ml_breaker", prometheus_registry=preg)
    before = generate_latest(preg)
    with pytest.raises(ValueError, match=r"preset='compat'.*nothing was registered"):
        register_metrics(registry, preset="compat", prometheus_registry=preg)
    assert generate_latest(preg) == before  # no half-registered seed metrics
    with pytest.raises(ValueError, match="nothing was registered"):
        register_metrics(registry, preset="ml_breaker", prometheus_registry=preg)
    first.unregister()
    register_metrics(registry, preset="compat", prometheus_registry=preg)  # now it fits
    names = families(generate_latest(preg).decode())
    assert "circuit_breaker_state" in names and "ml_breaker_state" in names


def test_store_metrics_move_to_the_next_collector_when_their_exporter_goes() -> None:
    registry, preg = setup()
    default = register_metrics(registry, prometheus_registry=preg)
    register_metrics(registry, preset="seed", prometheus_registry=preg)
    default.unregister()
    names = families(generate_latest(preg).decode())
    assert "tripwise_store_available" in names and "tripwise_breaker_state" not in names


async def get_metrics(app: object) -> str:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def test_status_app_serves_breaker_metrics_without_register_metrics() -> None:
    registry, preg = setup()
    app = status_app(registry, metrics_registry=preg)
    text = await get_metrics(app)
    state = {
        s.labels["name"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "tripwise_breaker_state"
    }
    assert state == {"max_gpu": 0.0}
    register_metrics(registry, prometheus_registry=preg)  # later: served once, not twice
    names = families(await get_metrics(app))
    assert names.count("tripwise_breaker_state") == 1
    assert "tripwise_breaker_latency_ms" in names  # the registered collector's histograms
