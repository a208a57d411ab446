"""Prometheus metrics of one server (its own registry, so tests can run several apps)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

# (project id, router id, router name, metric, samples) rows
UnmatchedRows = Callable[[], Iterable[tuple[str, str, str, str, int]]]


class _UnmatchedCollector(Collector):
    def __init__(self, rows: UnmatchedRows) -> None:
        self._rows = rows

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "tripwise_ingest_unmatched_samples",
            "Accepted samples that no breaker linked to their router watches (misspelt "
            "metric, unlinked router), by router and metric",
            labels=["project_id", "router_id", "router", "metric"],
        )
        for pid, rid, name, metric, n in self._rows():
            family.add_metric([pid, rid, name, metric], n)
        yield family


class ServerMetrics:
    def __init__(self, streams: Callable[[], int], unmatched: UnmatchedRows = tuple) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ingest_samples = Counter(
            "tripwise_ingest_samples", "Samples accepted by ingest", registry=r
        )
        self.ingest_batches = Counter(
            "tripwise_ingest_batches", "Ingest requests answered 202", registry=r
        )
        self.rejected_samples = Counter(
            "tripwise_ingest_rejected_samples",
            "Samples or requests rejected by ingest, by reason",
            ["reason"],
            registry=r,
        )
        self.evaluation = Histogram(
            "tripwise_evaluation_seconds",
            "Time of one evaluation tick over every breaker",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
            registry=r,
        )
        self.transitions = Counter(
            "tripwise_transitions", "Breaker state transitions", ["to_state"], registry=r
        )
        self.notifications = Counter(
            "tripwise_notifications", "Notification deliveries by result", ["result"], registry=r
        )
        self.evaluation_errors = Counter(
            "tripwise_evaluation_errors",
            "Breaker evaluations, sample additions or dispatches that raised (logged)",
            registry=r,
        )
        r.register(_UnmatchedCollector(unmatched))
        self.streams = Gauge("tripwise_streams_connected", "Open SSE state streams", registry=r)
        self.streams.set_function(lambda: float(streams()))
