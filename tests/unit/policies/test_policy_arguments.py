"""Every policy refuses a bad argument at construction, naming the parameter and the value
(instead of failing later with an unrelated error, or silently coercing it)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from tripwise.policies import (
    Backoff,
    CacheTier,
    DegradedTier,
    FallbackChain,
    HealthChecker,
    MemoryCache,
    Retry,
    RetryBudget,
    Tier,
    Timeout,
)

NAN, INF = math.nan, math.inf

CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    # Retry
    ("retry_on an int", lambda: Retry(3, retry_on=42), TypeError, "retry_on must be an exception"),
    ("retry_on a string", lambda: Retry(retry_on="ValueError"), TypeError, "'ValueError'"),
    ("retry_on empty", lambda: Retry(retry_on=()), ValueError, "at least one exception"),
    ("retry_on an instance", lambda: Retry(retry_on=(ValueError(),)), TypeError, "retry_on"),
    ("attempts 0", lambda: Retry(0), ValueError, "attempts must be an integer >= 1"),
    ("attempts a bool", lambda: Retry(True), ValueError, "attempts must be an integer"),
    ("attempts a float", lambda: Retry(2.5), ValueError, "attempts must be an integer"),
    ("max_elapsed negative", lambda: Retry(max_elapsed=-1), ValueError, "max_elapsed"),
    ("max_elapsed NaN", lambda: Retry(max_elapsed=NAN), ValueError, "max_elapsed"),
    ("max_retry_after inf", lambda: Retry(max_retry_after=INF), ValueError, "max_retry_after"),
    ("respect_retry_after 'no'", lambda: Retry(respect_retry_after="no"), TypeError, "True or"),
    ("retry_on_result a value", lambda: Retry(retry_on_result=5), TypeError, "callable"),
    ("sleep a number", lambda: Retry(sleep=0.1), TypeError, "sleep must be a callable"),
    ("async_sleep a number", lambda: Retry(async_sleep=1), TypeError, "async_sleep must be"),
    ("clock a number", lambda: Retry(clock=0.0), TypeError, "clock must be a callable"),
    ("rng a seed", lambda: Retry(rng=42), TypeError, "rng must be a random.Random"),
    ("budget a ratio", lambda: Retry(budget=0.2), TypeError, "budget must be a RetryBudget"),
    ("backoff a number", lambda: Retry(backoff=0.1), TypeError, "backoff must be a Backoff"),
    # Backoff / RetryBudget
    ("initial negative", lambda: Backoff(-0.1), ValueError, "initial"),
    ("initial NaN", lambda: Backoff(NAN), ValueError, "initial"),
    ("multiplier a bool", lambda: Backoff(multiplier=True), TypeError, "multiplier"),
    ("max_delay < initial", lambda: Backoff(1.0, max_delay=0.5), ValueError, "max_delay"),
    ("jitter True", lambda: Backoff(jitter=True), ValueError, "jitter must be 'full'"),
    ("budget ratio NaN", lambda: RetryBudget(NAN), ValueError, "ratio"),
    ("budget window 0", lambda: RetryBudget(window_seconds=0), ValueError, "window_seconds"),
    ("budget min_retries -1", lambda: RetryBudget(min_retries=-1), ValueError, "min_retries"),
    # Timeout
    ("timeout negative", lambda: Timeout(-1), ValueError, "timeout seconds"),
    ("timeout NaN", lambda: Timeout(NAN), ValueError, "timeout seconds"),
    ("timeout inf", lambda: Timeout(INF), ValueError, "timeout seconds"),
    ("timeout a bool", lambda: Timeout(True), TypeError, "timeout seconds"),
    ("timeout a string", lambda: Timeout("5"), TypeError, "timeout seconds"),
    ("sync_mode unknown", lambda: Timeout(1, sync_mode="kill"), ValueError, "sync_mode"),
    ("timeout clock", lambda: Timeout(1, clock=1.0), TypeError, "clock must be a callable"),
    # caches, tiers and chains
    ("cache size 0", lambda: MemoryCache(0), ValueError, "max_entries"),
    ("cache clock", lambda: MemoryCache(clock=3), TypeError, "clock must be a callable"),
    ("cache tier ttl NaN", lambda: CacheTier(ttl=NAN), ValueError, "ttl"),
    ("cache tier clock", lambda: CacheTier(clock="now"), TypeError, "clock must be"),
    ("tier timeout a bool", lambda: Tier("a", abs, timeout=True), TypeError, "timeout"),
    ("tier timeout negative", lambda: Tier("a", abs, timeout=-1), ValueError, "timeout"),
    ("tier retry an int", lambda: Tier("a", abs, retry=3), TypeError, "retry must be a Retry"),
    ("tier name empty", lambda: Tier("", abs), TypeError, "tier name"),
    ("tier fn a value", lambda: Tier("a", 42), TypeError, "fn must be callable"),
    ("min_quality NaN", lambda: Tier("a", abs, score_fn=abs, min_quality=NAN), ValueError, "min"),
    ("chain empty", lambda: FallbackChain([]), ValueError, "at least one tier"),
    ("chain name empty", lambda: FallbackChain([DegradedTier("x")], name=""), TypeError, "name"),
    ("chain clock", lambda: FallbackChain([DegradedTier("x")], clock=1), TypeError, "clock"),
    # health checker
    ("interval NaN", lambda: HealthChecker(interval=NAN), ValueError, "interval"),
    ("timeout 0", lambda: HealthChecker(timeout=0), ValueError, "timeout"),
    ("jitter a bool", lambda: HealthChecker(jitter=False), ValueError, "jitter"),
    ("http 'yes'", lambda: HealthChecker(http="yes"), TypeError, "http must be True or False"),
    ("health_path None", lambda: HealthChecker(health_path=None), TypeError, "health_path"),
    ("health clock", lambda: HealthChecker(clock=5), TypeError, "clock must be a callable"),
]


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [pytest.param(build, error, message, id=case) for case, build, error, message in CASES],
)
def test_bad_arguments_are_refused_at_construction(
    build: Callable[[], Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(")):
        build()


def test_the_accepted_forms_of_retry_on() -> None:
    assert Retry(retry_on=ValueError)._retry_types == (ValueError,)
    assert Retry(retry_on=[KeyError, OSError])._retry_types == (KeyError, OSError)
    assert Retry(retry_on=lambda exc: True)._retry_predicate is not None
