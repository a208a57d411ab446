"""``/metrics``: the breakers through :mod:`tripwise.observe` (native ``tripwise_breaker_*``
and the seed's ``circuit_breaker_*`` names), plus what only the gateway knows: answers per
route and tier (``fallback_chain_tier_usage{chain,tier}`` as in the seed, and
``tripwise_fallback_tier_usage_total``), failures per tier, fallbacks by reason, responses by
status and the open streams."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector

from tripwise.observe.prometheus import TripwiseCollector

if TYPE_CHECKING:
    from tripwise.core.registry import Registry
    from tripwise.gateway.engine import Engine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _GatewayCollector(Collector):
    def __init__(self, registry: Registry, engine: Engine) -> None:
        self._engine = engine
        # Not installed anywhere: we read its families and add the gateway's tier samples.
        self._collectors = [
            TripwiseCollector(
                registry,
                preset=preset,
                histograms=False,
                prometheus_registry=CollectorRegistry(),
                stores=preset == "default",
            )
            for preset in ("default", "seed")
        ]

    def collect(self) -> Iterator[Metric]:
        stats = self._engine.stats
        served = dict(stats.served)
        families = [f for c in self._collectors for f in c.collect()]
        for family in families:
            if not isinstance(family, (CounterMetricFamily, UnknownMetricFamily)):
                yield family
                continue
            if family.name in ("fallback_chain_tier_usage", "tripwise_fallback_tier_usage"):
                for (route, tier), n in sorted(served.items()):
                    family.add_metric([route, tier], n)
            elif family.name == "tripwise_fallback_tier_failures":
                for (route, tier), n in sorted(stats.failed.items()):
                    family.add_metric([route, tier], n)
            yield family
        fallbacks = CounterMetricFamily(
            "tripwise_gateway_fallbacks",
            "Backends skipped, by route and reason kind (error, quality, breaker_open...)",
            labels=["route", "reason"],
        )
        for (route, kind), n in sorted(stats.fallbacks.items()):
            fallbacks.add_metric([route, kind], n)
        responses = CounterMetricFamily(
            "tripwise_gateway_responses",
            "Responses by route and HTTP status",
            labels=["route", "status"],
        )
        for (route, code), n in sorted(stats.requests.items()):
            responses.add_metric([route, str(code)], n)
        streams = GaugeMetricFamily("tripwise_gateway_open_streams", "Streams being answered")
        streams.add_metric([], len(self._engine.open_streams))
        timeouts = CounterMetricFamily(
            "circuit_breaker_timeouts", "Backend calls that timed out or stalled", labels=["name"]
        )
        for b in self._engine.runtime.live_backends():
            timeouts.add_metric([b.name], b.timeouts)
        yield from (fallbacks, responses, streams, timeouts)


class GatewayMetrics:
    """The exposition served at ``/metrics``."""

    def __init__(self, registry: Registry, engine: Engine, extra: Any = None) -> None:
        self.prometheus = CollectorRegistry(auto_describe=False)
        self.prometheus.register(_GatewayCollector(registry, engine))

    def render(self) -> bytes:
        return generate_latest(self.prometheus)
