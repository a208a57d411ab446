"""Prometheus metrics for every breaker of a registry, in one call.

``register_metrics()`` installs a custom collector that reads ``breaker.stats()`` at scrape time
(state, trips, calls by outcome; nothing on the call path) plus, unless ``histograms=False``, a
listener per breaker that feeds latency and quality histograms. The listener takes breakers off
their lock-free lean path (a listener needs the outcome of every call), which costs a few
microseconds per call; pass ``histograms=False`` where that matters.

Presets name the metrics:

- ``"default"``: ``<prefix>_breaker_state``, ``<prefix>_breaker_trips_total``,
  ``<prefix>_breaker_calls_total{outcome}``, ``<prefix>_breaker_quality``,
  ``<prefix>_breaker_latency_ms``, ``<prefix>_fallback_tier_usage_total{chain,tier}``,
  ``<prefix>_fallback_tier_failures_total{chain,tier}``.
- ``"ml_breaker"``: ``ml_breaker_state`` (0 closed, 1 open, 2 half-open),
  ``ml_breaker_trip_total``, ``ml_breaker_call_total{outcome}``, ``ml_breaker_quality_score``,
  ``ml_breaker_latency_ms``.
- ``"seed"``: ``circuit_breaker_state`` (1 closed, 0.5 half-open, 0 open, so
  ``circuit_breaker_state == 0`` means open), ``circuit_breaker_requests_total``,
  ``circuit_breaker_failures_total``, ``fallback_chain_tier_usage{chain,tier}`` (untyped, so the
  name has no ``_total`` suffix and existing queries work unchanged).
- ``"compat"``: both ``"ml_breaker"`` and ``"seed"``.

Every breaker metric is labelled ``name``. Shared state stores (``RedisStore``) serving the
registry's breakers are exported too, as ``<prefix>_store_*`` labelled ``store`` (Redis
availability, errors, timeouts, outages, resyncs, degraded decisions; see
:mod:`tripwise.observe.store_metrics`), whatever the preset; ``stores=False`` turns them off.

Several presets side by side: call ``register_metrics`` once per preset (``register_metrics()``
then ``register_metrics(preset="compat")``); the store metrics of one prefix are exported once.
A registration whose names are already taken in that Prometheus registry (the same preset
twice, ``"ml_breaker"`` then ``"compat"``) raises ``ValueError`` and registers nothing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector

from tripwise.core.breaker import CircuitBreaker
from tripwise.core.records import CallRecord
from tripwise.core.registry import Registry, default_registry
from tripwise.core.states import State
from tripwise.observe.store_metrics import store_metrics, stores_of

PRESETS = ("default", "ml_breaker", "seed", "compat")
LATENCY_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
QUALITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)

_ML_STATE = {State.CLOSED: 0.0, State.OPEN: 1.0, State.HALF_OPEN: 2.0}
_SEED_STATE = {State.CLOSED: 1.0, State.HALF_OPEN: 0.5, State.OPEN: 0.0}
_PREFIX_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

# Installed collectors, oldest first (guarded by _installed_lock): which one exports the store
# metrics of a prefix, and whether a status app must export breakers itself.
_installed: list[TripwiseCollector] = []
_installed_lock = threading.Lock()


def _expand(preset: str) -> tuple[str, ...]:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    return ("ml_breaker", "seed") if preset == "compat" else (preset,)


def _fill_breaker_metrics(
    stats: list[Any],
    state: GaugeMetricFamily,
    trips: CounterMetricFamily,
    calls: CounterMetricFamily,
    *,
    with_ignored: bool,
) -> None:
    """State (0 closed, 1 open, 2 half-open), trips and calls by outcome of every breaker."""
    for s in stats:
        state.add_metric([s.name], _ML_STATE[s.state])
        trips.add_metric([s.name], s.trip_count)
        calls.add_metric([s.name, "success"], s.successes)
        calls.add_metric([s.name, "failure"], s.failures)
        calls.add_metric([s.name, "rejected"], s.rejected)
        if with_ignored:
            calls.add_metric([s.name, "ignored"], s.ignored)


def _label(value: str) -> str:
    """A label value the exposition can encode: a lone surrogate in one breaker's name would
    otherwise make every scrape fail (UnicodeEncodeError) for all breakers."""
    if value.isascii():
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _safe_labels(family: Metric) -> Metric:
    if any(not v.isascii() for sample in family.samples for v in sample.labels.values()):
        family.samples = [
            sample._replace(labels={k: _label(v) for k, v in sample.labels.items()})
            for sample in family.samples
        ]
    return family


class _HistogramListener:
    """Feeds latency and quality histograms from every completed call of a breaker."""

    def __init__(self, pairs: Sequence[tuple[Histogram, Histogram]]) -> None:
        self._pairs = pairs

    def on_call(self, breaker: CircuitBreaker, record: CallRecord | None, outcome: str) -> None:
        if record is None:
            return
        name = _label(breaker.name)
        for latency, quality in self._pairs:
            latency.labels(name).observe(record.latency_ms)
            if record.quality is not None:
                quality.labels(name).observe(record.quality)


class TripwiseCollector(Collector):
    """Collects the metrics of every breaker in ``registry`` and every fallback chain whose
    breakers live there. Made by :func:`register_metrics`; ``unregister()`` undoes it."""

    def __init__(
        self,
        registry: Registry,
        *,
        prefix: str = "tripwise",
        preset: str = "default",
        histograms: bool = True,
        prometheus_registry: CollectorRegistry | None = None,
        stores: bool | Iterable[Any] = True,
    ) -> None:
        if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
            raise ValueError(
                f"prefix must be a valid Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*),"
                f" got {prefix!r}"
            )
        if not isinstance(registry, Registry):
            raise TypeError(f"registry must be a tripwise Registry or None, got {registry!r}")
        self.presets = _expand(preset)
        self.preset = preset
        self.prefix = prefix
        self.registry = registry
        self.export_stores = stores is not False
        self.extra_stores = [] if isinstance(stores, bool) else list(stores)
        self.prometheus_registry = REGISTRY if prometheus_registry is None else prometheus_registry
        self._lock = threading.Lock()
        self._watched: dict[str, CircuitBreaker] = {}
        self._histograms: list[Histogram] = []
        self._listener: _HistogramListener | None = None
        if histograms:
            pairs = []
            for p in self.presets:
                names = {
                    "default": (f"{prefix}_breaker_latency_ms", f"{prefix}_breaker_quality"),
                    "ml_breaker": ("ml_breaker_latency_ms", "ml_breaker_quality_score"),
                }.get(p)
                if names is None:
                    continue
                latency = Histogram(
                    names[0],
                    "Latency of guarded calls in milliseconds",
                    ["name"],
                    buckets=LATENCY_BUCKETS_MS,
                    registry=None,
                )
                quality = Histogram(
                    names[1],
                    "Quality scores of guarded calls (report_quality or score_fn)",
                    ["name"],
                    buckets=QUALITY_BUCKETS,
                    registry=None,
                )
                pairs.append((latency, quality))
                self._histograms += [latency, quality]
            if pairs:
                self._listener = _HistogramListener(pairs)

    # ------------------------------------------------------------------ registration

    def _watch(self, breaker: CircuitBreaker) -> None:
        if self._listener is None:
            return
        with self._lock:
            if self._watched.get(breaker.name) is not breaker:
                breaker.add_listener(self._listener)
                self._watched[breaker.name] = breaker

    def _watch_new_breakers(self) -> list[CircuitBreaker]:
        breakers = self.registry.all()
        for breaker in breakers.values():
            self._watch(breaker)
        return [breakers[name] for name in sorted(breakers)]

    def install(self) -> TripwiseCollector:
        """Register the histograms and the collector: all of them, or (on a name clash with
        what the Prometheus registry holds already) none, with a ``ValueError``."""
        preg = self.prometheus_registry
        done: list[Any] = []
        with _installed_lock:
            _installed.append(self)
        try:
            for part in [*self._histograms, self]:
                preg.register(part)
                done.append(part)
        except ValueError as exc:
            for part in reversed(done):
                preg.unregister(part)
            with _installed_lock:
                _installed.remove(self)
            raise ValueError(
                f"register_metrics(preset={self.preset!r}, prefix={self.prefix!r}) clashes "
                f"with metrics already in this Prometheus registry ({exc}); nothing was "
                "registered. Register each preset once (or unregister() the earlier collector)."
            ) from exc
        self.registry.subscribe(self._watch)  # breakers created later are watched from birth
        self._watch_new_breakers()
        return self

    def _exports_stores(self) -> bool:
        """Only the oldest installed collector of a (Prometheus registry, prefix) exports the
        store metrics, so several presets side by side do not duplicate them."""
        if not self.export_stores:
            return False
        with _installed_lock:
            for other in _installed:
                if (
                    other.prometheus_registry is self.prometheus_registry
                    and other.prefix == self.prefix
                    and other.export_stores
                ):
                    return other is self
        return True

    def unregister(self) -> None:
        """Remove the collector and histograms, and detach the listeners from the breakers."""
        with _installed_lock:
            if self in _installed:
                _installed.remove(self)
        self.registry.unsubscribe(self._watch)
        self.prometheus_registry.unregister(self)
        for h in self._histograms:
            self.prometheus_registry.unregister(h)
        with self._lock:
            if self._listener is not None:
                for breaker in self._watched.values():
                    breaker.remove_listener(self._listener)
            self._watched.clear()

    # ------------------------------------------------------------------ collection

    def describe(self) -> Iterator[Metric]:
        """The metric families without data: what Prometheus registries check for name clashes
        at registration (touching no breaker)."""
        return self._families([], [], [])

    def collect(self) -> Iterator[Metric]:
        breakers = self._watch_new_breakers()
        stores = stores_of(self.registry, self.extra_stores) if self._exports_stores() else []
        families = self._families([b.stats() for b in breakers], self._chains(), stores)
        return (_safe_labels(family) for family in families)

    def _families(self, stats: list[Any], chains: list[Any], stores: list[Any]) -> Iterator[Metric]:
        for preset in self.presets:
            if preset == "default":
                yield from self._default(stats, chains)
            elif preset == "ml_breaker":
                yield from self._ml_breaker(stats)
            else:
                yield from self._seed(stats, chains)
        if self._exports_stores():
            yield from store_metrics(self.prefix, stores)

    def _chains(self) -> list[Any]:
        from tripwise.policies.chain import all_chains

        return [c for c in all_chains() if c.registry is self.registry]

    def _default(self, stats: list[Any], chains: list[Any]) -> Iterator[Metric]:
        p = self.prefix
        state = GaugeMetricFamily(
            f"{p}_breaker_state",
            "Breaker state: 0 closed, 1 open, 2 half-open",
            labels=["name"],
        )
        trips = CounterMetricFamily(
            f"{p}_breaker_trips", "Times the breaker opened", labels=["name"]
        )
        calls = CounterMetricFamily(
            f"{p}_breaker_calls", "Guarded calls by outcome", labels=["name", "outcome"]
        )
        _fill_breaker_metrics(stats, state, trips, calls, with_ignored=True)
        usage = CounterMetricFamily(
            f"{p}_fallback_tier_usage",
            "Chain calls answered by each tier",
            labels=["chain", "tier"],
        )
        failures = CounterMetricFamily(
            f"{p}_fallback_tier_failures",
            "Chain calls a tier failed to answer",
            labels=["chain", "tier"],
        )
        for chain in chains:
            for tier in chain.tiers:
                usage.add_metric([chain.name, tier.name], tier.usage)
                failures.add_metric([chain.name, tier.name], tier.failures)
        yield from (state, trips, calls, usage, failures)

    def _ml_breaker(self, stats: list[Any]) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "ml_breaker_state", "Current state (0=CLOSED, 1=OPEN, 2=HALF_OPEN)", labels=["name"]
        )
        trips = CounterMetricFamily("ml_breaker_trip", "Total number of trips", labels=["name"])
        calls = CounterMetricFamily(
            "ml_breaker_call", "Total calls by outcome", labels=["name", "outcome"]
        )
        _fill_breaker_metrics(stats, state, trips, calls, with_ignored=False)
        yield from (state, trips, calls)

    def _seed(self, stats: list[Any], chains: list[Any]) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "circuit_breaker_state",
            "Breaker state (1=closed, 0.5=half-open, 0=open)",
            labels=["name"],
        )
        requests = CounterMetricFamily(
            "circuit_breaker_requests", "Calls that ran (successes + failures)", labels=["name"]
        )
        failures = CounterMetricFamily("circuit_breaker_failures", "Failed calls", labels=["name"])
        for s in stats:
            state.add_metric([s.name], _SEED_STATE[s.state])
            requests.add_metric([s.name], s.calls)
            failures.add_metric([s.name], s.failures)
        usage = UnknownMetricFamily(
            "fallback_chain_tier_usage",
            "Chain calls answered by each tier (monotonic)",
            labels=["chain", "tier"],
        )
        for chain in chains:
            for tier in chain.tiers:
                usage.add_metric([chain.name, tier.name], tier.usage)
        yield from (state, requests, failures, usage)


def register_metrics(
    registry: Registry | None = None,
    *,
    prefix: str = "tripwise",
    preset: str = "default",
    histograms: bool = True,
    prometheus_registry: CollectorRegistry | None = None,
    stores: bool | Iterable[Any] = True,
) -> TripwiseCollector:
    """Export every breaker of ``registry`` (the process-wide one by default), including
    breakers created later, to ``prometheus_registry`` (the global one by default).

    ``stores``: export the health of the shared stores serving those breakers (True, the
    default), not (False), or also of these stores (an iterable; e.g. a store whose breakers
    are not created yet)."""
    return TripwiseCollector(
        default_registry if registry is None else registry,
        prefix=prefix,
        preset=preset,
        histograms=histograms,
        prometheus_registry=prometheus_registry,
        stores=stores,
    ).install()


def is_exported(registry: Registry, prometheus_registry: CollectorRegistry) -> bool:
    """Whether ``prometheus_registry`` already has ``registry``'s breakers (some collector
    exports them) or the default names (a collector of another registry uses them, so adding
    ours would clash)."""
    with _installed_lock:
        return any(
            c.prometheus_registry is prometheus_registry
            and (c.registry is registry or ("default" in c.presets and c.prefix == "tripwise"))
            for c in _installed
        )


def breaker_exposition(registry: Registry) -> bytes:
    """The default-preset metrics of ``registry``'s breakers as exposition text, without
    registering anything (what the status app serves when nobody called register_metrics)."""
    scratch = CollectorRegistry(auto_describe=False)
    collector = TripwiseCollector(registry, histograms=False, prometheus_registry=scratch)
    scratch.register(collector)
    return generate_latest(scratch)


class PrometheusMetrics:
    """The ml-breaker entry point: ``PrometheusMetrics.register()`` once at startup exports
    the ``ml_breaker_*`` metrics of every breaker. Calling it again, or after
    ``register_metrics(preset="compat")``, returns the collector already exporting them."""

    _lock = threading.Lock()

    @classmethod
    def register(
        cls,
        registry: Registry | None = None,
        prometheus_registry: CollectorRegistry | None = None,
    ) -> TripwiseCollector:
        reg = default_registry if registry is None else registry
        preg = REGISTRY if prometheus_registry is None else prometheus_registry
        with cls._lock:
            with _installed_lock:
                existing = next(
                    (
                        c
                        for c in _installed
                        if c.registry is reg
                        and c.prometheus_registry is preg
                        and "ml_breaker" in c.presets
                    ),
                    None,
                )
            if existing is None:
                existing = register_metrics(reg, preset="ml_breaker", prometheus_registry=preg)
            return existing
