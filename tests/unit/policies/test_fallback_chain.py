"""Fallback chain behaviour on a fake clock: tiers, quality fallback, cache, degraded, recovery."""

from __future__ import annotations

from typing import Any

import pytest

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    Registry,
    State,
    consecutive_failures,
    quality_below,
)
from tripwise.policies import (
    CacheMiss,
    CacheTier,
    ChainExhausted,
    DegradedTier,
    FakeSleeper,
    FallbackChain,
    MemoryCache,
    RejectedAnswer,
    Retry,
    Tier,
    all_chains,
)
from tripwise.policies.retry import Backoff


class Service:
    """A fake model service: healthy, erroring, or answering with low confidence."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = "ok"
        self.calls = 0

    def __call__(self, prompt: str) -> dict[str, Any]:
        self.calls += 1
        if self.mode == "error":
            raise ConnectionError(f"{self.name} is down")
        confidence = 0.95 if self.mode == "ok" else 0.2
        return {"answer": f"{self.name}: {prompt}", "confidence": confidence}


def make_chain(clock: FakeClock, **tier_options: Any) -> tuple[FallbackChain, Service, Service]:
    primary, secondary = Service("gpu"), Service("cpu")
    chain = FallbackChain(
        [
            Tier(
                "gpu",
                primary,
                breaker=CircuitBreaker(
                    consecutive_failures(3),
                    name="gpu",
                    half_open_after=30.0,
                    recovery_threshold=1,
                    clock=clock,
                    registry=None,
                ),
                score_fn=lambda r: r["confidence"],
                min_quality=0.5,
                **tier_options,
            ),
            Tier("cpu", secondary, score_fn=lambda r: r["confidence"], min_quality=0.5),
            CacheTier("cache", ttl=600.0, clock=clock),
            DegradedTier({"answer": "Service temporarily unavailable"}),
        ],
        name="assistant",
        clock=clock,
        registry=None,
    )
    return chain, primary, secondary


def test_healthy_primary_answers_without_fallback() -> None:
    clock = FakeClock()
    chain, _primary, secondary = make_chain(clock)
    result = chain.call("hi")
    assert result.value["answer"] == "gpu: hi"
    assert result.tier == "gpu" and result.tier_index == 0
    assert result.fallback_used is False
    assert result.attempts == 1
    assert result.errors == {}
    assert result.cache_age_s is None
    assert secondary.calls == 0
    assert chain.usage() == {"gpu": 1, "cpu": 0, "cache": 0, "degraded": 0}


def test_erroring_primary_falls_back_to_secondary_and_its_breaker_opens() -> None:
    clock = FakeClock()
    chain, primary, _secondary = make_chain(clock)
    primary.mode = "error"
    for _ in range(3):
        result = chain.call("q")
        assert result.tier == "cpu" and result.fallback_used
        assert isinstance(result.errors["gpu"], (ConnectionError, CircuitBreakerOpen))
    gpu_breaker = chain.tier("gpu").breaker  # type: ignore[union-attr]
    assert gpu_breaker.state is State.OPEN
    calls_before = primary.calls
    result = chain.call("q")
    assert primary.calls == calls_before  # rejected by the open breaker, not called
    assert isinstance(result.errors["gpu"], CircuitBreakerOpen)
    assert result.attempts == 1  # only the secondary ran
    assert chain.usage()["cpu"] == 4


def test_low_quality_answers_count_as_failures_and_move_on() -> None:
    clock = FakeClock()
    chain, primary, _secondary = make_chain(clock)
    primary.mode = "lowq"
    result = chain.call("q")
    assert result.tier == "cpu"
    err = result.errors["gpu"]
    assert isinstance(err, RejectedAnswer) and err.score == pytest.approx(0.2)
    assert result.attempts == 2
    chain.call("q")
    chain.call("q")
    gpu = chain.tier("gpu").breaker  # type: ignore[union-attr]
    assert gpu.state is State.OPEN  # three bad answers tripped the primary's breaker
    assert gpu.stats().failures == 3


def test_all_live_tiers_down_serves_the_cache_with_its_age_then_degraded() -> None:
    clock = FakeClock()
    chain, primary, secondary = make_chain(clock)
    assert chain.call("weather").tier == "gpu"
    clock.advance(42.0)
    primary.mode = secondary.mode = "error"
    result = chain.call("weather")
    assert result.tier == "cache"
    assert result.value["answer"] == "gpu: weather"
    assert result.cache_age_s == pytest.approx(42.0)
    assert set(result.errors) == {"gpu", "cpu"}
    # A key never answered before has nothing cached: the degraded tier answers.
    result = chain.call("news")
    assert result.tier == "degraded"
    assert result.value == {"answer": "Service temporarily unavailable"}
    assert isinstance(result.errors["cache"], CacheMiss)
    # The cached answer expires after its ttl.
    clock.advance(600.0)
    assert chain.call("weather").tier == "degraded"
    assert chain.usage() == {"gpu": 1, "cpu": 0, "cache": 1, "degraded": 2}


def test_recovery_back_to_primary_after_the_breaker_half_opens() -> None:
    clock = FakeClock()
    chain, primary, _ = make_chain(clock)
    primary.mode = "error"
    for _ in range(3):
        chain.call("q")
    gpu = chain.tier("gpu").breaker  # type: ignore[union-attr]
    assert gpu.state is State.OPEN
    primary.mode = "ok"
    assert chain.call("q").tier == "cpu"  # still cooling down
    clock.advance(31.0)
    result = chain.call("q")  # the probe goes to the primary and succeeds
    assert result.tier == "gpu" and not result.fallback_used
    assert gpu.state is State.CLOSED
    assert chain.call("q").tier == "gpu"


def test_metadata_reports_elapsed_time_on_the_chain_clock() -> None:
    clock = FakeClock()

    def slow(prompt: str) -> str:
        clock.advance(0.25)
        return "done"

    chain = FallbackChain([Tier("only", slow, breaker=False)], clock=clock, registry=None)
    result = chain.call("x")
    assert result.elapsed_ms == pytest.approx(250.0)
    meta = result.metadata()
    assert meta == {
        "tier": "only",
        "fallback_used": False,
        "attempts": 1,
        "elapsed_ms": pytest.approx(250.0),
        "errors": {},
        "cache_age_s": None,
    }


def test_retries_inside_a_tier_are_counted_as_attempts() -> None:
    clock = FakeClock()
    sleeper = FakeSleeper(clock)
    flaky_calls = 0

    def flaky(prompt: str) -> str:
        nonlocal flaky_calls
        flaky_calls += 1
        if flaky_calls < 3:
            raise TimeoutError("slow")
        return "third time lucky"

    retry = Retry(
        3, backoff=Backoff(1.0, 2.0, 5.0, jitter="none"), clock=clock, sleep=sleeper.sleep
    )
    chain = FallbackChain(
        [Tier("primary", flaky, retry=retry), DegradedTier("sorry")], clock=clock, registry=None
    )
    result = chain.call("x")
    assert result.value == "third time lucky"
    assert result.attempts == 3
    assert result.elapsed_ms == pytest.approx(3000.0)  # slept 1 s then 2 s
    # Each attempt went through the tier's default breaker.
    assert chain.tier("primary").breaker.stats().calls == 3  # type: ignore[union-attr]


def test_every_tier_failing_raises_chain_exhausted_with_per_tier_errors() -> None:
    def down(_: str) -> str:
        raise ConnectionError("down")

    chain = FallbackChain(
        [Tier("a", down, breaker=False), Tier("b", down, breaker=False), CacheTier()],
        registry=None,
    )
    with pytest.raises(ChainExhausted) as info:
        chain.call("x")
    assert set(info.value.errors) == {"a", "b", "cache"}
    assert info.value.attempts == 2
    assert "every tier" in str(info.value)


def test_default_tier_breakers_are_named_and_registered() -> None:
    registry = Registry()

    def ok(_: str) -> str:
        return "ok"

    chain = FallbackChain(
        [Tier("gpu", ok), Tier("cpu", ok), DegradedTier("x")], name="ai", registry=registry
    )
    assert set(registry.all()) == {"ai.gpu", "ai.cpu"}
    assert chain in all_chains()
    assert chain.stats()["tiers"]["gpu"] == {
        "kind": "live",
        "usage": 0,
        "failures": 0,
        "breaker": "ai.gpu",
        "state": "closed",
        "timeouts": 0,
    }


def test_degraded_answer_can_be_computed_from_the_arguments() -> None:
    chain = FallbackChain(
        [Tier("a", lambda p: 1 / 0, breaker=False), DegradedTier(lambda p: f"no answer for {p}")],
        registry=None,
    )
    result = chain.call("x")
    assert result.value == "no answer for x"
    assert result.attempts == 1 and type(result.attempts) is int
    assert isinstance(result.errors["a"], ZeroDivisionError)


def test_cache_key_function_and_custom_backend() -> None:
    class DictBackend:
        def __init__(self) -> None:
            self.data: dict[str, tuple[Any, float]] = {}

        def get(self, key: str) -> tuple[Any, float] | None:
            return self.data.get(key)

        def set(self, key: str, value: Any, stored_at: float, ttl: float) -> None:
            self.data[key] = (value, stored_at)

    clock = FakeClock()
    backend = DictBackend()
    up = {"v": True}

    def model(prompt: str, user: str) -> str:
        if not up["v"]:
            raise ConnectionError
        return prompt.upper()

    chain = FallbackChain(
        [Tier("m", model, breaker=False), CacheTier(backend=backend, ttl=60, clock=clock)],
        key=lambda prompt, user: prompt.lower(),
        registry=None,
    )
    chain.call("Hello", user="a")
    assert list(backend.data) == ["hello"]
    up["v"] = False
    clock.advance(5)
    result = chain.call("HELLO", user="b")
    assert result.value == "HELLO" and result.cache_age_s == pytest.approx(5.0)


def test_memory_cache_is_bounded_and_evicts_least_recently_used() -> None:
    clock = FakeClock()
    cache = MemoryCache(2, clock=clock)
    cache.set("a", 1, clock(), 10)
    cache.set("b", 2, clock(), 10)
    assert cache.get("a") == (1, clock())  # touch a: b is now least recent
    cache.set("c", 3, clock(), 10)
    assert cache.get("b") is None and len(cache) == 2
    clock.advance(10)
    assert cache.get("a") is None  # expired


async def test_async_chain_with_mixed_tiers() -> None:
    clock = FakeClock()
    state = {"up": True}

    async def primary(prompt: str) -> str:
        if not state["up"]:
            raise ConnectionError("down")
        return f"async {prompt}"

    async def degraded(prompt: str) -> str:
        return f"degraded {prompt}"

    chain = FallbackChain(
        [
            Tier("primary", primary, breaker=False),
            Tier("sync", lambda p: (_ for _ in ()).throw(OSError("also down")), breaker=False),
            CacheTier(clock=clock),
            DegradedTier(degraded),
        ],
        clock=clock,
        registry=None,
    )
    assert (await chain.acall("a")).value == "async a"
    state["up"] = False
    clock.advance(3)
    result = await chain.acall("a")
    assert result.tier == "cache" and result.cache_age_s == pytest.approx(3.0)
    result = await chain.acall("b")
    assert result.value == "degraded b"
    with pytest.raises(TypeError, match="acall"):
        chain.call("a")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: FallbackChain([]), "at least one tier"),
        (lambda: FallbackChain([DegradedTier(1), DegradedTier(2)]), "two tiers are named"),
        (lambda: FallbackChain(["nope"]), "tiers must be Tier"),  # type: ignore[list-item]
        (lambda: Tier("a", 42), "fn must be callable"),  # type: ignore[arg-type]
        (lambda: Tier("a", print, min_quality=0.5), "min_quality needs a score_fn"),
        (lambda: Tier("a", print, score_fn=len, min_quality=2), "min_quality must be in"),
        (lambda: Tier("a", print, timeout=-1), "timeout seconds must be a finite number > 0"),
        (lambda: CacheTier(ttl=0), "ttl must be a finite number > 0"),
        (lambda: CacheTier(backend=object()), "backend needs get"),  # type: ignore[arg-type]
        (
            lambda: Tier("a", print, breaker=CircuitBreaker(fallback="x", registry=None)),
            "has a fallback",
        ),
    ],
)
def test_bad_configuration_is_rejected_with_a_clear_message(build: Any, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_quality_score_reaches_the_breakers_quality_condition() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(quality_below(0.6, window=3, min_calls=3), clock=clock, registry=None)
    chain = FallbackChain(
        [Tier("m", lambda p: 0.55, breaker=breaker, score_fn=float), DegradedTier("d")],
        registry=None,
    )
    for _ in range(3):
        assert chain.call("x").tier == "m"  # no min_quality: accepted, but scored
    assert breaker.state is State.OPEN
    assert breaker.stats().avg_quality == pytest.approx(0.55)
