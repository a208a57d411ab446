"""Hostile values found by the new-user walkthrough: each is a clear error naming the
parameter, or is ignored like any other malformed server input, never a crash mid-call."""

from __future__ import annotations

import math
import random

import httpx
import pytest

from tripwise.compat.classic import CircuitBreaker as ClassicBreaker
from tripwise.policies import Backoff, HealthChecker, retry_after_of


def _http_error(retry_after: str) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1/")
    response = httpx.Response(503, headers={"Retry-After": retry_after}, request=request)
    return httpx.HTTPStatusError("503", request=request, response=response)


@pytest.mark.parametrize("header", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_a_non_finite_retry_after_header_is_ignored(header: str) -> None:
    # "nan" used to read as 0.0 (retry at once) and "inf" as an infinite wait
    assert retry_after_of(_http_error(header)) is None


def test_a_finite_retry_after_header_still_counts() -> None:
    assert retry_after_of(_http_error("4")) == 4.0
    assert retry_after_of(_http_error("-3")) == 0.0


def test_a_huge_backoff_multiplier_caps_at_max_delay_instead_of_overflowing() -> None:
    backoff = Backoff(initial=1.0, multiplier=1e308, max_delay=10.0, jitter="none")
    assert [backoff.delay(n, random.Random(1)) for n in (1, 2, 3, 4)] == [1.0, 10.0, 10.0, 10.0]


@pytest.mark.parametrize("rng", [math.nan, 3, "seed"])
def test_health_checker_rejects_an_rng_without_random(rng: object) -> None:
    with pytest.raises(TypeError, match="rng"):
        HealthChecker(http=False, rng=rng)  # type: ignore[arg-type]


@pytest.mark.parametrize("registry", [math.nan, 0, "default", [1]])
def test_health_checker_rejects_a_registry_that_is_not_one(registry: object) -> None:
    with pytest.raises(TypeError, match="registry"):
        HealthChecker(http=False, registry=registry)  # type: ignore[arg-type]


@pytest.mark.parametrize("window", [math.nan, True, 0, -1, 2.5, 1e308])
def test_classic_failure_rate_window_is_validated(window: object) -> None:
    with pytest.raises(ValueError, match="failure_rate_window"):
        ClassicBreaker(failure_rate_threshold=0.5, failure_rate_window=window, registry=None)  # type: ignore[arg-type]
