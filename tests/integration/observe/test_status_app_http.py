"""The status app and Prometheus metrics served by a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tripwise import CircuitBreaker, Registry, consecutive_failures
from tripwise.observe import register_metrics, status_app

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served() -> Iterator[tuple[str, Registry]]:
    registry = Registry()
    preg = CollectorRegistry()
    register_metrics(registry, preset="compat", prometheus_registry=preg)
    port = free_port()
    config = uvicorn.Config(
        status_app(registry, metrics_registry=preg),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start the status app on 127.0.0.1")
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}", registry
    server.should_exit = True
    thread.join(10)
    assert not thread.is_alive()


def test_status_endpoints_over_http(served: tuple[str, Registry]) -> None:
    base, registry = served
    breaker = CircuitBreaker(consecutive_failures(1), name="max_gpu", registry=registry)
    breaker.call(lambda: "ok")
    with httpx.Client(base_url=base, timeout=5) as client:
        doc = client.get("/").json()
        assert doc["circuit_breakers"]["max_gpu"]["total_requests"] == 1
        assert client.get("/ready").status_code == 200
        breaker.trip()
        assert client.get("/ready").status_code == 503
        assert client.get("/").json()["circuit_breakers"]["max_gpu"]["state"] == "open"
        metrics = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    state = families["circuit_breaker_state"].samples[0]
    assert state.labels == {"name": "max_gpu"} and state.value == 0.0
    assert families["ml_breaker_latency_ms"].type == "histogram"
