"""Hypothesis stateful tests of the breaker.

Calls are started and finished in any interleaving (each in-flight call is a ``with breaker:``
block run by hand in its own context), time moves on a fake clock, and manual controls fire at
random. The first machine predicts every decision with a reference model of the documented
state machine (generations included); the second checks the invariants with built-in
conditions: the function never runs while OPEN, never more than ``half_open_max_calls``
probes are in flight, and the counts are exact.
"""

from __future__ import annotations

import contextlib

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import tripwise
from tripwise import CircuitBreaker, CircuitBreakerOpen, FakeClock, Mode, State

from ._helpers import Inflight
from ._state_model import HALF_OPEN_AFTER, MAX_HALF_OPEN_AFTER, Call, Interrupt, Model, Streak

OUTCOMES = st.sampled_from(["success", "failure", "ignored"])
WAITS = st.sampled_from([0.0, 0.0, 0.0, 10.0])  # idle time before a call


class ModelledBreaker(RuleBasedStateMachine):
    """Every admission, rejection, transition and count matches the reference model."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.inflight: list[Call] = []
        self.transitions: list[tuple[State, State]] = []

    @initialize(
        k=st.integers(1, 3),
        max_probes=st.integers(1, 3),
        recovery=st.integers(1, 3),
        backoff=st.sampled_from([1.0, 2.0]),
    )
    def setup(self, k: int, max_probes: int, recovery: int, backoff: float) -> None:
        self.model = Model(k, max_probes, recovery, backoff)
        self.breaker = CircuitBreaker(
            Streak(k),
            half_open_after=HALF_OPEN_AFTER,
            half_open_max_calls=max_probes,
            recovery_threshold=recovery,
            half_open_backoff=backoff,
            max_half_open_after=MAX_HALF_OPEN_AFTER,
            on_state_change=lambda b, old, new: self.transitions.append((old, new)),
            clock=self.clock,
            registry=None,
        )

    # -------------------------------------------------------------- rules

    @rule(wait=WAITS)
    def start_call(self, wait: float) -> None:
        self.clock.advance(wait)
        expected, probe = self.model.admit(self.clock())
        try:
            handle = Inflight(self.breaker)
        except CircuitBreakerOpen as err:
            assert not expected, "rejected a call the model admits"
            self.model.counts["rejected"] += 1
            assert err.state is self.model.state
            assert err.trip_count == self.model.trip_count
            return
        assert expected, f"admitted a call the model rejects ({self.model.state})"
        if self.model.mode is Mode.NORMAL:
            assert self.breaker.state is not State.OPEN  # the function is about to run
        self.inflight.append(Call(handle, self.model.generation, probe))

    @precondition(lambda self: self.inflight)
    @rule(data=st.data(), outcome=OUTCOMES)
    def finish_call(self, data: st.DataObject, outcome: str) -> None:
        call = self.inflight.pop(data.draw(st.integers(0, len(self.inflight) - 1)))
        if outcome == "success":
            call.handle.succeed()
            tripped = None
        else:
            exc: BaseException = RuntimeError("down") if outcome == "failure" else Interrupt()
            tripped = call.handle.fail(exc)
        expected_trip = self.model.finish(call.generation, outcome, self.clock())
        assert (tripped is not None) == expected_trip
        if tripped is not None:
            assert tripped.__cause__ is not None

    @rule(outcome=OUTCOMES, latency=st.sampled_from([0.0, 1.0, 30.0]), wait=WAITS)
    def immediate_call(self, outcome: str, latency: float, wait: float) -> None:
        self.clock.advance(wait)
        ran = []

        def fn() -> str:
            ran.append(self.breaker.state)
            self.clock.advance(latency)
            if outcome == "failure":
                raise RuntimeError("down")
            if outcome == "ignored":
                raise Interrupt
            return "ok"

        expected, _ = self.model.admit(self.clock())
        generation = self.model.generation
        try:
            result: object = self.breaker.call(fn)
        except (CircuitBreakerOpen, RuntimeError, Interrupt) as exc:
            result = exc
        if not expected:
            assert ran == [] and isinstance(result, CircuitBreakerOpen)
            self.model.counts["rejected"] += 1
            return
        assert len(ran) == 1
        if self.model.mode is Mode.NORMAL:
            assert ran[0] is not State.OPEN
        tripped = self.model.finish(generation, outcome, self.clock())
        if tripped:
            assert isinstance(result, CircuitBreakerOpen)
            assert isinstance(result.__cause__, RuntimeError)
        elif outcome == "failure":
            assert isinstance(result, RuntimeError)
        elif outcome == "ignored":
            assert isinstance(result, Interrupt)
        else:
            assert result == "ok"

    @rule(seconds=st.sampled_from([0.5, 5.0, 10.0, 20.0, 30.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # manual control is rare, so that most runs get through whole trip/recover cycles
    @rule(action=st.sampled_from(["reset", "force_open", "disable", None, None, None, None]))
    def manual_control(self, action: str | None) -> None:
        if action is None:
            return
        getattr(self.breaker, action)()
        mode, state = {
            "reset": (Mode.NORMAL, State.CLOSED),
            "force_open": (Mode.FORCED_OPEN, State.OPEN),
            "disable": (Mode.DISABLED, State.CLOSED),
        }[action]
        self.model.set_mode(mode, state)

    # -------------------------------------------------------------- invariants

    @invariant()
    def same_state(self) -> None:
        if not hasattr(self, "model"):
            return
        assert self.breaker.state is self.model.state
        assert self.breaker.mode is self.model.mode
        assert self.breaker.trip_count == self.model.trip_count
        assert self.breaker.retry_after() == self.model.retry_after(self.clock())

    @invariant()
    def probes_bounded(self) -> None:
        if not hasattr(self, "model"):
            return
        current_probes = sum(
            1 for c in self.inflight if c.probe and c.generation == self.model.generation
        )
        assert current_probes == self.model.probes <= self.model.max_probes

    @invariant()
    def counts_exact(self) -> None:
        if not hasattr(self, "model"):
            return
        stats = self.breaker.stats()
        counts = self.model.counts
        assert stats.successes == counts["successes"]
        assert stats.failures == counts["failures"]
        assert stats.ignored == counts["ignored"]
        assert stats.rejected == counts["rejected"]
        assert stats.failed_recoveries == self.model.failed_recoveries

    @invariant()
    def transitions_are_legal(self) -> None:
        legal = {
            (State.CLOSED, State.OPEN),  # trip or force_open
            (State.OPEN, State.HALF_OPEN),
            (State.HALF_OPEN, State.OPEN),  # failed probe or force_open
            (State.HALF_OPEN, State.CLOSED),  # recovery, reset or disable
            (State.OPEN, State.CLOSED),  # reset or disable
        }
        assert set(self.transitions) <= legal
        assert all(old is not new for old, new in self.transitions)


TestModelledBreaker = ModelledBreaker.TestCase
TestModelledBreaker.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


class BuiltinConditionBreaker(RuleBasedStateMachine):
    """With built-in conditions: the function never runs while OPEN, at most
    ``half_open_max_calls`` probes run at once, and every call is counted exactly once."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.inflight: list[tuple[Inflight, int]] = []
        self.half_open_periods = 0
        self.calls = {"successes": 0, "failures": 0, "ignored": 0, "rejected": 0}

    @initialize(
        which=st.sampled_from(["consecutive", "error_rate", "composite"]),
        max_probes=st.integers(1, 3),
        recovery=st.integers(1, 3),
    )
    def setup(self, which: str, max_probes: int, recovery: int) -> None:
        trip_on = {
            "consecutive": lambda: tripwise.consecutive_failures(2),
            "error_rate": lambda: tripwise.error_rate_above(0.5, window=4),
            "composite": lambda: tripwise.any_of(
                tripwise.error_rate_above(0.5, window_seconds=20, min_calls=3),
                tripwise.consecutive_failures(3),
            ),
        }[which]()

        def on_change(b: CircuitBreaker, old: State, new: State) -> None:
            if new is State.HALF_OPEN:
                self.half_open_periods += 1

        self.max_probes = max_probes
        self.breaker = CircuitBreaker(
            trip_on,
            half_open_after=HALF_OPEN_AFTER,
            half_open_max_calls=max_probes,
            recovery_threshold=recovery,
            on_state_change=on_change,
            clock=self.clock,
            registry=None,
        )

    @rule(wait=WAITS)
    def start_call(self, wait: float) -> None:
        self.clock.advance(wait)
        try:
            handle = Inflight(self.breaker)
        except CircuitBreakerOpen as err:
            self.calls["rejected"] += 1
            assert err.state is self.breaker.state is not State.CLOSED
            return
        assert self.breaker.state is not State.OPEN
        period = self.half_open_periods if self.breaker.state is State.HALF_OPEN else -1
        self.inflight.append((handle, period))

    @precondition(lambda self: self.inflight)
    @rule(data=st.data(), outcome=OUTCOMES)
    def finish_call(self, data: st.DataObject, outcome: str) -> None:
        handle, _ = self.inflight.pop(data.draw(st.integers(0, len(self.inflight) - 1)))
        if outcome == "success":
            handle.succeed()
            self.calls["successes"] += 1
        elif outcome == "failure":
            handle.fail(RuntimeError("down"))
            self.calls["failures"] += 1
        else:
            handle.fail(Interrupt())
            self.calls["ignored"] += 1

    @rule(failing=st.booleans(), wait=WAITS)
    def immediate_call(self, failing: bool, wait: float) -> None:
        self.clock.advance(wait)
        ran: list[State] = []

        def fn() -> None:
            ran.append(self.breaker.state)
            if failing:
                raise RuntimeError("down")

        with contextlib.suppress(CircuitBreakerOpen, RuntimeError):
            self.breaker.call(fn)
        if not ran:
            self.calls["rejected"] += 1
            return
        assert ran[0] is not State.OPEN
        self.calls["failures" if failing else "successes"] += 1

    @rule(seconds=st.sampled_from([0.5, 5.0, 10.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def probes_bounded(self) -> None:
        if not hasattr(self, "breaker") or self.breaker.state is not State.HALF_OPEN:
            return
        running = sum(1 for _, p in self.inflight if p == self.half_open_periods)
        assert running <= self.max_probes

    @invariant()
    def counts_exact(self) -> None:
        if not hasattr(self, "breaker"):
            return
        stats = self.breaker.stats()
        assert stats.successes == self.calls["successes"]
        assert stats.failures == self.calls["failures"]
        assert stats.ignored == self.calls["ignored"]
        assert stats.rejected == self.calls["rejected"]


TestBuiltinConditionBreaker = BuiltinConditionBreaker.TestCase
TestBuiltinConditionBreaker.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None
)
