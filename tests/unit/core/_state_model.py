"""A plain reference model of the documented breaker state machine, for the stateful tests."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tripwise import CallRecord, Mode, State

from ._helpers import Inflight

HALF_OPEN_AFTER = 10.0
MAX_HALF_OPEN_AFTER = 25.0


class Interrupt(BaseException):
    """Stands for KeyboardInterrupt / CancelledError: never a failure, always released."""


class Streak:
    """A user condition (ml-breaker protocol): trips after ``k`` failures in a row."""

    uses_quality = False

    def __init__(self, k: int) -> None:
        self.k = k
        self.streak = 0

    def __call__(self, record: CallRecord) -> bool:
        self.streak = self.streak + 1 if record.error is not None else 0
        return self.streak >= self.k

    def reset(self) -> None:
        self.streak = 0


@dataclass
class Call:
    handle: Inflight
    generation: int
    probe: bool


@dataclass
class Model:
    """The documented state machine, written plainly."""

    k: int
    max_probes: int
    recovery: int
    backoff: float
    state: State = State.CLOSED
    mode: Mode = Mode.NORMAL
    generation: int = 0
    streak: int = 0
    opened_at: float = 0.0
    duration: float = HALF_OPEN_AFTER
    failed_recoveries: int = 0
    probes: int = 0
    probe_successes: int = 0
    trip_count: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("successes", "failures", "ignored", "rejected"), 0)
    )

    def enter(self, state: State) -> None:
        self.state = state
        self.generation += 1
        self.probes = self.probe_successes = 0
        if state is State.CLOSED:
            self.streak = 0
            self.failed_recoveries = 0

    def trip(self, now: float) -> None:
        self.duration = min(
            HALF_OPEN_AFTER * self.backoff**self.failed_recoveries, MAX_HALF_OPEN_AFTER
        )
        self.trip_count += 1
        self.opened_at = now
        self.enter(State.OPEN)

    def admit(self, now: float) -> tuple[bool, bool]:
        """(admitted, is_probe) for a call arriving at ``now``."""
        if self.mode is Mode.FORCED_OPEN:
            return False, False
        if self.mode is Mode.DISABLED or self.state is State.CLOSED:
            return True, False
        if self.state is State.OPEN:
            if now < self.opened_at + self.duration:
                return False, False
            self.enter(State.HALF_OPEN)
        if self.probes < self.max_probes:
            self.probes += 1
            return True, True
        return False, False

    def finish(self, call_generation: int, outcome: str, now: float) -> bool:
        """Apply an outcome; returns True when it tripped the breaker."""
        if outcome == "ignored":
            self.counts["ignored"] += 1
            if call_generation == self.generation and self.state is State.HALF_OPEN:
                self.probes -= 1
            return False
        self.counts["failures" if outcome == "failure" else "successes"] += 1
        if call_generation != self.generation or self.mode is Mode.DISABLED:
            return False
        if self.state is State.CLOSED:
            self.streak = self.streak + 1 if outcome == "failure" else 0
            if self.streak >= self.k:
                self.trip(now)
                return True
        elif self.state is State.HALF_OPEN:
            self.probes -= 1
            if outcome == "failure":
                self.failed_recoveries += 1
                self.trip(now)
                return True
            self.probe_successes += 1
            if self.probe_successes >= self.recovery:
                self.enter(State.CLOSED)
        return False

    def set_mode(self, mode: Mode, state: State) -> None:
        self.mode = mode
        self.failed_recoveries = 0
        self.enter(state)
        self.streak = 0

    def retry_after(self, now: float) -> float:
        if self.mode is Mode.FORCED_OPEN:
            return math.inf
        if self.state is State.OPEN:
            return max(0.0, self.opened_at + self.duration - now)
        return 0.0
