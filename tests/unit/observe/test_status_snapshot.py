"""The /circuit-breakers snapshot, readiness, and the status ASGI app (in process)."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette

from tripwise import CircuitBreaker, FakeClock, Registry, consecutive_failures
from tripwise.observe import readiness, snapshot, status_app
from tripwise.policies import DegradedTier, FallbackChain, Tier


def make_registry() -> tuple[Registry, CircuitBreaker, CircuitBreaker]:
    registry = Registry()
    clock = FakeClock()
    gpu = CircuitBreaker(
        consecutive_failures(2), name="max_gpu", clock=clock, registry=registry, track_latency=True
    )
    cpu = CircuitBreaker(name="ollama_cpu", clock=clock, registry=registry)
    return registry, gpu, cpu


def fail(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Exception):  # noqa: B017 - ConnectionError, then the trip
            breaker.call(lambda: (_ for _ in ()).throw(ConnectionError()))


def test_snapshot_lists_every_breaker_with_counts_rates_and_timestamps() -> None:
    registry, gpu, cpu = make_registry()
    gpu.call(lambda: "ok")
    fail(gpu, 2)
    doc = snapshot(registry)
    json.dumps(doc)  # plain JSON, no special floats
    entry = doc["circuit_breakers"]["max_gpu"]
    assert entry["state"] == "open"
    assert (entry["total_requests"], entry["total_successes"], entry["total_failures"]) == (3, 1, 2)
    assert entry["failure_rate"] == pytest.approx(2 / 3)
    assert entry["trip_count"] == 1
    assert entry["retry_after_seconds"] == pytest.approx(60.0)
    assert entry["opened_at"] is not None and entry["uptime_seconds"] >= 0
    assert entry["avg_latency_ms"] == 0.0  # fake clock: no time passed
    assert doc["circuit_breakers"]["ollama_cpu"]["state"] == "closed"
    assert doc["status"] == "degraded"
    cpu.force_open()
    doc = snapshot(registry)
    assert doc["status"] == "down"
    assert doc["circuit_breakers"]["ollama_cpu"]["retry_after_seconds"] is None  # infinite


def test_snapshot_includes_chains_tier_usage_and_timeouts() -> None:
    registry = Registry()
    chain = FallbackChain(
        [Tier("gpu", lambda: 1 / 0, timeout=5.0), DegradedTier("sorry")],
        name="assistant",
        registry=registry,
    )
    chain.call()
    doc = snapshot(registry)
    tiers = doc["fallback_chains"]["assistant"]
    assert tiers["gpu"]["failures"] == 1 and tiers["degraded"]["usage"] == 1
    assert doc["circuit_breakers"]["assistant.gpu"]["total_timeouts"] == 0


def test_readiness_follows_critical_breakers() -> None:
    registry, gpu, _ = make_registry()
    assert readiness(registry) == {"ready": True, "open": [], "missing": []}
    fail(gpu, 2)
    assert readiness(registry)["open"] == ["max_gpu"]
    assert readiness(registry, critical=["ollama_cpu"])["ready"] is True
    assert readiness(registry, critical=["nope"]) == {
        "ready": False,
        "open": [],
        "missing": ["nope"],
    }
    gpu.disable()
    assert readiness(registry)["ready"] is True


async def test_status_app_serves_snapshot_live_ready_and_metrics() -> None:
    registry, gpu, _ = make_registry()
    app = status_app(registry, critical=["max_gpu"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        doc = (await client.get("/")).json()
        assert set(doc["circuit_breakers"]) == {"max_gpu", "ollama_cpu"}
        assert (await client.get("/ready")).status_code == 200
        fail(gpu, 2)
        ready = await client.get("/ready")
        assert ready.status_code == 503 and ready.json()["open"] == ["max_gpu"]
        live = await client.get("/live")
        assert live.status_code == 200 and live.json()["alive"] is True
        assert (await client.get("/nope")).status_code == 404
        assert (await client.post("/")).status_code == 405
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")


async def test_liveness_fails_only_for_breakers_named_critical_for_it() -> None:
    registry, gpu, _ = make_registry()
    app = status_app(registry, liveness_critical=["max_gpu"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        gpu.force_open()
        live = await client.get("/live")
        assert live.status_code == 503 and live.json() == {"alive": False, "open": ["max_gpu"]}


async def test_mounts_in_one_line_in_a_starlette_app() -> None:
    registry, _, _ = make_registry()
    app = Starlette()
    app.mount("/circuit-breakers", status_app(registry))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        doc = (await client.get("/circuit-breakers/")).json()
        assert "max_gpu" in doc["circuit_breakers"]
        assert (await client.get("/circuit-breakers/ready")).status_code == 200
