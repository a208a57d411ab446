"""A fallback chain in front of real HTTP services on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tripwise import CircuitBreaker, CircuitBreakerOpen, State, consecutive_failures
from tripwise.policies import (
    CacheMiss,
    CacheTier,
    CallTimeout,
    DegradedTier,
    FallbackChain,
    RejectedAnswer,
    Tier,
)

pytestmark = pytest.mark.integration


def http_tier_fn(client: httpx.Client, base: str) -> Callable[[str], dict[str, Any]]:
    def ask(prompt: str) -> dict[str, Any]:
        response = client.get(f"{base}/answer/{prompt}")
        response.raise_for_status()
        return dict(response.json())

    return ask


def build_chain(client: httpx.Client, primary: Any, secondary: Any) -> FallbackChain:
    def breaker(name: str) -> CircuitBreaker:
        return CircuitBreaker(
            consecutive_failures(2),
            name=name,
            half_open_after=0.3,
            recovery_threshold=1,
            registry=None,
        )

    confidence = lambda r: r["confidence"]  # noqa: E731
    return FallbackChain(
        [
            Tier(
                "primary",
                http_tier_fn(client, primary.url),
                breaker=breaker("primary"),
                timeout=0.5,
                score_fn=confidence,
                min_quality=0.5,
            ),
            Tier(
                "secondary",
                http_tier_fn(client, secondary.url),
                breaker=breaker("secondary"),
                timeout=0.5,
                score_fn=confidence,
                min_quality=0.5,
            ),
            CacheTier(ttl=60.0),
            DegradedTier({"answer": "Service temporarily unavailable", "confidence": 0.0}),
        ],
        name="http-chain",
        registry=None,
    )


def test_chain_over_real_services(services: Any, wait: Any) -> None:
    primary, secondary = services("gpu"), services("cpu")
    with httpx.Client(timeout=2.0) as client:
        chain = build_chain(client, primary, secondary)
        primary_breaker = chain.tier("primary").breaker
        assert primary_breaker is not None

        # 1. Primary healthy.
        result = chain.call("hello")
        assert result.value["answer"] == "gpu:hello" and not result.fallback_used

        # 2. Primary answers with HTTP 500: the secondary answers.
        primary.mode = "error"
        result = chain.call("hello")
        assert result.tier == "secondary" and result.value["answer"] == "cpu:hello"
        assert isinstance(result.errors["primary"], httpx.HTTPStatusError)
        primary.mode = "ok"
        primary_breaker.reset()

        # 3. Primary answers, but with low confidence: counts as failed, the secondary answers.
        primary.mode = "lowq"
        result = chain.call("lowq")
        assert result.tier == "secondary"
        assert isinstance(result.errors["primary"], RejectedAnswer)
        primary.mode = "ok"
        primary_breaker.reset()

        # 4. Primary slows down past its timeout: the secondary answers in the meantime.
        primary.delay = 1.0
        result = chain.call("slow")
        assert result.tier == "secondary"
        assert isinstance(result.errors["primary"], CallTimeout)
        primary.delay = 0.0
        primary_breaker.reset()

        # 5. Both live services killed: the cache serves the last good answer with its age,
        #    a never-seen prompt gets the degraded answer.
        primary.kill()
        secondary.kill()
        result = chain.call("hello")
        assert result.tier == "cache"
        assert result.value["answer"] == "cpu:hello"  # the last good answer for this prompt
        assert result.cache_age_s is not None and result.cache_age_s >= 0.0
        assert isinstance(result.errors["primary"], httpx.ConnectError | CircuitBreakerOpen)
        result = chain.call("never-asked")
        assert result.tier == "degraded"
        assert isinstance(result.errors["cache"], CacheMiss)
        chain.call("never-asked")
        assert primary_breaker.state is State.OPEN

        # 6. Primary restarted: once its breaker half-opens, traffic returns to it.
        primary.start()
        wait(lambda: chain.call("again").tier == "primary")
        assert primary_breaker.state is State.CLOSED

        usage = chain.usage()
        assert usage["primary"] >= 2 and usage["secondary"] == 3
        assert usage["cache"] >= 1 and usage["degraded"] >= 2


async def test_async_chain_over_real_services(services: Any, wait: Any) -> None:
    primary, secondary = services("gpu"), services("cpu")
    async with httpx.AsyncClient(timeout=2.0) as client:

        def tier_fn(base: str) -> Callable[..., Any]:
            async def ask(prompt: str) -> dict[str, Any]:
                response = await client.get(f"{base}/answer/{prompt}")
                response.raise_for_status()
                return dict(response.json())

            return ask

        chain = FallbackChain(
            [
                Tier(
                    "primary",
                    tier_fn(primary.url),
                    timeout=0.3,
                    breaker=CircuitBreaker(
                        consecutive_failures(1),
                        half_open_after=0.3,
                        recovery_threshold=1,
                        registry=None,
                    ),
                ),
                Tier("secondary", tier_fn(secondary.url), timeout=0.3, breaker=False),
                CacheTier(),
                DegradedTier("degraded"),
            ],
            registry=None,
        )
        assert (await chain.acall("a")).tier == "primary"
        primary.delay = 1.0  # the primary hangs: the async timeout cancels the request
        result = await chain.acall("a")
        assert result.tier == "secondary"
        assert isinstance(result.errors["primary"], CircuitBreakerOpen)
        assert isinstance(result.errors["primary"].__cause__, CallTimeout)
        primary.delay = 0.0
        secondary.kill()
        result = await chain.acall("a")
        assert result.tier in ("cache", "primary")
        primary.kill()
        result = await chain.acall("b")
        assert result.tier == "degraded"
        primary.start()

        async def back() -> bool:
            return (await chain.acall("c")).tier == "primary"

        for _ in range(100):
            if await back():
                break
            import asyncio

            await asyncio.sleep(0.05)
        else:
            pytest.fail("the async chain never returned to the primary")
