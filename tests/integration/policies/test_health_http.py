"""Background health checks against a real HTTP service: kill, slow down, restart it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import httpx
import pytest

from tripwise import CircuitBreakerOpen, Registry, State
from tripwise.policies import HealthChecker

pytestmark = pytest.mark.integration


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"condition not reached within {timeout}s")


async def test_probes_open_the_breaker_when_the_service_dies_and_half_open_it_on_return(
    services: Any,
) -> None:
    svc = services("ollama")
    registry = Registry()
    checker = HealthChecker(registry=registry, interval=0.05, timeout=0.3, jitter=0.2)
    checker.register_endpoint(svc.url, failure_threshold=2, recovery_timeout_seconds=60)
    breaker = checker.breaker(svc.url)
    async with checker:
        await wait_for(lambda: checker.get_health_status(svc.url).total_probes >= 2)
        assert checker.get_health_status(svc.url).last_probe_ok is True
        assert svc.health_requests >= 2

        svc.kill()  # connection refused from now on
        await wait_for(lambda: breaker.state is State.OPEN)
        assert checker.get_health_status(svc.url).total_requests == 0  # no user hit the error

        svc.start()  # back, long before the 60 s recovery timeout
        await wait_for(lambda: breaker.state is State.HALF_OPEN)
        async with httpx.AsyncClient() as client:

            async def ask() -> httpx.Response:
                r = await client.get(f"{svc.url}/answer/hi")
                r.raise_for_status()
                return r

            response = await checker.acall(svc.url, ask)
        assert response.json()["answer"] == "ollama:hi"
        assert breaker.state is State.CLOSED

        svc.delay = 0.6  # slower than the probe timeout: probes fail, the breaker opens
        await wait_for(lambda: breaker.state is State.OPEN)
        svc.delay = 0.0
        await wait_for(lambda: breaker.state is State.HALF_OPEN)
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("tripwise-health")]
    assert leftover == []


def test_http_probe_reports_unhealthy_status_codes_and_runs_in_a_thread(
    services: Any, wait: Any
) -> None:
    svc = services("cpu")
    checker = HealthChecker(registry=None, interval=0.05, timeout=0.5)
    checker.register_endpoint("cpu", failure_threshold=3, health_url=f"{svc.url}/health")
    before = {t.ident for t in threading.enumerate()}
    checker.start_in_thread()
    try:
        wait(lambda: checker.get_health_status("cpu").last_probe_ok is True)
        svc.mode = "error"  # /health answers 503
        wait(lambda: checker.breaker("cpu").state is State.OPEN)
        summary = checker.get_metrics_summary("cpu")
        assert summary["probe_failures"] >= 3 and summary["last_probe_ok"] is False
    finally:
        checker.stop_thread()
    assert {t.ident for t in threading.enumerate()} <= before  # nothing new left running
    assert not [t for t in threading.enumerate() if t.name == "tripwise-health"]


async def test_on_demand_health_check_without_starting() -> None:
    checker = HealthChecker(registry=None, timeout=0.5)
    checker.register_endpoint("http://127.0.0.1:9")  # discard port: nothing listens
    assert await checker.health_check("http://127.0.0.1:9") is False


def test_http_500_answers_from_a_real_server_count_as_failed_requests(services: Any) -> None:
    svc = services("gpu")
    checker = HealthChecker(registry=None)  # default is_failure: status_code >= 500
    checker.register_endpoint(svc.url, failure_threshold=2)
    with httpx.Client() as client:
        ok = checker.call(svc.url, client.get, f"{svc.url}/answer/hi")
        assert ok.status_code == 200
        svc.mode = "error"  # the server answers HTTP 500, no exception is raised
        first = checker.call(svc.url, client.get, f"{svc.url}/answer/hi")
        assert first.status_code == 500  # the caller still sees the answer
        status = checker.get_health_status(svc.url)
        assert (status.total_requests, status.total_failures) == (2, 1)
        with contextlib.suppress(CircuitBreakerOpen):  # the second 500 opens the breaker
            checker.call(svc.url, client.get, f"{svc.url}/answer/hi")
        assert checker.breaker(svc.url).state is State.OPEN
        served = svc.requests
        with pytest.raises(CircuitBreakerOpen):
            checker.call(svc.url, client.get, f"{svc.url}/answer/hi")
        assert svc.requests == served  # an open breaker sends nothing
