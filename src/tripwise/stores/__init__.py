"""Where breaker state lives: in memory (default) or shared across processes on Redis.

``RedisStore`` needs the ``tripwise[redis]`` extra (redis-py); it is imported on first use so
``import tripwise.stores`` works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tripwise.stores.base import SharedState, StateLink, StateStore, UnavailablePolicy
from tripwise.stores.memory import MemoryStore

if TYPE_CHECKING:
    from tripwise.stores.redis import RedisStore

__all__ = [
    "MemoryStore",
    "RedisStore",
    "SharedState",
    "StateLink",
    "StateStore",
    "UnavailablePolicy",
    "set_default_store",
]


def set_default_store(store: StateStore | None, registry: Any = None) -> None:
    """Make ``store`` the store of every breaker created from now on in ``registry`` (the
    process-wide registry by default) without an explicit ``store=``."""
    if registry is None:
        from tripwise.core.registry import default_registry

        registry = default_registry
    registry.set_default_store(store)


def __getattr__(name: str) -> Any:
    if name == "RedisStore":
        try:
            from tripwise.stores.redis import RedisStore
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("RedisStore needs redis-py: pip install 'tripwise[redis]'") from exc
        return RedisStore
    raise AttributeError(f"module 'tripwise.stores' has no attribute {name!r}")
