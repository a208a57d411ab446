"""``when_all_open: wait`` when the timer fires before the breakers are due (no real sleep).

uvloop's timers have millisecond resolution and fire up to ~1 ms early against
``time.monotonic``, the breakers' clock; a wait that then walked the chain at once met breakers
still open and answered from the degraded tier instead of the half-open probe.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tripwise.core.registry import Registry
from tripwise.gateway import engine as engine_mod
from tripwise.gateway.config import parse_config
from tripwise.gateway.engine import Audit, Engine, _Walk
from tripwise.gateway.runtime import LiveBackend, Runtime

CONFIG = """
backends:
  a: {type: openai, url: "http://127.0.0.1:9/v1"}
  b: {type: openai, url: "http://127.0.0.1:9/v1"}
  degraded: {type: degraded, message: busy}
routes:
  m: {chain: [a, b, degraded], when_all_open: wait, wait_ms: 5000, deadline: 30}
"""


class Clock:
    """The engine's monotonic clock and sleep: each sleep returns ``early`` s too soon."""

    def __init__(self, early: float) -> None:
        self.now = 1000.0
        self.early = early
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds - self.early)


def setup(monkeypatch: pytest.MonkeyPatch, early: float, due_at: float) -> tuple[Any, ...]:
    clock = Clock(early)
    monkeypatch.setattr(engine_mod.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(engine_mod.asyncio, "sleep", clock.sleep)
    runtime = Runtime(parse_config(CONFIG, "test"), registry=Registry())
    chain = runtime.chains["m"]
    for b in chain:
        if isinstance(b, LiveBackend):
            # Both breakers open until ``due_at`` on the engine's clock.
            monkeypatch.setattr(b, "rejecting", lambda: clock.now < due_at)
            monkeypatch.setattr(b, "retry_after", lambda: max(0.0, due_at - clock.now))
    route = runtime.cfg.routes["m"]
    walk = _Walk(route, chain, Audit("m"), clock.now + route.deadline)
    return Engine(runtime), route, walk, clock


def test_an_early_timer_is_followed_by_a_second_sleep_until_the_probe_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eng, route, walk, clock = setup(monkeypatch, early=0.0009, due_at=1002.0)
    asyncio.run(eng._wait_for_probe(route, walk, 2.0))
    assert clock.now >= 1002.0  # the breakers are due when the walk starts
    assert len(clock.slept) == 2 and clock.slept[0] == 2.0


def test_an_exact_timer_sleeps_once(monkeypatch: pytest.MonkeyPatch) -> None:
    eng, route, walk, clock = setup(monkeypatch, early=0.0, due_at=1002.0)
    asyncio.run(eng._wait_for_probe(route, walk, 2.0))
    assert clock.slept == [2.0]


def test_the_wait_never_passes_the_route_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    eng, route, walk, clock = setup(monkeypatch, early=0.0009, due_at=1004.0)
    walk.deadline = clock.now + 3.0  # the probe is due after the deadline: no sleep at all
    asyncio.run(eng._wait_for_probe(route, walk, 4.0))
    assert clock.slept == []
