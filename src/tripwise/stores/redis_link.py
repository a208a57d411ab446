"""One breaker's link to a :class:`~tripwise.stores.redis.RedisStore` (shared-state mode).

The link answers the breaker's slow-path questions with one Lua script each and remembers the
fleet's generation it last applied, so a late pub/sub message can never roll a breaker back.
Its methods run with the breaker's lock held (except ``sync`` and ``apply``).
"""

from __future__ import annotations

import itertools
import time
import weakref
from typing import TYPE_CHECKING, Any

from tripwise.core.shared import SharedState
from tripwise.core.states import State
from tripwise.stores import redis_scripts as lua

if TYPE_CHECKING:
    from tripwise.core.breaker import CircuitBreaker
    from tripwise.stores.redis import RedisStore

_STATES = {"c": State.CLOSED, "o": State.OPEN, "h": State.HALF_OPEN}
_PERMITS = itertools.count(1)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_reply(reply: Any) -> tuple[SharedState, bool]:
    """A script's reply ``{state, gen, trips, elapsed_ms, duration_ms, failed, flag}``."""
    st, gen, trips, elapsed, duration, failed, flag = reply
    shared = SharedState(
        state=_STATES[_text(st)],
        trip_count=int(trips),
        generation=int(gen),
        open_elapsed=int(elapsed) / 1000.0,
        open_duration=int(duration) / 1000.0,
        failed_recoveries=int(failed),
    )
    return shared, int(flag) == 1


def parse_message(data: Any) -> tuple[str, SharedState]:
    """A pub/sub announcement ``state|gen|trips|elapsed|duration|failed|name``."""
    st, gen, trips, elapsed, duration, failed, name = _text(data).split("|", 6)
    shared, _ = parse_reply((st, gen, trips, elapsed, duration, failed, 0))
    return name, shared


class RedisLink:
    """The breaker side of the shared state: bookkeeping plus one script per question."""

    __slots__ = (
        "__weakref__",
        "_breaker",
        "_store",
        "_vouched",
        "denied_until",
        "dirty",
        "gen",
        "keys",
        "name",
        "permits",
    )

    def __init__(self, store: RedisStore, breaker: CircuitBreaker) -> None:
        self._store = store
        self._breaker = weakref.ref(breaker)
        self.name = breaker.name
        self.keys = store.state_keys(breaker.name)
        self.gen = -1  # the fleet generation last applied (-1: none yet)
        self.permits: list[str] = []  # probe permits this process holds
        self.dirty: float | None = None  # open duration of a trip made while Redis was away
        self.denied_until = 0.0  # all probe permits taken: do not ask again before this
        self._vouched: dict[int, str] = {}  # id(shared) -> how apply() vouches for it

    @property
    def breaker(self) -> CircuitBreaker | None:
        return self._breaker()

    # ------------------------------------------------------------------ store -> breaker

    def apply(self, shared: SharedState, how: str = "push") -> None:
        """Hand ``shared`` to the breaker. ``how``: ``push`` (pub/sub: only newer generations),
        ``refresh`` (a read: same or newer), ``force`` (resync or policy: always)."""
        breaker = self._breaker()
        if breaker is None:
            return
        self._vouched[id(shared)] = how
        try:
            breaker.apply_shared_state(shared)
        finally:
            self._vouched.pop(id(shared), None)

    def accept(self, shared: SharedState) -> bool:
        how = self._vouched.pop(id(shared), "push")
        gen = shared.generation
        if how == "push":
            self.denied_until = 0.0  # any announcement may mean a probe permit is free again
        if how == "force" or gen > self.gen or (how == "refresh" and gen == self.gen):
            self._adopted(shared)
            return True
        return False

    def _adopted(self, shared: SharedState) -> None:
        if shared.generation != self.gen:
            self.permits.clear()  # permits belong to one half-open round
            self.gen = shared.generation

    # ------------------------------------------------------------------ breaker -> store

    def sync(self) -> None:
        shared = self._store.run_state_script(lua.READ, self, ())
        if shared is None:
            breaker = self._breaker()
            policy = self._store.policy_state(breaker, self) if breaker is not None else None
            if policy is not None:
                self.apply(policy, "force")
            return
        self.apply(shared[0], "force")

    def published(
        self, old: State, new: State, open_duration: float, *, reset: bool = False
    ) -> SharedState | None:
        store = self._store
        if reset:
            answer = store.run_state_script(lua.RESET, self, ())
        else:
            source = "c" if old is State.CLOSED else "h"
            args = (self.gen, source, max(1, round(open_duration * 1000)))
            answer = store.run_state_script(lua.TRIP, self, args)
        if answer is None:
            if not reset and new is State.OPEN and store.on_unavailable.value == "local":
                self.dirty = open_duration
            return store.policy_state(self._breaker(), self)
        self._adopted(answer[0])
        return answer[0]

    def acquire_probe(self, max_calls: int) -> tuple[SharedState, bool] | None:
        store = self._store
        breaker = self._breaker()
        if (
            breaker is not None
            and breaker.state is State.HALF_OPEN
            and time.monotonic() < self.denied_until
            and store.available
        ):
            return SharedState(State.HALF_OPEN, breaker.trip_count, self.gen), False
        permit = f"{store.process_id}:{next(_PERMITS)}"
        args = (max_calls, permit, store.probe_lease_ms)
        answer = store.run_state_script(lua.PROBE, self, args)
        if answer is None:
            policy = store.policy_state(breaker, self)
            return None if policy is None else (policy, False)
        shared, granted = answer
        self._adopted(shared)
        if granted:
            self.permits.append(permit)
        elif shared.state is State.HALF_OPEN:
            self.denied_until = time.monotonic() + store.refresh_interval
        return shared, granted

    def probe_done(self, success: bool | None, recovery_threshold: int) -> SharedState | None:
        permit = self.permits.pop(0) if self.permits else "-"
        outcome = "ok" if success else "release"
        args = (self.gen, permit, outcome, recovery_threshold)
        answer = self._store.run_state_script(lua.PROBE_DONE, self, args)
        if answer is None:
            return None
        self._adopted(answer[0])
        return answer[0] if success else None

    def push_trip(self, open_duration: float) -> SharedState | None:
        """Tell the fleet about a trip made while Redis was away (resync)."""
        args = (self.gen, "c", max(1, round(open_duration * 1000)))
        answer = self._store.run_state_script(lua.TRIP, self, args)
        return None if answer is None else answer[0]

    def __repr__(self) -> str:
        return f"RedisLink({self.name!r}, gen={self.gen})"
