"""Store health export without Redis: any store with ``stats()`` set as a registry's default
store is scraped; stores without ``stats()`` (MemoryStore) are not."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tripwise import CircuitBreaker, Registry
from tripwise.observe import register_metrics
from tripwise.stores import MemoryStore


class OutageStore:
    """A stand-in shared store in the middle of an outage (attaches nothing)."""

    namespace = "fleet"
    mode = "shared_state"
    on_unavailable = "fail_closed"

    def attach(self, breaker: Any) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {"available": False, "breakers": 2, "outages": 3, "redis_timeouts": 4}


def samples(preg: CollectorRegistry) -> dict[tuple[str, str], float]:
    text = generate_latest(preg).decode()
    return {
        (s.name, s.labels.get("store", "")): float(s.value)
        for family in text_string_to_metric_families(text)
        if family.name.startswith("tripwise_store_")
        for s in family.samples
    }


def test_default_store_of_the_registry_is_exported() -> None:
    registry = Registry()
    registry.set_default_store(OutageStore())
    CircuitBreaker(name="a", registry=registry)
    preg = CollectorRegistry()
    register_metrics(registry, prometheus_registry=preg, histograms=False)
    m = samples(preg)
    assert m[("tripwise_store_available", "fleet")] == 0.0
    assert m[("tripwise_store_outages_total", "fleet")] == 3.0
    assert m[("tripwise_store_redis_timeouts_total", "fleet")] == 4.0
    assert m[("tripwise_store_resyncs_total", "fleet")] == 0.0  # missing counters read as 0
    assert m[("tripwise_store_info", "fleet")] == 1.0
    assert 'on_unavailable="fail_closed"' in generate_latest(preg).decode()


def test_a_memory_store_exports_nothing() -> None:
    registry = Registry()
    registry.set_default_store(MemoryStore())
    CircuitBreaker(name="a", registry=registry)
    preg = CollectorRegistry()
    register_metrics(registry, prometheus_registry=preg, histograms=False)
    assert samples(preg) == {}
