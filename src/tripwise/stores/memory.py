"""The default store: state lives in the breaker's own memory, nothing is shared."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tripwise.core.breaker import CircuitBreaker
    from tripwise.core.shared import StateLink


class MemoryStore:
    """Keep each breaker's state in its own process (what a breaker does without a store).

    It attaches no link, so the breaker runs exactly the in-memory code path: passing
    ``store=MemoryStore()`` costs nothing, on the hot path or anywhere else.
    """

    shared = False

    def attach(self, breaker: CircuitBreaker) -> StateLink | None:
        return None

    def __repr__(self) -> str:
        return "MemoryStore()"
