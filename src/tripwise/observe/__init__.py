"""Observability: status snapshots, a status ASGI app, Prometheus metrics.

The snapshot and ASGI app need nothing beyond tripwise; the Prometheus names
(``register_metrics``, ``TripwiseCollector``, ``PrometheusMetrics``) need the
``tripwise[prometheus]`` extra and are imported on first use.
"""

from __future__ import annotations

from typing import Any

from tripwise.observe.asgi import status_app
from tripwise.observe.snapshot import breaker_status, is_unavailable, readiness, snapshot

_PROMETHEUS = {"register_metrics", "TripwiseCollector", "PrometheusMetrics", "PRESETS"}

__all__ = [
    "PRESETS",
    "PrometheusMetrics",
    "TripwiseCollector",
    "breaker_status",
    "is_unavailable",
    "readiness",
    "register_metrics",
    "snapshot",
    "status_app",
]


def __getattr__(name: str) -> Any:
    if name in _PROMETHEUS:
        try:
            from tripwise.observe import prometheus
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"tripwise.observe.{name} needs prometheus-client: pip install "
                "'tripwise[prometheus]'"
            ) from exc
        return getattr(prometheus, name)
    raise AttributeError(f"module 'tripwise.observe' has no attribute {name!r}")
