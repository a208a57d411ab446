"""Replicas act as one: two gateway processes sharing breakers and the cache through Redis."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.integration.gateway.gateway_process import GatewayProcess
from tests.support.fake_llm import Fault
from tests.support.redis_service import redis_url

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "Hello"}]


def ask(url: str, content: str = "Hello") -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=15)


def test_two_replicas_share_breakers_and_cache(primary, secondary, tmp_path: Path) -> None:
    prefix = f"tw-gw-test-{uuid.uuid4().hex[:8]}"
    cfg = f"""
redis: {{url: "{redis_url()}", prefix: {prefix}}}
shutdown: {{pre_stop_delay: 0, drain_timeout: 1}}
backends:
  max_gpu:
    type: openai
    url: "{primary.base_url}"
    timeout: 3
    breaker: {{failure_threshold: 3, recovery_timeout: 30}}
  ollama_cpu: {{type: ollama, url: "{secondary.url}", timeout: 3}}
  cache: {{type: cache, store: redis, ttl: 60}}
  degraded: {{type: degraded}}
routes:
  "*": {{chain: [max_gpu, ollama_cpu, cache, degraded]}}
"""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = GatewayProcess(tmp_path / "a", cfg).start()
    b = GatewayProcess(tmp_path / "b", cfg).start()
    try:
        # the cache: an answer stored through replica A is served by replica B
        assert ask(a.url, "shared question").headers["x-tripwise-backend"] == "max_gpu"
        primary.default = Fault("status", status=500)
        secondary.default = Fault("status", status=500)
        cached = ask(b.url, "shared question")
        assert cached.headers["x-tripwise-backend"] == "cache"
        assert cached.json()["choices"][0]["message"]["content"] == "The answer is 4"
        # the breaker: three failures through A open max_gpu for B as well
        secondary.default = Fault("ok")
        for _ in range(3):
            ask(a.url)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            state = httpx.get(b.url + "/circuit-breakers").json()["circuit_breakers"]["max_gpu"]
            if state["state"] == "open":
                break
            time.sleep(0.05)
        else:
            pytest.fail("replica B never saw the trip of replica A")
        calls = len(primary.requests)
        r = ask(b.url)
        assert r.headers["x-tripwise-backend"] == "ollama_cpu"
        assert r.headers["x-tripwise-fallback-reason"] == "max_gpu=breaker_open"
        assert len(primary.requests) == calls
    finally:
        a.stop()
        b.stop()
        import redis

        client = redis.Redis.from_url(redis_url())
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()
