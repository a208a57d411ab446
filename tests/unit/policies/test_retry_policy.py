"""Retry: attempts, backoff, time budget, predicates, Retry-After, retry budget (fake clock)."""

from __future__ import annotations

import random

import httpx
import pytest

from tripwise import CircuitBreaker, CircuitBreakerOpen, FakeClock, State, consecutive_failures
from tripwise.policies import Backoff, FakeSleeper, Retry, RetryBudget, retry_after_of


class Flaky:
    """Fails ``failures`` times with ``error``, then returns ``value``."""

    def __init__(self, failures: int, error: BaseException | None = None, value: str = "ok"):
        self.failures = failures
        self.error = error if error is not None else ConnectionError("boom")
        self.value = value
        self.calls = 0

    def __call__(self, *args: object) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.value


def make_retry(clock: FakeClock, **kwargs: object) -> tuple[Retry, FakeSleeper]:
    sleeper = FakeSleeper(clock)
    kwargs.setdefault("backoff", Backoff(0.1, 2.0, 1.0, jitter="none"))
    retry = Retry(
        clock=clock,
        sleep=sleeper.sleep,
        async_sleep=sleeper.async_sleep,
        rng=random.Random(1),
        **kwargs,  # type: ignore[arg-type]
    )
    return retry, sleeper


def test_retries_until_success_with_exponential_capped_backoff() -> None:
    clock = FakeClock()
    retry, sleeper = make_retry(clock, attempts=6)
    fn = Flaky(5)
    assert retry.call(fn) == "ok"
    assert fn.calls == 6
    assert sleeper.sleeps == [0.1, 0.2, 0.4, 0.8, 1.0]  # doubled, capped at max_delay


def test_gives_up_after_attempts_and_raises_the_last_error_unchanged() -> None:
    retry, sleeper = make_retry(FakeClock(), attempts=3)
    err = ValueError("bad input")
    fn = Flaky(10, err)
    with pytest.raises(ValueError) as info:
        retry.call(fn)
    assert info.value is err
    assert fn.calls == 3
    assert len(sleeper.sleeps) == 2


def test_full_and_equal_jitter_stay_inside_their_ranges() -> None:
    rng = random.Random(3)
    full = Backoff(1.0, 2.0, 8.0, jitter="full")
    equal = Backoff(1.0, 2.0, 8.0, jitter="equal")
    for n in range(1, 10):
        cap = min(8.0, 2.0 ** (n - 1))
        assert 0.0 <= full.delay(n, rng) <= cap
        assert cap / 2 <= equal.delay(n, rng) <= cap


def test_time_budget_stops_retrying_before_it_is_exceeded() -> None:
    clock = FakeClock()
    retry, sleeper = make_retry(
        clock, attempts=100, max_elapsed=1.0, backoff=Backoff(0.3, 1.0, 0.3, jitter="none")
    )
    fn = Flaky(1000)
    with pytest.raises(ConnectionError):
        retry.call(fn)
    assert sum(sleeper.sleeps) < 1.0
    assert fn.calls == 4  # sleeps at 0.3, 0.6, 0.9; a 4th would end at 1.2 > budget


def test_only_matching_exceptions_are_retried() -> None:
    retry, _ = make_retry(FakeClock(), attempts=5, retry_on=(ConnectionError,))
    fn = Flaky(3, KeyError("missing"))
    with pytest.raises(KeyError):
        retry.call(fn)
    assert fn.calls == 1

    pred_retry, _ = make_retry(FakeClock(), attempts=5, retry_on=lambda e: "transient" in str(e))
    transient = Flaky(2, RuntimeError("transient glitch"))
    assert pred_retry.call(transient) == "ok"
    permanent = Flaky(2, RuntimeError("permanent"))
    with pytest.raises(RuntimeError):
        pred_retry.call(permanent)
    assert permanent.calls == 1


def test_result_predicate_retries_bad_answers_and_returns_the_last_one() -> None:
    answers = iter(["", "", "good"])
    retry, _ = make_retry(FakeClock(), attempts=5, retry_on_result=lambda r: r == "")
    assert retry.call(lambda: next(answers)) == "good"

    retry2, _ = make_retry(FakeClock(), attempts=2, retry_on_result=lambda r: r == "")
    calls = []
    assert retry2.call(lambda: calls.append(1) or "") == ""
    assert len(calls) == 2


