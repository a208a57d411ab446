"""The seed platform's Python API: FallbackChain and CircuitBreakerConfig in tripwise.compat."""

from __future__ import annotations

import inspect
import uuid

import pytest

from tests.support.fake_llm import FakeLLMServer, Fault
from tests.support.redis_service import redis_url
from tripwise.compat import CircuitBreakerConfig, FallbackChain

pytestmark = pytest.mark.integration


def test_documented_defaults() -> None:
    cfg = CircuitBreakerConfig()
    assert (cfg.failure_threshold, cfg.timeout_seconds) == (3, 5.0)
    assert (cfg.recovery_timeout_seconds, cfg.success_threshold) == (30.0, 2)
    params = inspect.signature(FallbackChain).parameters
    assert params["ollama_cpu_endpoint"].default is None
    assert params["redis_client"].default is None
    assert params["degraded_message"].default == "Service temporarily unavailable"


async def test_max_gpu_then_ollama_then_cache_then_degraded(
    primary: FakeLLMServer, secondary: FakeLLMServer
) -> None:
    async with FallbackChain(
        max_gpu_endpoint=primary.url,
        ollama_cpu_endpoint=secondary.url,
        degraded_message="Service temporarily unavailable",
    ) as chain:
        assert chain.tiers == ["max_gpu", "ollama_cpu", "cache", "degraded"]
        first = await chain.generate("Hello")
        assert (first.tier, first.content) == ("max_gpu", "The answer is 4")
        assert primary.requests[-1][0] == "/v1/chat/completions"
        primary.default = Fault("status", status=500)
        second = await chain.generate("Hello")
        assert second.tier == "ollama_cpu"
        assert second.fallback_reasons == ["max_gpu=error:500"]
        secondary.default = Fault("status", status=500)
        cached = await chain.generate("Hello")
        assert cached.tier == "cache" and cached.cache_age_seconds is not None
        degraded = await chain.generate("something never asked")
        assert degraded.degraded
        assert degraded.content == "Service temporarily unavailable"
        stats = chain.get_stats()
        assert stats["tier_usage"] == {"max_gpu": 1, "ollama_cpu": 1, "cache": 1, "degraded": 1}
        assert stats["circuit_breakers"]["max_gpu"]["state"] == "open"  # 3 failures
        assert stats["circuit_breakers"]["max_gpu"]["total_failures"] == 3


async def test_timeout_seconds_bounds_a_slow_tier(
    primary: FakeLLMServer, secondary: FakeLLMServer
) -> None:
    cfg = CircuitBreakerConfig(timeout_seconds=0.3)
    async with FallbackChain(primary.url, secondary.url, config=cfg) as chain:
        primary.script(Fault("slow_first_token", delay=2))
        result = await chain.generate("Hello")
        assert result.tier == "ollama_cpu"
        assert result.fallback_reasons == ["max_gpu=error:timeout"]


async def test_redis_client_shares_the_cache(primary: FakeLLMServer) -> None:
    import redis

    client = redis.Redis.from_url(redis_url())
    question = f"question {uuid.uuid4().hex}"
    try:
        async with FallbackChain(primary.url, redis_client=client) as one:
            assert (await one.generate(question)).tier == "max_gpu"
        primary.default = Fault("status", status=503)
        async with FallbackChain(primary.url, redis_client=client) as other:
            hit = await other.generate(question)
            assert hit.tier == "cache" and hit.content == "The answer is 4"
    finally:
        for key in client.scan_iter("tripwise-gw:cache:*"):
            client.delete(key)
        client.close()


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="max_gpu_endpoint"):
        FallbackChain(max_gpu_endpoint="max-serve:8080")
    with pytest.raises(ValueError, match="cache_ttl_seconds"):
        FallbackChain("http://127.0.0.1:1", cache_ttl_seconds=0)
