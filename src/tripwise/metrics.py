"""ml-breaker's Prometheus entry point at the path its README gives:
``from tripwise.metrics import PrometheusMetrics`` then ``PrometheusMetrics.register()`` once at
startup exports the ``ml_breaker_*`` metrics of every breaker (see
:class:`tripwise.observe.PrometheusMetrics`).

As in ml-breaker, the import works on a core install and ``register()`` raises ``ImportError``
naming the extra when prometheus-client is missing. New code uses
:func:`tripwise.observe.register_metrics`, which offers the other presets.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PrometheusMetrics"]

try:
    from tripwise.observe.prometheus import PrometheusMetrics
except ImportError as _missing:  # a core install: fail when used, not when imported
    _reason = _missing

    class PrometheusMetrics:  # type: ignore[no-redef]
        """Stands in for :class:`tripwise.observe.PrometheusMetrics` without prometheus-client."""

        @classmethod
        def register(cls, *args: Any, **kwargs: Any) -> Any:
            raise ImportError(
                "PrometheusMetrics needs prometheus-client: pip install 'tripwise[prometheus]' "
                "(from a clone: pip install '.[prometheus]')"
            ) from _reason
