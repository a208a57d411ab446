"""ml-breaker 0.1.1's actual module path, ``ml_breaker._metrics`` (its README says
``ml_breaker.metrics``): ``from tripwise._metrics import PrometheusMetrics`` works too."""

from tripwise.metrics import PrometheusMetrics

__all__ = ["PrometheusMetrics"]
