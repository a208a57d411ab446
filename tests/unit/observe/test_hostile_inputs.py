"""Walkthrough findings: bad arguments to the observe API are TypeErrors naming the
parameter, and one breaker with an unencodable name cannot break every scrape."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tripwise import CircuitBreaker, Registry
from tripwise.observe import readiness, register_metrics, snapshot, status_app
from tripwise.observe.prometheus import breaker_exposition


@pytest.mark.parametrize("registry", [math.nan, 5, "default", [1]])
def test_a_registry_that_is_not_one_is_a_type_error(registry: object) -> None:
    for fn in (snapshot, readiness, status_app):
        with pytest.raises(TypeError, match="registry"):
            fn(registry)  # type: ignore[operator]
    with pytest.raises(TypeError, match="registry"):
        register_metrics(registry, prometheus_registry=CollectorRegistry())  # type: ignore[arg-type]


def test_critical_names_given_as_one_string_are_refused() -> None:
    # "abc" used to mean the three breakers "a", "b" and "c" (all missing: never ready)
    reg = Registry()
    with pytest.raises(TypeError, match="critical"):
        readiness(reg, critical="abc")
    with pytest.raises(TypeError, match="liveness_critical"):
        status_app(reg, liveness_critical="db")
    with pytest.raises(TypeError, match="critical"):
        readiness(reg, critical=5)  # type: ignore[arg-type]
    assert readiness(reg, critical=["db"])["missing"] == ["db"]


def test_a_lone_surrogate_in_a_name_is_refused_and_the_scrape_still_works() -> None:
    reg = Registry()
    with pytest.raises(ValueError, match="U\\+D800"):
        CircuitBreaker(name="bad\ud800name", registry=reg)
    CircuitBreaker(name="good", registry=reg).call(lambda: 1)
    prometheus = CollectorRegistry()
    register_metrics(reg, prometheus_registry=prometheus)
    assert 'name="good"' in generate_latest(prometheus).decode()
    assert b'name="good"' in breaker_exposition(reg)
    assert [b.name for b in reg] == ["good"]  # the refused breaker was never registered