def test_breaker_rejection_is_never_retried() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(consecutive_failures(1), clock=clock, registry=None)
    retry, sleeper = make_retry(clock, attempts=5)
    fn = Flaky(100)
    guarded = breaker.decorate(fn)
    with pytest.raises(CircuitBreakerOpen):
        retry.call(guarded)
    assert fn.calls == 1  # the failure tripped the breaker; no retry hammered it
    assert breaker.state is State.OPEN
    assert sleeper.sleeps == []
    with pytest.raises(CircuitBreakerOpen):
        retry.call(guarded)
    assert fn.calls == 1


class Throttled(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__("429")
        self.retry_after = retry_after


def test_retry_after_on_the_error_sets_the_minimum_wait() -> None:
    retry, sleeper = make_retry(FakeClock(), attempts=3)
    fn = Flaky(1, Throttled(7.5))
    assert retry.call(fn) == "ok"
    assert sleeper.sleeps == [7.5]


def test_retry_after_beyond_the_cap_or_budget_gives_up_at_once() -> None:
    retry, sleeper = make_retry(FakeClock(), attempts=3, max_retry_after=5.0)
    fn = Flaky(1, Throttled(30.0))
    with pytest.raises(Throttled):
        retry.call(fn)
    assert fn.calls == 1 and sleeper.sleeps == []

    budgeted, sleeper2 = make_retry(FakeClock(), attempts=3, max_elapsed=2.0)
    fn2 = Flaky(1, Throttled(3.0))
    with pytest.raises(Throttled):
        budgeted.call(fn2)
    assert sleeper2.sleeps == []


def test_retry_after_read_from_an_httpx_error_response() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/x")
    response = httpx.Response(429, headers={"Retry-After": "4"}, request=request)
    err = httpx.HTTPStatusError("429", request=request, response=response)
    assert retry_after_of(err) == 4.0
    dated = httpx.Response(
        503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, request=request
    )
    assert retry_after_of(httpx.HTTPStatusError("503", request=request, response=dated)) == 0.0
    assert retry_after_of(ValueError("plain")) is None


def test_retry_budget_caps_the_share_of_retries() -> None:
    clock = FakeClock()
    budget = RetryBudget(0.1, window_seconds=10.0, min_retries=0, clock=clock)
    retry, _ = make_retry(clock, attempts=3, budget=budget)
    calls = 0

    def always_fails() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError

    for _ in range(100):
        with pytest.raises(ConnectionError):
            retry.call(always_fails)
    retries = calls - 100
    assert retries <= 10  # at most 10% of the 100 first attempts
    assert budget.denied > 0
    # After the window passes, first attempts refill it.
    clock.advance(11.0)
    assert budget.try_retry() is False  # nothing deposited in the new window yet
    for _ in range(10):
        budget.record_call()
    assert budget.try_retry() is True


async def test_async_retry_uses_the_async_sleep() -> None:
    clock = FakeClock()
    retry, sleeper = make_retry(clock, attempts=3)
    fn = Flaky(2)

    async def call() -> str:
        return fn()

    assert await retry.acall(call) == "ok"
    assert sleeper.sleeps == [0.1, 0.2]

    @retry
    async def decorated() -> str:
        return fn()

    fn.calls, fn.failures = 0, 1
    assert await decorated() == "ok"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempts": 0}, "attempts must be an integer >= 1"),
        ({"max_elapsed": -1}, "max_elapsed must be a finite number > 0"),
        ({"retry_on": [int]}, "retry_on must be exception classes"),
        ({"budget": 0.2}, "budget must be a RetryBudget"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        Retry(**kwargs)  # type: ignore[arg-type]


def test_bad_backoff_and_budget_arguments() -> None:
    with pytest.raises(ValueError, match="multiplier"):
        Backoff(multiplier=0.5)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_delay"):
        Backoff(initial=5, max_delay=1)
    with pytest.raises(ValueError, match="ratio"):
        RetryBudget(-0.1)
