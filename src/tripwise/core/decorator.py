"""``@circuit_breaker(...)``: the ml-breaker-style decorator."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from tripwise.core.breaker import CircuitBreaker
from tripwise.core.conditions import Condition
from tripwise.core.config import BreakerConfig
from tripwise.core.guard import check_fallback
from tripwise.core.registry import Registry, default_registry
from tripwise.core.validation import check_exception_types, check_name, shown

F = TypeVar("F", bound=Callable[..., Any])

_UNSET: Any = object()


def circuit_breaker(
    trip_on: Any = None,
    fallback: Any = _UNSET,
    half_open_after: Any = _UNSET,
    recovery_threshold: Any = _UNSET,
    name: str | None = None,
    require_quality_signal: Any = _UNSET,
    on_state_change: Any = _UNSET,
    *,
    registry: Registry | None = default_registry,
    **options: Any,
) -> Any:
    """Guard a sync or async function (or a generator function) with a breaker.

    The positional parameters are ml-breaker's, in its order (``circuit_breaker(cond,
    fallback)`` works); ``options`` are :class:`CircuitBreaker`'s other keyword arguments
    (``half_open_max_calls``, ``score_fn``, ``store``...). Defaults are the breaker's:
    ``trip_on=consecutive_failures(5)``, ``half_open_after=60.0``, ``recovery_threshold=2``,
    no fallback (``fallback=None`` or ``"raise"``: a rejected call raises CircuitBreakerOpen).

    Functions decorated with the same ``name`` share one breaker; without a name the breaker
    is named ``module.qualname`` of the function. Decorating with a name that already has a
    breaker and giving settings that differ from that breaker's is a ValueError (the first
    breaker's settings would silently win). ``fn.breaker`` is the breaker. Usable bare
    (``@circuit_breaker``) too.
    """
    positional = {
        "fallback": fallback,
        "half_open_after": half_open_after,
        "recovery_threshold": recovery_threshold,
        "require_quality_signal": require_quality_signal,
        "on_state_change": on_state_change,
    }
    options.update({k: v for k, v in positional.items() if v is not _UNSET})
    if (
        trip_on is not None
        and not isinstance(trip_on, Condition)
        and (inspect.isfunction(trip_on) or inspect.ismethod(trip_on))
        and not callable(getattr(trip_on, "reset", None))
    ):
        return circuit_breaker(name=name, registry=registry, **options)(trip_on)
    if name is not None:
        check_name(name)

    def decorate(fn: F) -> F:
        breaker_name = name or _derived_name(fn)
        if registry is None:
            return CircuitBreaker(trip_on, name=breaker_name, registry=None, **options).decorate(fn)
        breaker = registry.find(breaker_name)
        if breaker is None:
            try:
                breaker = CircuitBreaker(trip_on, name=breaker_name, registry=registry, **options)
            except ValueError:
                breaker = registry.find(breaker_name)  # another thread registered it first
                if breaker is None:
                    raise
                _check_same(breaker, trip_on, options)
        else:
            _check_same(breaker, trip_on, options)
        return breaker.decorate(fn)

    return decorate


def _derived_name(fn: Any) -> str:
    """``module.qualname`` of a function; a callable without a ``__qualname__`` (a
    ``functools.partial``, an object with ``__call__``) has no name that is the same in every
    process, so it needs ``name=``."""
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(qualname, str):
        raise ValueError(
            f"cannot name a breaker after {type(fn).__name__} object {shown(fn)} (it has no "
            "__qualname__, so a derived name would differ per object and per process): pass "
            "name= to circuit_breaker()"
        )
    return f"{getattr(fn, '__module__', None) or '?'}.{qualname}"


def _score_fns(trip_on: Any) -> list[int]:
    """The identities of the score_fn of each condition in ``trip_on`` (in order)."""
    if not isinstance(trip_on, Condition):
        return []  # (a user object: compared by its repr only)
    return [id(c.score_fn) for c in trip_on.walk()]


def _check_same(breaker: CircuitBreaker, trip_on: Any, options: dict[str, Any]) -> None:
    """Refuse settings for an existing breaker that differ from what it has."""
    conflicts: list[str] = []
    if trip_on is not None and repr(trip_on) != repr(breaker.trip_on):
        conflicts.append(f"trip_on={trip_on!r} (it has {breaker.trip_on!r})")
    elif trip_on is not None and _score_fns(trip_on) != _score_fns(breaker.trip_on):
        # (a repr shows "score_fn=...": two rules that differ only there look the same)
        conflicts.append(f"trip_on={trip_on!r} with another score_fn than its conditions'")
    config = breaker.config
    for key, value in options.items():
        if key in ("record_exceptions", "ignore_exceptions"):
            value = check_exception_types(key, value)
        if key in BreakerConfig.__dataclass_fields__:
            current = getattr(config, key)
            same = current is value if callable(current) or callable(value) else current == value
        elif key == "fallback":
            current = breaker.fallback
            stored = check_fallback(value)
            same = stored is breaker._fallback or (not callable(stored) and stored == current)
        elif key == "on_state_change":
            current = "its callbacks"
            same = value is None or value in breaker._state_callbacks
        else:
            continue  # clock, rng, store, listeners: not part of the comparable configuration
        if not same:
            conflicts.append(f"{key}={value!r} (it has {current!r})")
    if conflicts:
        raise ValueError(
            f"a circuit breaker named {breaker.name!r} already exists with other settings: "
            + "; ".join(conflicts)
            + ". Give this function its own name=, or decorate both with one CircuitBreaker "
            "object."
        )
