"""RedisStore in one process: wiring (decorator, registry default, asyncio client), keys,
scripts, and the round trips a CLOSED call does not make."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.crc import key_slot

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    Registry,
    State,
    circuit_breaker,
    consecutive_failures,
)
from tripwise.stores import MemoryStore, RedisStore, set_default_store


class Boom(Exception):
    pass


def _fail() -> None:
    raise Boom


def _trip(breaker: CircuitBreaker, n: int = 2) -> None:
    for _ in range(n):
        with pytest.raises((Boom, CircuitBreakerOpen)):
            breaker.call(_fail)


def _until(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.005)
    return predicate()


def test_decorator_store_argument_shares_the_trip(make_store: Callable[..., Any]) -> None:
    @circuit_breaker(consecutive_failures(2), name="model", registry=None, store=make_store())
    def first() -> None:
        raise Boom

    @circuit_breaker(consecutive_failures(2), name="model", registry=None, store=make_store())
    def second() -> str:
        return "ok"

    assert second() == "ok"
    _trip(first.breaker)  # type: ignore[attr-defined]
    assert _until(lambda: second.breaker.state is State.OPEN)  # type: ignore[attr-defined]
    with pytest.raises(CircuitBreakerOpen):
        second()


def test_registry_default_store_applies_to_breakers_and_decorators(
    make_store: Callable[..., Any],
) -> None:
    registry = Registry()
    store = make_store()
    set_default_store(store, registry)
    breaker = CircuitBreaker(name="a", registry=registry)

    @circuit_breaker(name="b", registry=registry)
    def guarded() -> int:
        return 1

    assert guarded() == 1
    assert store.stats()["breakers"] == 2
    assert breaker.shares_state and guarded.breaker.shares_state  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="store must be a state store"):
        registry.set_default_store("redis://localhost")  # type: ignore[arg-type]


def test_memory_store_is_the_plain_in_memory_breaker() -> None:
    breaker = CircuitBreaker(consecutive_failures(2), registry=None, store=MemoryStore())
    assert not breaker.shares_state
    _trip(breaker)
    assert breaker.state is State.OPEN


async def test_asyncio_client_and_async_calls(
    redis_server_url: str, make_store: Callable[..., Any]
) -> None:
    client = redis.asyncio.Redis.from_url(redis_server_url)
    store_a = make_store(client)
    store_b = make_store()
    a = CircuitBreaker(consecutive_failures(2), name="llm", registry=None, store=store_a)
    b = CircuitBreaker(consecutive_failures(2), name="llm", registry=None, store=store_b)

    async def fail() -> None:
        raise Boom

    for _ in range(2):
        with pytest.raises((Boom, CircuitBreakerOpen)):
            await a.acall(fail)
    # The trip script runs on this loop's asyncio client: wait without blocking the loop.
    for _ in range(300):
        if b.state is State.OPEN:
            break
        await asyncio.sleep(0.01)
    assert b.state is State.OPEN and b.trip_count == 1
    await store_a.aclose()
    await client.aclose()


def test_keys_carry_a_hash_tag_and_expire(
    redis_server_url: str, namespace: str, make_store: Callable[..., Any]
) -> None:
    store = make_store(key_ttl=60.0)
    breaker = CircuitBreaker(consecutive_failures(1), name="m", registry=None, store=store)
    _trip(breaker, 1)
    client = redis.Redis.from_url(redis_server_url)
    keys = sorted(k.decode() for k in client.scan_iter(match=f"{namespace}:*"))
    assert keys == [f"{namespace}:{{m}}:state"]
    slots = {key_slot(k.encode()) for k in store.state_keys("m")}
    assert len(slots) == 1  # one Redis Cluster slot per breaker
    assert 0 < client.pttl(keys[0]) <= 60_000
    client.close()


def test_scripts_reload_after_script_flush(
    redis_server_url: str, make_store: Callable[..., Any]
) -> None:
    store = make_store()
    breaker = CircuitBreaker(consecutive_failures(1), name="m", registry=None, store=store)
    client = redis.Redis.from_url(redis_server_url)
    client.script_flush()  # the server forgot every script: EVALSHA answers NOSCRIPT
    client.close()
    _trip(breaker, 1)
    assert breaker.state is State.OPEN and breaker.trip_count == 1
    assert store.available


def test_closed_calls_make_no_redis_round_trip(
    redis_server_url: str, make_store: Callable[..., Any]
) -> None:
    store = make_store(refresh_interval=60.0)
    breaker = CircuitBreaker(consecutive_failures(5), name="m", registry=None, store=store)
    client = redis.Redis.from_url(redis_server_url)
    before = int(client.info("stats")["total_commands_processed"])
    for _ in range(500):
        breaker.call(lambda: None)
    with pytest.raises(Boom):
        breaker.call(_fail)  # a failure that does not trip stays local too
    after = int(client.info("stats")["total_commands_processed"])
    client.close()
    assert after - before <= 5  # INFO itself, at most a stray refresh; not 501 calls


def test_half_open_with_fake_clock_needs_the_fleet_cool_down(
    make_store: Callable[..., Any],
) -> None:
    # The local clock says the cool-down is over; Redis's clock says not yet: still rejected.
    clock = FakeClock()
    breaker = CircuitBreaker(
        consecutive_failures(1),
        name="m",
        half_open_after=30.0,
        registry=None,
        clock=clock,
        store=make_store(),
    )
    _trip(breaker, 1)
    clock.advance(31)
    with pytest.raises(CircuitBreakerOpen) as info:
        breaker.call(lambda: None)
    assert 29.0 < info.value.retry_after <= 30.0


def test_reset_closes_the_fleet(make_store: Callable[..., Any]) -> None:
    a = CircuitBreaker(consecutive_failures(1), name="m", registry=None, store=make_store())
    b = CircuitBreaker(consecutive_failures(1), name="m", registry=None, store=make_store())
    _trip(a, 1)
    assert _until(lambda: b.state is State.OPEN)
    b.reset()
    assert _until(lambda: a.state is State.CLOSED)
    assert a.call(lambda: 7) == 7


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("timeout", 0, "timeout must be a finite number of seconds > 0"),
        ("refresh_interval", -1, "refresh_interval must be"),
        ("namespace", "a{b}", "namespace must be a non-empty string"),
        ("mode", "shared", "mode must be one of"),
        ("on_unavailable", "ignore", "on_unavailable must be one of"),
    ],
)
def test_bad_options_are_named(option: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedisStore("redis://127.0.0.1:1/0", **{option: value})


def test_bad_client_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="url_or_client must be"):
        RedisStore(42)


def test_an_external_trip_reaches_the_fleet(make_store: Callable[..., Any]) -> None:
    """`trip()` (a failed health probe, an operator) opens the breaker in every process."""
    here = CircuitBreaker(consecutive_failures(5), name="ext", registry=None, store=make_store())
    there = CircuitBreaker(consecutive_failures(5), name="ext", registry=None, store=make_store())
    assert here.trip() is True
    assert here.state is State.OPEN
    assert _until(lambda: there.state is State.OPEN)
    assert there.trip_count == 1
