"""Policy / compose: the documented order fallback → retry → breaker → check → timeout."""

from __future__ import annotations

import pytest

from tripwise import CircuitBreaker, CircuitBreakerOpen, FakeClock, State, consecutive_failures
from tripwise.policies import Backoff, FakeSleeper, Policy, RejectedAnswer, Retry, compose


def make(clock: FakeClock, **kwargs: object) -> tuple[Policy, CircuitBreaker, FakeSleeper]:
    sleeper = FakeSleeper(clock)
    breaker = CircuitBreaker(
        consecutive_failures(3), half_open_after=10.0, clock=clock, registry=None
    )
    retry = Retry(
        5, backoff=Backoff(1.0, 1.0, 1.0, jitter="none"), clock=clock, sleep=sleeper.sleep
    )
    return compose(retry=retry, breaker=breaker, **kwargs), breaker, sleeper  # type: ignore[arg-type]


def test_each_retry_passes_the_breaker_and_an_open_breaker_stops_the_retries() -> None:
    clock = FakeClock()
    policy, breaker, sleeper = make(clock)
    calls = 0

    @policy
    def down() -> str:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    with pytest.raises(CircuitBreakerOpen):
        down()
    assert calls == 3  # the third failure opened the breaker; retries 4 and 5 never ran
    assert breaker.state is State.OPEN
    assert sleeper.sleeps == [1.0, 1.0]
    assert down.policy is policy  # type: ignore[attr-defined]


def test_fallback_answers_when_everything_inside_failed_including_rejections() -> None:
    clock = FakeClock()
    policy, breaker, _ = make(clock, fallback=lambda q: f"cached {q}")
    calls = 0

    def down(q: str) -> str:
        nonlocal calls
        calls += 1
        raise ConnectionError

    assert policy.call(down, "x") == "cached x"
    assert breaker.state is State.OPEN
    assert policy.call(down, "y") == "cached y"  # rejected fast, answered by the fallback
    assert calls == 3


def test_a_bad_answer_is_retried_and_counted_by_the_breaker() -> None:
    clock = FakeClock()
    policy, breaker, _ = make(clock, accept=lambda r: r != "", fallback="n/a")
    answers = iter(["", "", "fine"])
    assert policy.call(lambda: next(answers)) == "fine"
    stats = breaker.stats()
    assert (stats.failures, stats.successes) == (2, 1)


def test_without_fallback_the_last_error_propagates() -> None:
    policy = Policy(accept=lambda r: r > 0)
    with pytest.raises(RejectedAnswer):
        policy.call(lambda: -1)


async def test_async_policy_with_async_fallback() -> None:
    clock = FakeClock()

    async def fb(q: str) -> str:
        return f"fallback {q}"

    policy, breaker, _ = make(clock, fallback=fb)
    policy.retry._async_sleep = FakeSleeper(clock).async_sleep  # type: ignore[union-attr]

    @policy
    async def down(q: str) -> str:
        raise ConnectionError

    assert await down("q") == "fallback q"
    assert breaker.state is State.OPEN


def test_policy_rejects_a_breaker_with_its_own_fallback_and_bad_arguments() -> None:
    with pytest.raises(ValueError, match="has its own fallback"):
        Policy(breaker=CircuitBreaker(fallback="x", registry=None))
    with pytest.raises(TypeError, match="retry must be a Retry"):
        Policy(retry=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timeout must be seconds"):
        Policy(timeout="2s")  # type: ignore[arg-type]
