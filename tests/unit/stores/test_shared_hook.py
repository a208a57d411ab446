"""The core's shared-state hook, driven by an in-process fake store (no I/O, fake clock)."""

from __future__ import annotations

from typing import Any

import pytest

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    Mode,
    SharedState,
    State,
    consecutive_failures,
)
from tripwise.stores import MemoryStore, UnavailablePolicy
from tripwise.stores.base import check_policy


class Boom(Exception):
    pass


def _fail() -> None:
    raise Boom


class FakeFleet:
    """A store whose 'fleet' is one shared record in memory, with scriptable answers."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.state = SharedState(State.CLOSED, 0, 0)
        self.opened = 0.0
        self.permits = 0
        self.successes = 0
        self.calls: list[str] = []
        self.local = False  # answer None: "decide locally"

    def attach(self, breaker: CircuitBreaker) -> Any:
        fleet = self

        class Link:
            def sync(self) -> None:
                breaker.apply_shared_state(fleet.view())

            def published(
                self, old: State, new: State, open_duration: float, *, reset: bool = False
            ) -> Any:
                fleet.calls.append(f"published {old.value}->{new.value}")
                if fleet.local:
                    return None
                if reset:
                    fleet.move(State.CLOSED)
                elif fleet.state.state is not State.OPEN:
                    fleet.move(State.OPEN, trips=1, duration=open_duration)
                return fleet.view()

            def acquire_probe(self, max_calls: int) -> Any:
                fleet.calls.append("acquire_probe")
                if fleet.local:
                    return None
                if fleet.state.state is State.OPEN:
                    fleet.move(State.HALF_OPEN)
                granted = fleet.permits < max_calls
                fleet.permits += granted
                return fleet.view(), granted

            def probe_done(self, success: bool | None, threshold: int) -> Any:
                fleet.calls.append(f"probe_done {success}")
                fleet.permits -= 1
                if success:
                    fleet.successes += 1
                    if fleet.successes >= threshold:
                        fleet.move(State.CLOSED)
                return fleet.view() if success else None

            def accept(self, shared: SharedState) -> bool:
                return True

        return Link()

    def move(self, state: State, trips: int = 0, duration: float = 0.0) -> None:
        s = self.state
        self.state = SharedState(
            state, s.trip_count + trips, s.generation + 1, 0.0, duration or s.open_duration, 0
        )
        self.opened = self.clock() if state is State.OPEN else self.opened
        self.permits = self.successes = 0

    def view(self) -> SharedState:
        s = self.state
        elapsed = self.clock() - self.opened if s.state is State.OPEN else 0.0
        return SharedState(s.state, s.trip_count, s.generation, elapsed, s.open_duration, 0)


def _breaker(fleet: FakeFleet, **options: Any) -> CircuitBreaker:
    options.setdefault("half_open_after", 10.0)
    options.setdefault("name", "shared")  # a shared store needs a name
    return CircuitBreaker(
        consecutive_failures(2), registry=None, clock=fleet.clock, store=fleet, **options
    )


def test_trip_is_published_and_the_fleet_answer_is_adopted() -> None:
    fleet = FakeFleet(FakeClock())
    breaker = _breaker(fleet)
    fleet.state = SharedState(State.CLOSED, 4, 7)  # the fleet already tripped 4 times
    with pytest.raises(Boom):
        breaker.call(_fail)
    with pytest.raises(CircuitBreakerOpen):
        breaker.call(_fail)
    assert fleet.calls == ["published closed->open"]
    assert breaker.state is State.OPEN and breaker.trip_count == 5


def test_closed_successes_never_ask_the_store() -> None:
    fleet = FakeFleet(FakeClock())
    breaker = _breaker(fleet)
    guarded = breaker(lambda: 1)
    for _ in range(100):
        guarded()
    with pytest.raises(Boom):
        breaker.call(_fail)
    assert fleet.calls == []


def test_probes_come_from_the_fleet_and_recovery_closes_it() -> None:
    clock = FakeClock()
    fleet = FakeFleet(clock)
    breaker = _breaker(fleet, half_open_max_calls=1, recovery_threshold=1)
    fleet.move(State.OPEN, trips=1, duration=10.0)
    breaker.apply_shared_state(fleet.view())
    assert breaker.state is State.OPEN
    clock.advance(5)
    with pytest.raises(CircuitBreakerOpen):
        breaker.call(lambda: 1)  # cooling down: rejected locally, no question asked
    assert fleet.calls == []
    clock.advance(5)
    fleet.permits = 0
    assert breaker.call(lambda: 1) == 1  # the fleet granted the probe; it succeeded
    assert fleet.calls == ["acquire_probe", "probe_done True"]
    assert breaker.state is State.CLOSED


def test_no_permit_left_is_a_rejection_with_zero_retry_after() -> None:
    clock = FakeClock()
    fleet = FakeFleet(clock)
    breaker = _breaker(fleet, half_open_max_calls=1)
    fleet.move(State.HALF_OPEN)
    fleet.permits = 1  # another process holds the only permit
    breaker.apply_shared_state(fleet.view())
    with pytest.raises(CircuitBreakerOpen) as info:
        breaker.call(lambda: 1)
    assert info.value.retry_after == 0.0


def test_none_answers_fall_back_to_the_local_state_machine() -> None:
    clock = FakeClock()
    fleet = FakeFleet(clock)
    fleet.local = True
    breaker = _breaker(fleet, recovery_threshold=1)
    for _ in range(2):
        with pytest.raises((Boom, CircuitBreakerOpen)):
            breaker.call(_fail)
    assert breaker.state is State.OPEN and breaker.trip_count == 1
    clock.advance(10)
    assert breaker.call(lambda: 1) == 1
    assert breaker.state is State.CLOSED


def test_pushed_state_is_ignored_while_forced_open() -> None:
    fleet = FakeFleet(FakeClock())
    breaker = _breaker(fleet)
    breaker.force_open()
    breaker.apply_shared_state(SharedState(State.CLOSED, 0, 99))
    assert breaker.state is State.OPEN
    breaker.reset()  # reset() is published: it closes the fleet
    assert fleet.calls[-1] == "published open->closed"
    assert fleet.state.state is State.CLOSED


def test_state_change_listeners_hear_remote_transitions() -> None:
    fleet = FakeFleet(FakeClock())
    seen: list[tuple[str, str]] = []
    breaker = _breaker(fleet, on_state_change=lambda b, o, n: seen.append((o.value, n.value)))
    fleet.move(State.OPEN, trips=1, duration=10.0)
    breaker.apply_shared_state(fleet.view())
    assert seen == [("closed", "open")]


def test_memory_store_attaches_nothing() -> None:
    breaker = CircuitBreaker(registry=None, store=MemoryStore())
    assert not breaker.shares_state


def test_a_non_store_is_rejected_by_name() -> None:
    with pytest.raises(TypeError, match="store must be a state store"):
        CircuitBreaker(registry=None, store="redis://localhost")  # type: ignore[arg-type]


def test_policy_names() -> None:
    assert check_policy("fail_open") is UnavailablePolicy.FAIL_OPEN
    with pytest.raises(ValueError, match="'local', 'fail_open', 'fail_closed'"):
        check_policy("open")


def test_manual_actions_go_to_a_link_that_shares_them_with_who_and_why() -> None:
    fleet = FakeFleet(FakeClock())
    sent: list[tuple[str, Any, Any]] = []
    breaker = _breaker(fleet)
    link = breaker._link

    def control(action: str, by: Any, reason: Any) -> Any:
        sent.append((action, by, reason))
        return None  # "decide locally": the local action stands

    link.control = control  # type: ignore[union-attr]
    breaker.force_open(by="alice", reason="incident")
    assert breaker.mode is Mode.FORCED_OPEN
    breaker.reset(by="bob")
    breaker.disable()
    assert sent == [
        ("force_open", "alice", "incident"),
        ("reset", "bob", None),
        ("disable", None, None),
    ]
    assert "published open->closed" not in fleet.calls  # reset went through control instead


def test_a_pushed_manual_mode_is_adopted_and_lifted() -> None:
    fleet = FakeFleet(FakeClock())
    breaker = _breaker(fleet)
    breaker.apply_shared_state(SharedState(State.OPEN, 0, 1, mode=Mode.FORCED_OPEN))
    assert breaker.mode is Mode.FORCED_OPEN
    with pytest.raises(CircuitBreakerOpen):
        breaker.call(lambda: 1)
    breaker.apply_shared_state(SharedState(State.CLOSED, 0, 2, mode=Mode.NORMAL))
    assert breaker.mode is Mode.NORMAL and breaker.call(lambda: 1) == 1
