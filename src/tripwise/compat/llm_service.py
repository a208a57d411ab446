"""The seed's ``llm_service`` module: ``LLMService`` and ``CircuitBreakerError``.

The same :class:`tripwise.llm.LLMService`, except that its breakers come from
:func:`tripwise.compat.llm_health_check.get_health_checker`, so the seed's health-check
examples see the service's requests::

    from tripwise.compat.llm_service import LLMService, CircuitBreakerError

    service = LLMService(base_url="http://localhost:11434/v1", model="llama3.2")
"""

from __future__ import annotations

from typing import Any

from tripwise.compat.llm_health_check import LLMHealthChecker, get_health_checker
from tripwise.llm.errors import CircuitBreakerError
from tripwise.llm.service import LLMService as _LLMService

__all__ = ["CircuitBreakerError", "LLMService"]


class LLMService(_LLMService):
    __doc__ = _LLMService.__doc__

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("enable_circuit_breaker", True) and kwargs.get("health_checker") is None:
            kwargs["health_checker"] = get_health_checker()
        super().__init__(*args, **kwargs)

    def _probe_args(self, client: Any) -> dict[str, Any]:
        if isinstance(self.health_checker, LLMHealthChecker):
            return {}  # the seed's probe: <origin>/api/health, then /api/tags
        return super()._probe_args(client)
