"""The decorator (sync, async, methods), ``fn.breaker``, names and registries."""

from __future__ import annotations

import inspect

import pytest

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    Registry,
    State,
    circuit_breaker,
    consecutive_failures,
    default_registry,
)


def test_decorator_guards_a_sync_function(clock: FakeClock) -> None:
    @circuit_breaker(trip_on=consecutive_failures(2), registry=None, clock=clock)
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b

    assert divide(6, b=3) == 2
    assert divide.__name__ == "divide" and divide.__doc__ == "Divide a by b."
    assert isinstance(divide.breaker, CircuitBreaker)
    for _ in range(2):
        with pytest.raises((ZeroDivisionError, CircuitBreakerOpen)):
            divide(1, 0)
    assert divide.breaker.state is State.OPEN
    with pytest.raises(CircuitBreakerOpen):
        divide(6, 3)


async def test_decorator_guards_an_async_function(clock: FakeClock) -> None:
    @circuit_breaker(trip_on=consecutive_failures(1), registry=None, clock=clock)
    async def fetch(x: int) -> int:
        if x < 0:
            raise ValueError(x)
        return x * 2

    assert inspect.iscoroutinefunction(fetch)
    assert await fetch(4) == 8
    with pytest.raises(CircuitBreakerOpen):
        await fetch(-1)
    with pytest.raises(CircuitBreakerOpen):
        await fetch(4)
    assert fetch.breaker.trip_count == 1


def test_default_name_is_module_and_qualname() -> None:
    registry = Registry()

    @circuit_breaker(registry=registry)
    def score() -> None:
        pass

    expected = f"{__name__}.test_default_name_is_module_and_qualname.<locals>.score"
    assert score.breaker.name == expected
    assert registry.get(expected) is score.breaker


def test_same_name_means_same_instance() -> None:
    registry = Registry()

    @circuit_breaker(name="reranker", trip_on=consecutive_failures(5), registry=registry)
    def v1() -> str:
        return "v1"

    @circuit_breaker(name="reranker", trip_on=consecutive_failures(5), registry=registry)
    def v2() -> str:
        return "v2"

    assert v1.breaker is v2.breaker
    assert registry.all() == {"reranker": v1.breaker}
    assert (v1(), v2()) == ("v1", "v2")
    assert v1.breaker.stats().successes == 2


def test_shared_breaker_trips_for_every_function(clock: FakeClock) -> None:
    registry = Registry()
    opts = {"trip_on": consecutive_failures(2), "registry": registry, "clock": clock}

    @circuit_breaker(name="svc", **opts)
    def a() -> None:
        raise RuntimeError

    opts["trip_on"] = consecutive_failures(2)

    @circuit_breaker(name="svc", **opts)
    def b() -> str:
        return "b"

    with pytest.raises(RuntimeError):
        a()
    with pytest.raises(CircuitBreakerOpen):
        a()
    with pytest.raises(CircuitBreakerOpen):
        b()


def test_separate_registries_keep_names_apart() -> None:
    r1, r2 = Registry(), Registry()
    b1 = CircuitBreaker(name="svc", registry=r1)
    b2 = CircuitBreaker(name="svc", registry=r2)
    assert b1 is not b2
    assert (r1.get("svc"), r2.get("svc")) == (b1, b2)
    assert b1.registry is r1


def test_unregistered_breaker() -> None:
    breaker = CircuitBreaker(name="loner", registry=None)
    assert breaker.registry is None
    assert default_registry.find("loner") is None


def test_duplicate_name_in_one_registry_is_an_error() -> None:
    registry = Registry()
    CircuitBreaker(name="svc", registry=registry)
    with pytest.raises(ValueError, match="svc"):
        CircuitBreaker(name="svc", registry=registry)


def test_registry_lookup_errors_and_helpers(clock: FakeClock) -> None:
    registry = Registry()
    with pytest.raises(KeyError, match="nope"):
        registry.get("nope")
    assert registry.find("nope") is None
    a = CircuitBreaker(consecutive_failures(1), name="a", registry=registry, clock=clock)
    b = CircuitBreaker(name="b", registry=registry)
    assert len(registry) == 2
    assert set(registry) == {a, b}
    with pytest.raises(CircuitBreakerOpen):
        a.call(lambda: 1 / 0)
    registry.reset_all()
    assert a.state is State.CLOSED
    registry.remove("a")
    assert registry.all() == {"b": b}
    registry.clear()
    assert len(registry) == 0


def test_default_registry_get_and_all() -> None:
    @circuit_breaker(name="test_registry.default.svc")
    def fn() -> int:
        return 1

    assert CircuitBreaker.get("test_registry.default.svc") is fn.breaker
    assert CircuitBreaker.all()["test_registry.default.svc"] is fn.breaker
    direct = CircuitBreaker(name="test_registry.default.direct")
    assert CircuitBreaker.get("test_registry.default.direct") is direct
    with pytest.raises(KeyError):
        CircuitBreaker.get("test_registry.default.missing")


def test_default_registry_is_cleaned_between_tests() -> None:
    assert "test_registry.default.svc" not in CircuitBreaker.all()


def test_bare_decorator() -> None:
    registry_before = set(CircuitBreaker.all())

    @circuit_breaker
    def plain() -> str:
        return "ok"

    assert plain() == "ok"
    assert isinstance(plain.breaker, CircuitBreaker)
    assert set(CircuitBreaker.all()) - registry_before == {plain.breaker.name}


def test_breaker_instance_as_decorator_on_methods(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        consecutive_failures(1),
        fallback=lambda self, q: f"fallback:{q}",
        registry=None,
        clock=clock,
    )

    class Client:
        def __init__(self) -> None:
            self.healthy = True

        @breaker
        def ask(self, q: str) -> str:
            if not self.healthy:
                raise ConnectionError
            return f"{id(self)}:{q}"

        @circuit_breaker(registry=None, clock=clock)
        async def aask(self, q: str) -> str:
            return q

    client = Client()
    assert client.ask("x") == f"{id(client)}:x"
    assert client.ask.breaker is breaker  # through the bound method
    assert Client.ask.breaker is breaker
    client.healthy = False
    assert client.ask("y") == "fallback:y"  # tripping call, fallback gets self too
    assert breaker.state is State.OPEN
    assert isinstance(client.aask.breaker, CircuitBreaker)


async def test_async_method(clock: FakeClock) -> None:
    class Client:
        @circuit_breaker(registry=None, clock=clock)
        async def ask(self, q: str) -> str:
            return q.upper()

    assert await Client().ask("hi") == "HI"


def test_decorating_a_non_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="callable"):
        CircuitBreaker(registry=None)(42)  # type: ignore[arg-type]


def test_unknown_decorator_option_is_named() -> None:
    with pytest.raises(TypeError, match="half_open_afterr"):

        @circuit_breaker(half_open_afterr=5, registry=None)
        def fn() -> None:
            pass


def test_bad_decorator_option_raises_at_decoration(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="half_open_after"):

        @circuit_breaker(half_open_after=0, registry=None)
        def fn() -> None:
            pass
