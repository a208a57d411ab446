"""Prometheus metrics of one server (its own registry, so tests can run several apps)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServerMetrics:
    def __init__(self, streams: Callable[[], int]) -> None:
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
        self.streams = Gauge("tripwise_streams_connected", "Open SSE state streams", registry=r)
        self.streams.set_function(lambda: float(streams()))
