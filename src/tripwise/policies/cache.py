"""Where the fallback chain keeps the last good answer per key.

The cache tier talks to a backend through a two-method protocol, so the in-memory
:class:`MemoryCache` can be swapped for a shared one (Redis) without touching the chain.
Timestamps are wall-clock seconds (``time.time``) so an entry written by one process has a
meaningful age in another.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from tripwise.core.validation import check_int
from tripwise.policies._checks import check_callable


@runtime_checkable
class CacheBackend(Protocol):
    """Storage for cached answers.

    ``get(key)`` returns ``(value, stored_at)`` or None when there is no live entry;
    ``set(key, value, stored_at, ttl)`` stores an answer that may be dropped after ``ttl``
    seconds. A backend may also define coroutine methods ``aget``/``aset`` with the same
    arguments; the chain's ``acall`` then uses them.
    """

    def get(self, key: str) -> tuple[Any, float] | None: ...

    def set(self, key: str, value: Any, stored_at: float, ttl: float) -> None: ...


class MemoryCache:
    """An in-process LRU cache with a TTL per entry and a bound on the number of entries.
    Thread-safe; ``clock`` (wall seconds) is injectable for tests."""

    def __init__(self, max_entries: int = 1024, *, clock: Callable[[], float] | None = None):
        self.max_entries = check_int("max_entries", max_entries)
        check_callable("clock", clock, "a callable returning seconds")
        self._clock = clock if clock is not None else time.time
        self._lock = threading.Lock()
        self._data: OrderedDict[str, tuple[Any, float, float]] = OrderedDict()

    def get(self, key: str) -> tuple[Any, float] | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            value, stored_at, expires_at = entry
            if self._clock() >= expires_at:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value, stored_at

    def set(self, key: str, value: Any, stored_at: float, ttl: float) -> None:
        data = self._data
        self._lock.acquire()
        try:
            if key in data:
                data.move_to_end(key)
            data[key] = (value, stored_at, stored_at + ttl)  # a new key lands at the end
            if len(data) > self.max_entries:
                data.popitem(last=False)
        finally:
            self._lock.release()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __repr__(self) -> str:
        return f"MemoryCache(max_entries={self.max_entries})"
