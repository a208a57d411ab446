"""The status snapshot: every breaker (and fallback chain) as one JSON-friendly document.

The shape follows the ``GET /circuit-breakers`` response operators already script against
(``{"circuit_breakers": {name: {"state": ..., "total_requests": ..., ...}}}``) and adds what
tripwise knows on top: rejections, quality, latency, timestamps, chains and tier usage.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from tripwise.core.registry import Registry, default_registry
from tripwise.core.states import Mode, State

if TYPE_CHECKING:
    from tripwise.core.breaker import CircuitBreaker
    from tripwise.policies.chain import FallbackChain


_extra_fields: weakref.WeakKeyDictionary[CircuitBreaker, Callable[[], dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)
_extra_lock = threading.Lock()


def add_status_fields(breaker: CircuitBreaker, fields: Callable[[], dict[str, Any]]) -> None:
    """Merge ``fields()`` into ``breaker``'s entry of every snapshot (a layer above the engine
    that counts more, such as the classic breaker's ``total_timeouts``, reports it here)."""
    with _extra_lock:
        _extra_fields[breaker] = fields


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def breaker_status(breaker: CircuitBreaker, *, now: float | None = None) -> dict[str, Any]:
    """One breaker as plain data. ``total_requests`` counts calls that ran (successes +
    failures); rejected and ignored calls have their own totals."""
    s = breaker.stats()
    now = time.time() if now is None else now
    with _extra_lock:
        extra = _extra_fields.get(breaker)
    status = {
        "state": s.state.value,
        "mode": s.mode.value,
        "total_requests": s.calls,
        "total_successes": s.successes,
        "total_failures": s.failures,
        "total_rejected": s.rejected,
        "total_ignored": s.ignored,
        "failure_rate": s.failure_rate,
        "success_rate": s.success_rate,
        "trip_count": s.trip_count,
        "failed_recoveries": s.failed_recoveries,
        "avg_latency_ms": s.avg_latency_ms,
        "max_latency_ms": s.max_latency_ms,
        "avg_quality": s.avg_quality,
        "last_quality": s.last_quality,
        "quality_count": s.quality_count,
        "opened_at": s.opened_at,
        "state_changed_at": s.state_changed_at,
        "retry_after_seconds": _finite(s.retry_after),
        "uptime_seconds": max(0.0, now - s.created_at),
    }
    if extra is not None:
        status.update(extra())
    return status


def _chains_of(registry: Registry) -> list[FallbackChain]:
    try:
        from tripwise.policies.chain import all_chains
    except ImportError:  # pragma: no cover - policies ships with tripwise
        return []
    return [c for c in all_chains() if c.registry is registry]


def is_unavailable(breaker: CircuitBreaker) -> bool:
    """True while the breaker rejects calls (open, or forced open)."""
    return breaker.mode is Mode.FORCED_OPEN or (
        breaker.state is State.OPEN and breaker.mode is not Mode.DISABLED
    )


def registry_arg(registry: Any) -> Registry:
    """``registry``, or the process-wide one for None; a TypeError for anything else."""
    if registry is None:
        return default_registry
    if not isinstance(registry, Registry):
        raise TypeError(f"registry must be a tripwise Registry or None, got {registry!r}")
    return registry


def names_arg(name: str, names: Any) -> list[str]:
    """Breaker names given as an iterable of strings (a lone string is refused: it would be
    read as one name per character)."""
    if isinstance(names, (str, bytes)):
        raise TypeError(f"{name} must be an iterable of breaker names, not a string: {names!r}")
    try:
        result = list(names)
    except TypeError:
        raise TypeError(f"{name} must be an iterable of breaker names, got {names!r}") from None
    for n in result:
        if not isinstance(n, str):
            raise TypeError(f"{name} must hold breaker names (strings), got {n!r}")
    return result


def readiness(
    registry: Registry | None = None, *, critical: Iterable[str] | None = None
) -> dict[str, Any]:
    """``{"ready": bool, "open": [...]}``: not ready while any critical breaker (all of them
    by default) rejects calls. A critical name with no breaker is reported as ``missing``."""
    registry = registry_arg(registry)
    breakers = registry.all()
    names = sorted(breakers) if critical is None else names_arg("critical", critical)
    missing = [n for n in names if n not in breakers]
    unavailable = [n for n in names if n in breakers and is_unavailable(breakers[n])]
    return {"ready": not unavailable and not missing, "open": unavailable, "missing": missing}


def snapshot(
    registry: Registry | None = None,
    *,
    chains: Iterable[FallbackChain] | None = None,
) -> dict[str, Any]:
    """Every breaker of ``registry`` (the process-wide one by default) and every fallback chain
    whose tier breakers live there (or ``chains``), as JSON-friendly data."""
    registry = registry_arg(registry)
    now = time.time()
    breakers = registry.all()
    statuses = {name: breaker_status(b, now=now) for name, b in sorted(breakers.items())}
    chain_list = _chains_of(registry) if chains is None else list(chains)
    chain_stats = {}
    for chain in chain_list:
        stats = chain.stats()
        for tier in stats["tiers"].values():
            breaker_name = tier.get("breaker")
            if breaker_name in statuses and tier.get("timeouts") is not None:
                statuses[breaker_name]["total_timeouts"] = tier["timeouts"]
        chain_stats[chain.name] = stats["tiers"]
    open_count = sum(1 for b in breakers.values() if is_unavailable(b))
    if not breakers or open_count == 0:
        status = "ok"
    elif open_count == len(breakers):
        status = "down"
    else:
        status = "degraded"
    return {
        "status": status,
        "generated_at": now,
        "circuit_breakers": statuses,
        "fallback_chains": chain_stats,
    }
