"""The hook through which a breaker shares its state with other processes.

A breaker keeps its state in memory. A *store* (``CircuitBreaker(store=...)``, see
:mod:`tripwise.stores`) may attach a *link* to it; the breaker then consults the link on its slow
path only: when it trips, when its cool-down ends and it wants a half-open probe, when a probe
completes, and on ``reset()``. The link answers with the fleet's :class:`SharedState`, which the
breaker adopts, or with ``None`` ("decide locally"). A link pushes changes it learns about
(another process tripped) through :meth:`CircuitBreaker.apply_shared_state`.

Every link method but ``sync`` is called with the breaker's lock held and must return within a
bounded time. The CLOSED hot path never calls the link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tripwise.core.states import Mode, State

if TYPE_CHECKING:
    from tripwise.core.breaker import CircuitBreaker


@dataclass(frozen=True)
class SharedState:
    """The fleet-wide state of one breaker, as a store reports it.

    ``open_elapsed`` is how long ago (seconds) the breaker opened, measured by the store's clock
    so that processes need no common clock; ``generation`` is the store's version of the state,
    opaque to the breaker. ``mode`` is the fleet's manual mode (``Mode.NORMAL`` meaning the
    breaker's configured mode), or ``None`` when the store does not share manual control.
    """

    state: State
    trip_count: int
    generation: int = 0
    open_elapsed: float = 0.0
    open_duration: float = 0.0
    failed_recoveries: int = 0
    mode: Mode | None = None


class StateLink(Protocol):
    """What a breaker asks its store. ``None`` answers mean "decide locally"."""

    def sync(self) -> None:
        """Load the fleet's state now (called once, without the lock, at the end of the breaker's
        construction; it adopts the state through ``apply_shared_state``)."""

    def published(
        self, old: State, new: State, open_duration: float, *, reset: bool = False
    ) -> SharedState | None:
        """The breaker just moved ``old`` -> ``new`` locally: a trip (to stay open for
        ``open_duration`` seconds) or, with ``reset``, ``reset()``."""

    def acquire_probe(self, max_calls: int) -> tuple[SharedState, bool] | None:
        """The cool-down is over or the breaker is half-open: may this call be a probe?"""

    def probe_done(self, success: bool | None, recovery_threshold: int) -> SharedState | None:
        """A probe finished well (True) or without an outcome (None: its permit is returned)."""

    def accept(self, shared: SharedState) -> bool:
        """Whether a state pushed by the store is still news (not older than what was applied)."""

    # Optional: ``control(action, by, reason) -> SharedState | None``. A link that has it makes
    # ``force_open()``, ``disable()``, ``reset()`` and ``half_open_now()`` (actions
    # ``"force_open"``, ``"disable"``, ``"reset"``, ``"half_open"``) act on the whole fleet,
    # recording who and why; without it only ``reset()`` is published, as a trip-less reset.


class StateStore(Protocol):
    """Anything that can be passed as ``CircuitBreaker(store=...)``."""

    def attach(self, breaker: CircuitBreaker) -> StateLink | None:
        """Called once by the breaker's constructor; ``None`` keeps the state purely in memory."""
