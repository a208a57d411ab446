"""The Redis store's health in Prometheus: scraped (and parsed with prometheus-client's own
text parser) while Redis runs, while it is killed or paused, and after it returns."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.redis_service import RedisServer
from tripwise import CircuitBreaker, CircuitBreakerOpen, Registry, State, consecutive_failures
from tripwise.observe import register_metrics

FAST = {"timeout": 0.05, "refresh_interval": 0.1, "retry_interval": 0.1}


def scrape(preg: CollectorRegistry) -> dict[tuple[str, str], float]:
    """{(sample name, store label): value} of every ``tripwise_store_*`` sample."""
    text = generate_latest(preg).decode()
    return {
        (s.name, s.labels.get("store", "")): float(s.value)
        for family in text_string_to_metric_families(text)
        if family.name.startswith("tripwise_store_")
        for s in family.samples
    }


def until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def setup(make_store: Callable[..., Any], url: str, **options: Any) -> tuple[Any, ...]:
    registry = Registry()
    store = make_store(url, **FAST, **options)
    breaker = CircuitBreaker(
        consecutive_failures(1), name="model", half_open_after=30.0, registry=registry, store=store
    )
    preg = CollectorRegistry()
    register_metrics(registry, prometheus_registry=preg, histograms=False)
    return store, breaker, preg


def fail(breaker: CircuitBreaker) -> None:
    def boom() -> None:
        raise ConnectionError

    with contextlib.suppress(ConnectionError, CircuitBreakerOpen):
        breaker.call(boom)


def test_healthy_store_is_exported_with_its_configuration(
    make_store: Callable[..., Any], redis_server_url: str, namespace: str
) -> None:
    store, _breaker, preg = setup(make_store, redis_server_url, on_unavailable="fail_closed")
    assert until(lambda: store.stats()["refreshes"] >= 1)
    m = scrape(preg)
    assert m[("tripwise_store_available", namespace)] == 1.0
    assert m[("tripwise_store_breakers", namespace)] == 1.0
    assert m[("tripwise_store_info", namespace)] == 1.0
    assert m[("tripwise_store_redis_errors_total", namespace)] == 0.0
    assert m[("tripwise_store_outages_total", namespace)] == 0.0
    assert m[("tripwise_store_degraded_decisions_total", namespace)] == 0.0
    assert m[("tripwise_store_refreshes_total", namespace)] >= 1.0
    text = generate_latest(preg).decode()
    assert 'mode="shared_state"' in text and 'on_unavailable="fail_closed"' in text


def test_killed_redis_shows_as_an_outage_then_a_resync(
    private_redis: RedisServer, make_store: Callable[..., Any], namespace: str
) -> None:
    _store, breaker, preg = setup(make_store, private_redis.url)
    key = ("tripwise_store_available", namespace)
    assert scrape(preg)[key] == 1.0

    private_redis.stop()
    assert until(lambda: scrape(preg)[key] == 0.0)
    fail(breaker)  # trips on local state: a decision made without Redis
    assert breaker.state is State.OPEN
    m = scrape(preg)
    assert m[("tripwise_store_outages_total", namespace)] == 1.0
    assert m[("tripwise_store_redis_errors_total", namespace)] >= 1.0
    assert m[("tripwise_store_degraded_decisions_total", namespace)] >= 1.0
    assert m[("tripwise_store_resyncs_total", namespace)] == 0.0

    private_redis.start()
    assert until(lambda: scrape(preg)[key] == 1.0)
    m = scrape(preg)
    assert m[("tripwise_store_resyncs_total", namespace)] == 1.0
    assert m[("tripwise_store_outages_total", namespace)] == 1.0


def test_paused_redis_counts_timeouts(
    private_redis: RedisServer, make_store: Callable[..., Any], namespace: str
) -> None:
    _store, _, preg = setup(make_store, private_redis.url)
    private_redis.pause(1500)  # CLIENT PAUSE: the next refresh times out
    assert until(lambda: scrape(preg)[("tripwise_store_available", namespace)] == 0.0)
    m = scrape(preg)
    assert m[("tripwise_store_redis_timeouts_total", namespace)] >= 1.0
    assert (
        m[("tripwise_store_redis_timeouts_total", namespace)]
        <= m[("tripwise_store_redis_errors_total", namespace)]
    )
    # The pause ends by itself; the store notices and resyncs.
    assert until(lambda: scrape(preg)[("tripwise_store_available", namespace)] == 1.0)
    assert scrape(preg)[("tripwise_store_resyncs_total", namespace)] == 1.0


def test_only_stores_serving_the_registry_are_exported(
    make_store: Callable[..., Any], redis_server_url: str, namespace: str
) -> None:
    registry = Registry()
    mine = make_store(redis_server_url, namespace=namespace + "-mine", **FAST)
    other = make_store(redis_server_url, namespace=namespace + "-other", **FAST)
    CircuitBreaker(name="a", registry=registry, store=mine)
    CircuitBreaker(name="b", registry=None, store=other)
    unused = make_store(redis_server_url, namespace=namespace + "-unused", **FAST)

    preg = CollectorRegistry()
    register_metrics(registry, prometheus_registry=preg, histograms=False, stores=[unused])
    labels = {label for name, label in scrape(preg) if name == "tripwise_store_available"}
    assert labels == {namespace + "-mine", namespace + "-unused"}

    quiet = CollectorRegistry()
    register_metrics(registry, prometheus_registry=quiet, histograms=False, stores=False)
    assert scrape(quiet) == {}


def test_two_stores_on_one_namespace_get_distinct_labels(
    make_store: Callable[..., Any], redis_server_url: str, namespace: str
) -> None:
    registry = Registry()
    first, second = make_store(redis_server_url, **FAST), make_store(redis_server_url, **FAST)
    CircuitBreaker(name="a", registry=registry, store=first)
    CircuitBreaker(name="b", registry=registry, store=second)
    preg = CollectorRegistry()
    register_metrics(registry, prometheus_registry=preg, histograms=False)
    labels = {label for name, label in scrape(preg) if name == "tripwise_store_available"}
    assert len(labels) == 2 and all(label.startswith(namespace + "#") for label in labels)
    assert labels == {label for name, label in scrape(preg) if name == "tripwise_store_available"}


def test_lost_state_and_manual_control_are_counted(
    private_redis: RedisServer, make_store: Callable[..., Any], namespace: str
) -> None:
    _store, breaker, preg = setup(make_store, private_redis.url)
    private_redis.command("FLUSHALL")
    assert until(lambda: scrape(preg)[("tripwise_store_state_losses_total", namespace)] == 1.0)
    breaker.force_open(by="ops")
    breaker.reset(by="ops")
    m = scrape(preg)
    assert m[("tripwise_store_controls_total", namespace)] == 2.0
    assert m[("tripwise_store_permits_reclaimed_total", namespace)] == 0.0
