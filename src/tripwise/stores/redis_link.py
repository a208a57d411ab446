"""One breaker's link to a :class:`~tripwise.stores.redis.RedisStore` (shared-state mode).

The link answers the breaker's slow-path questions with one Lua script each and remembers which
version of the fleet's state it last applied, ``(incarnation, generation)``, so a late pub/sub
message can never roll a breaker back, and a state Redis lost and re-created (new incarnation)
is never ignored as older. It also remembers the fleet's state as last read from Redis
(``known``): that is what it re-seeds a lost state from, what the ``fail_open`` policy keeps
the trip count at, and what a resync compares against to tell whether the fleet moved on
during an outage. Its methods run with the breaker's lock held (except ``sync``, ``apply``,
``resync`` and ``housekeeping``).

On a thread that runs an event loop (an async breaker, or any call made from async code) no
method waits on Redis: the script is sent on the loop's asyncio client and its answer applied
when it arrives. A trip, a probe report or a manual action is adopted locally at once; a probe
permit is requested in the background and handed to the next call that asks (so the first call
after a cool-down is rejected with ``retry_after=0`` while the request is in flight).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tripwise.core.shared import SharedState
from tripwise.core.states import Mode, State
from tripwise.stores import redis_scripts as lua

if TYPE_CHECKING:
    from tripwise.core.breaker import CircuitBreaker
    from tripwise.stores.redis import RedisStore

logger = logging.getLogger("tripwise.stores.redis")

_STATES = {"c": State.CLOSED, "o": State.OPEN, "h": State.HALF_OPEN}
_CODES = {v: k for k, v in _STATES.items()}
_MODES = {"n": Mode.NORMAL, "f": Mode.FORCED_OPEN, "d": Mode.DISABLED}
_MODE_CODES = {v: k for k, v in _MODES.items()}
_PERMITS = itertools.count(1)
_ORPHAN_TRIES = 3  # successful refreshes that try to free a permit we lost track of


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclasses.dataclass(frozen=True)
class RedisState(SharedState):
    """A state as Redis reported it: also its incarnation (which re-created state it is)."""

    incarnation: str = ""


def parse_reply(reply: Any) -> tuple[RedisState, bool, bool]:
    """A script's reply ``{state, gen, trips, elapsed_ms, duration_ms, failed, flag,
    incarnation, mode, reseeded}`` -> (state, flag, reseeded)."""
    st, gen, trips, elapsed, duration, failed, flag, inc, mode, reseeded = reply
    shared = RedisState(
        state=_STATES[_text(st)],
        trip_count=int(trips),
        generation=int(gen),
        open_elapsed=int(elapsed) / 1000.0,
        open_duration=int(duration) / 1000.0,
        failed_recoveries=int(failed),
        mode=_MODES[_text(mode)],
        incarnation=_text(inc),
    )
    return shared, int(flag) == 1, int(reseeded) == 1


def parse_message(data: Any) -> tuple[str, RedisState]:
    """A pub/sub announcement ``state|gen|trips|elapsed|duration|failed|incarnation|mode|name``."""
    st, gen, trips, elapsed, duration, failed, inc, mode, name = _text(data).split("|", 8)
    shared, _, _ = parse_reply((st, gen, trips, elapsed, duration, failed, 0, inc, mode, 0))
    return name, shared


class RedisLink:
    """The breaker side of the shared state: bookkeeping plus one script per question."""

    __slots__ = (
        "__weakref__",
        "_breaker",
        "_known_at",
        "_retired",
        "_store",
        "_vouched",
        "denied_until",
        "dirty",
        "gen",
        "incarnation",
        "keys",
        "known",
        "name",
        "orphans",
        "pending_control",
        "permits",
        "probe_pending",
        "ready",
    )

    def __init__(self, store: RedisStore, breaker: CircuitBreaker) -> None:
        self._store = store
        self._breaker = weakref.ref(breaker)
        self.name = breaker.name
        self.keys = store.state_keys(breaker.name)
        self.gen = -1  # the fleet generation last applied (-1: none yet)
        self.incarnation: str | None = None  # which (re-)creation of the state that gen is in
        self._retired: set[str] = set()  # incarnations Redis lost: their news is stale
        self.known: RedisState | None = None  # the fleet's state as last read from Redis
        self._known_at = 0.0  # time.monotonic() when ``known`` was read
        self.permits: list[str] = []  # probe permits this process holds (probes running)
        self.orphans: dict[str, int] = {}  # permits whose request/report failed -> tries left
        self.dirty: float | None = None  # a trip was made locally while Redis was away
        self.pending_control: tuple[str, str | None, str | None] | None = None
        self.denied_until = 0.0  # all probe permits taken: do not ask again before this
        self.probe_pending = False  # a loop-thread permit request is in flight
        self.ready: tuple[str, float, int] | None = None  # a permit granted to no call yet
        self._vouched: dict[int, str] = {}  # id(shared) -> how apply() vouches for it

    @property
    def breaker(self) -> CircuitBreaker | None:
        return self._breaker()

    # ------------------------------------------------------------------ seeding

    def seed(self) -> tuple[Any, ...]:
        """What a script re-creates a missing state from: the fleet's state as last read
        (its cool-down advanced by the local clock), or a new CLOSED breaker."""
        k = self.known
        if k is None:
            # Never read from Redis: a new breaker. (Trips made meanwhile are local; a resync
            # pushes the one still in effect, and the seed must not count it twice.)
            return ("c", max(self.gen, 0), 0, 0, 1, 0, "n")
        duration = round(k.open_duration * 1000)
        remaining = 0
        if k.state is State.OPEN:
            passed = k.open_elapsed + (time.monotonic() - self._known_at)
            remaining = max(0, round((k.open_duration - passed) * 1000))
        mode = _MODE_CODES.get(k.mode, "n") if k.mode is not None else "n"
        return (_CODES[k.state], k.generation, k.trip_count, remaining, duration,
                k.failed_recoveries, mode)  # fmt: skip

    # ------------------------------------------------------------------ store -> breaker

    def apply(self, shared: SharedState, how: str = "push") -> None:
        """Hand ``shared`` to the breaker. ``how``: ``push`` (pub/sub: only newer versions),
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
        if how == "push":
            self.denied_until = 0.0  # any announcement may mean a probe permit is free again
        if how == "force":
            self.adopted(shared)
            return True
        if not isinstance(shared, RedisState) or shared.incarnation in self._retired:
            return False
        gen = shared.generation
        if (
            shared.incarnation != self.incarnation
            or gen > self.gen
            or (how == "refresh" and gen == self.gen)
        ):
            self.adopted(shared)
            return True
        return False

    def adopted(self, shared: SharedState) -> None:
        """Bookkeeping for a state the breaker adopts (policy states change nothing here)."""
        if not isinstance(shared, RedisState):
            return
        if shared.incarnation != self.incarnation:
            if self.incarnation is not None:
                self._retired.add(self.incarnation)
                self._store.state_lost(self, shared)
            self.incarnation = shared.incarnation
            self.permits.clear()
        if shared.generation != self.gen:
            self.permits.clear()  # permits belong to one half-open round
            self.gen = shared.generation
        self.known = shared
        self._known_at = time.monotonic()

    def _run(self, src: str, args: tuple[Any, ...]) -> tuple[RedisState, bool] | None:
        answer = self._store.run_state_script(src, self, args)
        if answer is None:
            return None
        shared, flag, _ = answer
        self.adopted(shared)
        return shared, flag

    def _async(
        self,
        src: str,
        args: tuple[Any, ...],
        then: Callable[[tuple[RedisState, bool, bool] | None], None],
    ) -> bool:
        """On an event loop's thread: send the script without waiting (True). False: not on a
        loop, or Redis is unreachable (the sync path then answers without any I/O)."""
        store = self._store
        loop = store.running_loop()
        return loop is not None and store.submit(loop, src, self, args, then)

    def _then_apply(self, answer: tuple[RedisState, bool, bool] | None) -> None:
        if answer is not None:
            self.apply(answer[0], "refresh")

    # ------------------------------------------------------------------ breaker -> store

    def sync(self) -> None:
        def then(answer: tuple[RedisState, bool, bool] | None) -> None:
            if answer is not None:  # (a trip's answer may have arrived first: same or newer)
                self.apply(answer[0], "refresh")

        if self._async(lua.READ, (), then):
            return
        answer = self._run(lua.READ, ())
        if answer is None:
            breaker = self._breaker()
            policy = self._store.policy_state(breaker, self) if breaker is not None else None
            if policy is not None:
                self.apply(policy, "force")
            return
        self.apply(answer[0], "force")

    def published(
        self, old: State, new: State, open_duration: float, *, reset: bool = False
    ) -> SharedState | None:
        store = self._store
        args: tuple[Any, ...]
        if reset:
            src, args = lua.CONTROL, ("reset", "", "", store.process_id)
        else:
            source = "c" if old is State.CLOSED else "h"
            src, args = lua.TRIP, (self.gen, source, max(1, round(open_duration * 1000)))

        def then(answer: tuple[RedisState, bool, bool] | None) -> None:
            if answer is not None:
                self.apply(answer[0], "refresh")
            elif not reset and new is State.OPEN and store.on_unavailable.value == "local":
                self.dirty = open_duration

        if self._async(src, args, then):
            return None  # adopted locally now; the fleet's answer is applied when it comes
        answer = self._run(src, args)
        if answer is None:
            if not reset and new is State.OPEN and store.on_unavailable.value == "local":
                self.dirty = open_duration
            return store.policy_state(self._breaker(), self)
        return answer[0]

    def control(self, action: str, by: str | None, reason: str | None) -> SharedState | None:
        """A manual action for the whole fleet (see RedisStore.last_control)."""
        store = self._store
        args = (action, by or "", reason or "", store.process_id)

        def then(answer: tuple[RedisState, bool, bool] | None) -> None:
            if answer is None:
                self.pending_control = (action, by, reason)
            else:
                self.apply(answer[0], "refresh")

        if self._async(lua.CONTROL, args, then):
            store.log_control(self.name, action, by, reason, True)
            return None
        answer = self._run(lua.CONTROL, args)
        store.log_control(self.name, action, by, reason, answer is not None)
        if answer is None:
            self.pending_control = (action, by, reason)  # replayed when Redis returns
            return None
        self.pending_control = None
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
        if store.running_loop() is not None and store.available:
            answer = self._acquire_on_loop(max_calls, breaker)
            if answer is not None:
                return answer
        permit = f"{store.process_id}:{next(_PERMITS)}"
        sent = store.available
        answer = self._run(lua.PROBE, (max_calls, permit, store.probe_lease_ms))
        if answer is None:
            if sent:
                # It may have run anyway (a frozen Redis executes buffered commands on resume):
                # free it once Redis answers again, so it cannot hold a permit nobody uses.
                self.orphans[permit] = _ORPHAN_TRIES
            policy = store.policy_state(breaker, self)
            return None if policy is None else (policy, False)
        shared, granted = answer
        if granted:
            self.permits.append(permit)
        elif shared.state is State.HALF_OPEN:
            self.denied_until = time.monotonic() + store.refresh_interval
        return shared, granted

    def _acquire_on_loop(
        self, max_calls: int, breaker: CircuitBreaker | None
    ) -> tuple[SharedState, bool] | None:
        """The loop thread's permit: one granted in the background earlier, or none yet (a
        request is sent, and this call is refused with retry_after 0)."""
        store = self._store
        trips = breaker.trip_count if breaker is not None else 0
        ready, self.ready = self.ready, None
        if ready is not None:
            token, at, gen = ready
            if gen == self.gen and time.monotonic() - at < store.probe_lease_ms / 2000:
                self.permits.append(token)
                return SharedState(State.HALF_OPEN, trips, self.gen), True
            self.orphans[token] = _ORPHAN_TRIES  # unused: free it
        if not self.probe_pending:
            token = f"{store.process_id}:{next(_PERMITS)}"

            def then(answer: tuple[RedisState, bool, bool] | None) -> None:
                self.probe_pending = False
                if answer is None:
                    self.orphans[token] = _ORPHAN_TRIES
                    return
                shared, granted, _ = answer
                if granted:
                    self.ready = (token, time.monotonic(), shared.generation)
                elif shared.state is State.HALF_OPEN:
                    self.denied_until = time.monotonic() + store.refresh_interval
                self.apply(shared, "refresh")

            self.probe_pending = True
            if not self._async(lua.PROBE, (max_calls, token, store.probe_lease_ms), then):
                self.probe_pending = False
                return None
        return SharedState(State.HALF_OPEN, trips, self.gen), False

    def probe_done(self, success: bool | None, recovery_threshold: int) -> SharedState | None:
        if not self.permits:
            return None  # admitted without a fleet permit: it decides for this process only
        permit = self.permits.pop(0)
        outcome = "ok" if success else "release"
        args = (self.gen, permit, outcome, recovery_threshold)

        def then(answer: tuple[RedisState, bool, bool] | None) -> None:
            if answer is None:
                self.orphans[permit] = _ORPHAN_TRIES
            else:
                self.apply(answer[0], "refresh")

        if self._async(lua.PROBE_DONE, args, then):
            return None  # counted locally now; the fleet's answer is applied when it comes
        answer = self._run(lua.PROBE_DONE, args)
        if answer is None:
            self.orphans[permit] = _ORPHAN_TRIES  # freed when Redis answers again
            return None
        return answer[0] if success else None

    # ------------------------------------------------------------------ maintenance thread

    def housekeeping(self) -> list[tuple[str, tuple[Any, ...]]]:
        """Scripts the refresh adds for this link: renew running probes' leases, free lost
        permits."""
        extra: list[tuple[str, tuple[Any, ...]]] = []
        permits = list(self.permits)
        if permits:
            extra.append((lua.RENEW, (self._store.probe_lease_ms, *permits)))
        if self.orphans:
            tokens = list(self.orphans)
            for token in tokens:
                left = self.orphans.get(token, 0) - 1
                if left <= 0:
                    self.orphans.pop(token, None)
                else:
                    self.orphans[token] = left
            extra.append((lua.RELEASE, tuple(tokens)))
        return extra

    def resync(self, shared: RedisState) -> None:
        """Redis is back: reconcile what happened here during the outage with the fleet.

        If the fleet's state moved on since the outage began (another process tripped, probed
        or recovered it), the fleet wins and stale local transitions are dropped. Otherwise a
        trip made here during the outage and still in effect is pushed to the fleet with what
        is left of its cool-down; one already undone locally (recovered) is not pushed.
        """
        base = self.known
        breaker = self._breaker()
        dirty, self.dirty = self.dirty, None
        if self.pending_control is not None:
            answer = self._run(lua.CONTROL, (*self.pending_control, self._store.process_id))
            if answer is not None:
                self.pending_control = None
                self.apply(answer[0], "refresh")
                return
        if base is None:
            moved = shared.state is not State.CLOSED
        else:
            moved = (shared.state, shared.trip_count, shared.mode) != (
                base.state,
                base.trip_count,
                base.mode,
            ) or (shared.incarnation == base.incarnation and shared.generation != base.generation)
        if (
            not moved
            and dirty is not None
            and breaker is not None
            and shared.state is State.CLOSED
            and breaker.state is not State.CLOSED
        ):
            remaining = max(0.001, breaker.retry_after())
            answer = self._run(lua.TRIP, (self.gen, "c", max(1, round(remaining * 1000))))
            if answer is not None:
                shared = answer[0]
        # Same or newer only: a push that arrived while this read was in flight may be newer.
        self.apply(shared, "refresh")

    def __repr__(self) -> str:
        return f"RedisLink({self.name!r}, gen={self.gen})"
