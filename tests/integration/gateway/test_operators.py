"""All-open policies, operator overrides and the admin key, on a real gateway process."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.integration.gateway.conftest import chain_config
from tests.support.fake_llm import Fault

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "Hello"}]
ADMIN = {"Authorization": "Bearer test-admin-key"}


def ask(url: str, stream: bool = False) -> httpx.Response:
    body = {"model": "m", "messages": HELLO, "stream": stream}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=15)


def trip_both(primary, secondary, url: str) -> None:
    primary.default = Fault("status", status=500)
    secondary.default = Fault("status", status=500)
    for _ in range(3):
        ask(url)
    breakers = httpx.get(url + "/circuit-breakers").json()["circuit_breakers"]
    assert breakers["max_gpu"]["state"] == "open"
    assert breakers["ollama_cpu"]["state"] == "open"


def test_all_open_degrade_serves_the_degraded_message(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary, route="when_all_open: degrade"))
    trip_both(primary, secondary, g.url)
    r = ask(g.url)
    assert r.status_code == 200
    assert r.headers["x-tripwise-backend"] == "degraded"
    assert r.headers["x-tripwise-fallback-reason"].startswith(
        "max_gpu=breaker_open, ollama_cpu=breaker_open"
    )


def test_all_open_fail_fast_is_503_with_retry_after(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary, route="when_all_open: fail_fast"))
    trip_both(primary, secondary, g.url)
    calls = len(primary.requests) + len(secondary.requests)
    for stream in (False, True):
        r = ask(g.url, stream=stream)
        assert r.status_code == 503
        assert 1 <= int(r.headers["retry-after"]) <= 30
        assert r.json()["error"]["code"] == "all_backends_open"
    assert len(primary.requests) + len(secondary.requests) == calls


def test_all_open_wait_holds_the_request_for_the_soonest_probe(primary, secondary, gateway) -> None:
    g = gateway(
        chain_config(
            primary,
            secondary,
            route="when_all_open: wait\n    wait_ms: 5000",
            breaker="{failure_threshold: 3, recovery_timeout: 2.0, success_threshold: 1}",
        )
    )
    trip_both(primary, secondary, g.url)
    primary.default = Fault("ok")
    start = time.monotonic()
    r = ask(g.url)
    waited = time.monotonic() - start
    assert r.status_code == 200
    assert r.headers["x-tripwise-backend"] == "max_gpu"  # the probe answered
    assert waited >= 0.5  # it did wait for the half-open probe instead of degrading


def test_wait_longer_than_allowed_fails_fast(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary, route="when_all_open: wait\n    wait_ms: 100"))
    trip_both(primary, secondary, g.url)
    r = ask(g.url)
    assert r.status_code == 503
    assert "retry-after" in r.headers


def test_force_open_with_ttl_then_back_to_normal(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary))
    r = httpx.post(
        g.url + "/circuit-breakers/max_gpu",
        json={"action": "force_open", "reason": "GPU node maintenance", "ttl_seconds": 1},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    assert r.json()["mode"] == "forced_open"
    served = ask(g.url)
    assert served.headers["x-tripwise-backend"] == "ollama_cpu"
    assert served.headers["x-tripwise-fallback-reason"] == "max_gpu=breaker_open"
    status = httpx.get(g.url + "/circuit-breakers").json()
    assert status["circuit_breakers"]["max_gpu"]["override"]["reason"] == "GPU node maintenance"
    assert status["overrides_log"][-1]["action"] == "force_open"
    time.sleep(1.2)
    assert ask(g.url).headers["x-tripwise-backend"] == "max_gpu"
    assert (
        httpx.get(g.url + "/circuit-breakers").json()["circuit_breakers"]["max_gpu"]["override"]
        is None
    )
    assert "operator override: force_open on breaker 'max_gpu'" in g.log()


def test_force_closed_keeps_a_failing_backend_in_use_until_reset(
    primary, secondary, gateway
) -> None:
    g = gateway(chain_config(primary, secondary))
    r = httpx.post(
        g.url + "/circuit-breakers/max_gpu",
        json={"action": "force_closed", "reason": "known flaky, keep trying"},
        headers=ADMIN,
    )
    assert r.status_code == 200
    primary.default = Fault("status", status=500)
    for _ in range(4):
        assert ask(g.url).headers["x-tripwise-fallback-reason"] == "max_gpu=error:500"
    r = httpx.post(
        g.url + "/circuit-breakers/max_gpu",
        json={"action": "reset", "reason": "done"},
        headers=ADMIN,
    )
    assert r.json()["state"] == "closed" and r.json()["mode"] == "normal"


BAD_OVERRIDES = [
    ({}, {"action": "force_open", "reason": "x"}, 401, None),
    ({"Authorization": "Bearer wrong"}, {"action": "force_open", "reason": "x"}, 401, None),
    (ADMIN, {"action": "explode", "reason": "x"}, 400, "action"),
    (ADMIN, {"action": "force_open"}, 400, "reason"),
    (ADMIN, {"action": "force_open", "reason": "x", "ttl_seconds": -1}, 400, "ttl_seconds"),
    (ADMIN, {"action": "force_open", "reason": "x", "ttl_seconds": 1e308}, 400, "ttl_seconds"),
    (ADMIN, {"action": "force_open", "reason": "x", "ttl_seconds": "5"}, 400, "ttl_seconds"),
    (ADMIN, {"action": "reset", "reason": "x", "ttl_seconds": 5}, 400, "ttl_seconds"),
]


def test_override_rejects_bad_requests(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary))
    for headers, body, status, param in BAD_OVERRIDES:
        r = httpx.post(g.url + "/circuit-breakers/max_gpu", json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]["param"] == param
        assert r.json()["error"]["message"]
    unknown = httpx.post(
        g.url + "/circuit-breakers/nope", json={"action": "reset", "reason": "x"}, headers=ADMIN
    )
    assert unknown.status_code == 404
    # nothing was changed by the rejected requests
    state = httpx.get(g.url + "/circuit-breakers/max_gpu").json()
    assert state["mode"] == "normal" and state["override"] is None


def test_admin_endpoints_are_off_without_an_admin_key(primary, secondary, gateway) -> None:
    cfg = chain_config(primary, secondary).replace("admin_key: test-admin-key\n", "")
    g = gateway(cfg)
    r = httpx.post(
        g.url + "/circuit-breakers/max_gpu",
        json={"action": "force_open", "reason": "x"},
        headers=ADMIN,
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "admin_disabled"
