"""Prometheus metrics of shared state stores: is Redis there, how often did it fail.

Read from ``store.stats()`` at scrape time, like the breaker metrics: nothing is counted on the
call path. :class:`~tripwise.observe.prometheus.TripwiseCollector` exports every store serving
one of its registry's breakers (or set as the registry's default store), plus any passed as
``stores=``. Families (``<prefix>`` is the collector's prefix), each labelled ``store`` (the
store's namespace):

- ``<prefix>_store_available``: 1 while the store's backend answers, 0 during an outage.
- ``<prefix>_store_info{mode,on_unavailable}``: 1, the store's configuration.
- ``<prefix>_store_breakers``: breakers attached to the store in this process.
- ``<prefix>_store_redis_errors_total``, ``<prefix>_store_redis_timeouts_total``: failed backend
  operations, and those of them that timed out.
- ``<prefix>_store_outages_total``, ``<prefix>_store_resyncs_total``: outages begun, and
  resynchronisations after the backend returned.
- ``<prefix>_store_degraded_decisions_total``: slow-path decisions (trip, probe permit,
  recovery, reset) made without the backend, by the ``on_unavailable`` policy.
- ``<prefix>_store_refreshes_total``, ``<prefix>_store_pushes_total``,
  ``<prefix>_store_flushes_total``: safety-net re-reads, changes learnt from other processes,
  shared-window flushes.
- ``<prefix>_store_state_losses_total``: shared states found lost (FLUSHALL, DEL, eviction, an
  empty restart) and re-created from local state.
- ``<prefix>_store_permits_reclaimed_total``: probe permits freed after their request or
  report was lost; ``<prefix>_store_controls_total``: manual actions sent to the fleet.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tripwise.core.registry import Registry

COUNTERS = {
    "redis_errors": "Failed operations against the store's Redis",
    "redis_timeouts": "Redis operations that timed out (included in redis_errors)",
    "outages": "Times the store's Redis became unreachable",
    "resyncs": "Times the store resynchronised its breakers after Redis returned",
    "degraded_decisions": (
        "Slow-path breaker decisions (trip, probe permit, recovery, reset) made without Redis, "
        "following on_unavailable"
    ),
    "refreshes": "Periodic re-reads of the shared state (safety net under pub/sub)",
    "pushes": "State changes learnt from other processes",
    "flushes": "Shared-window batches flushed to Redis",
    "state_losses": "Shared breaker states found lost by Redis and re-created from local state",
    "permits_reclaimed": "Probe permits freed after their request or report was lost",
    "controls": "Manual actions (force_open, disable, reset, half_open) sent to the fleet",
}


def stores_of(registry: Registry, extra: Iterable[Any] = ()) -> list[Any]:
    """The shared stores to export for ``registry``: ``extra`` plus every live store that serves
    one of its breakers (only stores that have a ``stats()`` method)."""
    found: list[Any] = []
    candidates: list[Any] = list(extra)
    default = registry.default_store
    if default is not None:
        candidates.append(default)
    redis_module = sys.modules.get("tripwise.stores.redis")  # never import redis-py for this
    if redis_module is not None:
        candidates += [s for s in redis_module.live_stores() if s.serves(registry)]
    for store in candidates:
        if callable(getattr(store, "stats", None)) and all(store is not f for f in found):
            found.append(store)
    return found


def _labels(stores: list[Any]) -> list[str]:
    """The ``store`` label of each store: its namespace; stores sharing a namespace in one
    process are told apart by their instance id (stable from scrape to scrape)."""
    bases = [str(getattr(s, "namespace", None) or type(s).__name__) for s in stores]
    return [
        base if bases.count(base) == 1 else f"{base}#{str(getattr(s, 'process_id', id(s)))[-8:]}"
        for base, s in zip(bases, stores, strict=True)
    ]


def store_metrics(prefix: str, stores: Iterable[Any]) -> Iterator[Metric]:
    """The store metric families for ``stores``."""
    available = GaugeMetricFamily(
        f"{prefix}_store_available",
        "1 while the store's Redis answers, 0 while breakers run on the on_unavailable policy",
        labels=["store"],
    )
    info = GaugeMetricFamily(
        f"{prefix}_store_info",
        "Configuration of the store (always 1)",
        labels=["store", "mode", "on_unavailable"],
    )
    breakers = GaugeMetricFamily(
        f"{prefix}_store_breakers",
        "Breakers attached to the store in this process",
        labels=["store"],
    )
    counters = {
        key: CounterMetricFamily(f"{prefix}_store_{key}", doc, labels=["store"])
        for key, doc in COUNTERS.items()
    }
    stores = list(stores)
    for store, label in zip(stores, _labels(stores), strict=True):
        stats = store.stats()
        available.add_metric([label], 1.0 if stats.get("available", True) else 0.0)
        policy = getattr(store, "on_unavailable", "")
        info.add_metric(
            [label, str(getattr(store, "mode", "")), str(getattr(policy, "value", policy))], 1.0
        )
        breakers.add_metric([label], float(stats.get("breakers", 0)))
        for key, family in counters.items():
            family.add_metric([label], float(stats.get(key, 0)))
    yield from (available, info, breakers, *counters.values())
