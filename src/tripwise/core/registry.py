"""Named breakers: one name, one instance, per registry."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tripwise.core.breaker import CircuitBreaker
    from tripwise.core.shared import StateStore

logger = logging.getLogger("tripwise.registry")


def _call_observer(observer: Callable[[CircuitBreaker], object], breaker: CircuitBreaker) -> None:
    try:
        observer(breaker)
    except Exception:
        logger.exception("registry observer %r failed for %r", observer, breaker.name)


class Registry:
    """A set of breakers by name. The process-wide one is ``default_registry``; tests can make
    their own and pass ``registry=`` to keep names apart."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._observers: list[Callable[[CircuitBreaker], object]] = []
        self.default_store: StateStore | None = None
        """The store of breakers created in this registry without ``store=`` (None: memory)."""

    def subscribe(self, observer: Callable[[CircuitBreaker], object]) -> None:
        """Call ``observer(breaker)`` for every breaker added from now on (exporters use it to
        attach their listeners before the breaker's first call)."""
        with self._lock:
            self._observers = [*self._observers, observer]

    def unsubscribe(self, observer: Callable[[CircuitBreaker], object]) -> None:
        with self._lock:
            self._observers = [o for o in self._observers if o is not observer]

    def _notify(self, breaker: CircuitBreaker) -> None:
        for observer in self._observers:
            _call_observer(observer, breaker)

    def set_default_store(self, store: StateStore | None) -> None:
        """Share the state of breakers created from now on through ``store`` (None: memory)."""
        if store is not None and not callable(getattr(store, "attach", None)):
            raise TypeError(f"store must be a state store (e.g. RedisStore), got {store!r}")
        self.default_store = store

    def add(self, breaker: CircuitBreaker) -> None:
        with self._lock:
            existing = self._breakers.get(breaker.name)
            if existing is not None and existing is not breaker:
                raise ValueError(
                    f"a breaker named {breaker.name!r} is already registered; use "
                    "CircuitBreaker.get(name) to reuse it, or pass registry=None"
                )
            self._breakers[breaker.name] = breaker
        if existing is None:
            self._notify(breaker)

    def get(self, name: str) -> CircuitBreaker:
        with self._lock:
            try:
                return self._breakers[name]
            except KeyError:
                raise KeyError(f"no circuit breaker named {name!r}") from None

    def find(self, name: str) -> CircuitBreaker | None:
        with self._lock:
            return self._breakers.get(name)

    def get_or_create(self, name: str, factory: Callable[[], CircuitBreaker]) -> CircuitBreaker:
        """The breaker named ``name``, made by ``factory()`` (with ``registry=None``) if new."""
        with self._lock:
            existing = self._breakers.get(name)
            if existing is not None:
                return existing
            breaker = factory()
            breaker.registry = self
            self._breakers[name] = breaker
        self._notify(breaker)
        return breaker

    def remove(self, name: str) -> None:
        with self._lock:
            self._breakers.pop(name, None)

    def all(self) -> dict[str, CircuitBreaker]:
        with self._lock:
            return dict(self._breakers)

    def reset_all(self) -> None:
        for breaker in self.all().values():
            breaker.reset()

    def clear(self) -> None:
        with self._lock:
            self._breakers.clear()

    def __iter__(self) -> Iterator[CircuitBreaker]:
        return iter(self.all().values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._breakers)


default_registry = Registry()
