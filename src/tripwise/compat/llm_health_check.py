"""The seed's ``llm_health_check`` module: ``get_health_checker()`` and ``CircuitBreakerError``.

Built on :class:`tripwise.policies.HealthChecker`. Endpoints registered here are probed the
Ollama way: ``GET <origin>/api/health`` (the seed's URL), falling back to ``/api/tags`` (what
a real Ollama serves) when that answers 404. Background probes every 30 s run while the
checker is started (``await checker.start()`` or ``checker.start_in_thread()``)::

    from tripwise.compat.llm_health_check import get_health_checker

    checker = get_health_checker()
    checker.register_endpoint("http://localhost:11434/v1", failure_threshold=5,
                              recovery_timeout_seconds=120)
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from tripwise.llm.errors import CircuitBreakerError
from tripwise.policies.health import HealthChecker, HealthStatus

__all__ = ["CircuitBreakerError", "HealthStatus", "LLMHealthChecker", "get_health_checker"]


def _origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
    return f"{parts.scheme}://{parts.netloc}"


class LLMHealthChecker(HealthChecker):
    """A :class:`HealthChecker` whose endpoints are LLM servers (Ollama by default)."""

    def register_endpoint(
        self,
        endpoint: str,
        failure_threshold: int = 3,
        recovery_timeout_seconds: float = 60.0,
        *,
        health_url: str | None = None,
        probe: Any = None,
        **kwargs: Any,
    ) -> HealthStatus:
        """As :meth:`HealthChecker.register_endpoint`; without a ``probe`` or ``health_url``
        the endpoint is probed the Ollama way (``/api/health``, then ``/api/tags``). Other
        keyword arguments (``interval``, ``timeout``, ...) pass through."""
        if probe is None and health_url is None and isinstance(endpoint, str):
            origin = _origin(endpoint)
            probe = self._ollama_probe(origin)
            health_url = origin + "/api/health"
        return super().register_endpoint(
            endpoint,
            failure_threshold,
            recovery_timeout_seconds,
            health_url=health_url,
            probe=probe,
            **kwargs,
        )

    def get_metrics_summary(self, endpoint: str) -> dict[str, Any]:
        """The seed's summary: as the native one, with ``avg_response_time_ms`` 0.0 (not
        None) before the first request, so ``f"{summary['avg_response_time_ms']:.1f}"`` works."""
        summary = super().get_metrics_summary(endpoint)
        if summary.get("avg_response_time_ms") is None:
            summary["avg_response_time_ms"] = 0.0
        return summary

    def _ollama_probe(self, origin: str) -> Any:
        async def probe() -> bool:
            import httpx

            async with httpx.AsyncClient() as client:
                r = await client.get(origin + "/api/health")
                if r.status_code == 404:
                    r = await client.get(origin + "/api/tags")
            return bool(200 <= r.status_code < 300)

        return probe


_checker: LLMHealthChecker | None = None
_lock = threading.Lock()


def get_health_checker() -> LLMHealthChecker:
    """The process-wide LLM health checker (its breakers live in the default registry)."""
    global _checker
    with _lock:
        if _checker is None:
            _checker = LLMHealthChecker()
        return _checker
