"""``@circuit_breaker(...)``: the ml-breaker-style decorator."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from tripwise.core.breaker import CircuitBreaker
from tripwise.core.conditions import Condition
from tripwise.core.registry import Registry, default_registry

F = TypeVar("F", bound=Callable[..., Any])


def circuit_breaker(
    trip_on: Any = None,
    *,
    name: str | None = None,
    registry: Registry | None = default_registry,
    **options: Any,
) -> Any:
    """Guard a sync or async function with a breaker.

    ``options`` are :class:`CircuitBreaker`'s keyword arguments (``fallback``,
    ``half_open_after``, ``recovery_threshold``, ``require_quality_signal``,
    ``on_state_change``, ``store``...). A registry's ``default_store`` applies when no ``store`` is
    given. Functions decorated with the same ``name`` share one breaker; without
    a name the breaker is named ``module.qualname`` of the function. ``fn.breaker`` is the breaker.
    Usable bare (``@circuit_breaker``) too.
    """
    if (
        trip_on is not None
        and not isinstance(trip_on, Condition)
        and (inspect.isfunction(trip_on) or inspect.ismethod(trip_on))
        and not callable(getattr(trip_on, "reset", None))
    ):
        return circuit_breaker(name=name, registry=registry, **options)(trip_on)

    if registry is not None and options.get("store") is None and registry.default_store is not None:
        options["store"] = registry.default_store  # the factory below builds with registry=None

    def decorate(fn: F) -> F:
        breaker_name = name or f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
        if registry is None:
            breaker = CircuitBreaker(trip_on, name=breaker_name, registry=None, **options)
        else:
            breaker = registry.get_or_create(
                breaker_name,
                lambda: CircuitBreaker(trip_on, name=breaker_name, registry=None, **options),
            )
        return breaker.decorate(fn)

    return decorate
