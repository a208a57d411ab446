"""Listener dispatch. A listener's exception is logged, never propagated into the guarded call."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from tripwise.core.records import CallRecord
from tripwise.core.states import State

if TYPE_CHECKING:
    from tripwise.core.breaker import CircuitBreaker
    from tripwise.core.errors import CircuitBreakerOpen

logger = logging.getLogger("tripwise.events")


class Listener(Protocol):
    """Any object with some of these methods (all optional):

    - ``on_state_change(breaker, old_state, new_state)``
    - ``on_call(breaker, record, outcome)``: ``outcome`` is ``"success"``, ``"failure"`` or
      ``"ignored"`` (``record`` is ``None`` for ignored calls)
    - ``on_rejection(breaker, error)``: a call was rejected with ``error``
    """


def _safe(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("tripwise listener %r failed", fn)


def dispatch_state_change(
    breaker: CircuitBreaker,
    callbacks: Sequence[Callable[..., Any]],
    listeners: Sequence[Any],
    old: State,
    new: State,
) -> None:
    for cb in callbacks:
        _safe(cb, breaker, old, new)
    for listener in listeners:
        fn = getattr(listener, "on_state_change", None)
        if fn is not None:
            _safe(fn, breaker, old, new)


def dispatch_call(
    breaker: CircuitBreaker, listeners: Sequence[Any], record: CallRecord | None, outcome: str
) -> None:
    for listener in listeners:
        fn = getattr(listener, "on_call", None)
        if fn is not None:
            _safe(fn, breaker, record, outcome)


def dispatch_rejection(
    breaker: CircuitBreaker, listeners: Sequence[Any], error: CircuitBreakerOpen
) -> None:
    for listener in listeners:
        fn = getattr(listener, "on_rejection", None)
        if fn is not None:
            _safe(fn, breaker, error)
