"""Demo scene: a classifier degrades softly, the quality breaker trips, the fallback serves,
the model recovers and the breaker closes. Runs on a fake clock, so it takes no time."""

from __future__ import annotations

import random
from typing import TextIO

from tripwise.core import CircuitBreaker, FakeClock, State, quality_below


def _softmax_answer(rng: random.Random, confident: bool) -> list[float]:
    """A 10-class probability vector: peaked when healthy, flat when the model is degraded."""
    top = rng.uniform(0.85, 0.98) if confident else rng.uniform(0.18, 0.35)
    rest = [rng.random() for _ in range(9)]
    scale = (1.0 - top) / sum(rest)
    return [top] + [r * scale for r in rest]


def run(out: TextIO, *, fast: bool = True) -> None:
    clock = FakeClock(0.0)
    rng = random.Random(7)
    healthy = {"value": True}
    served = {"model": 0, "fallback": 0}
    timeline: list[str] = []

    def on_change(breaker: CircuitBreaker, old: State, new: State) -> None:
        timeline.append(f"  t={clock():6.1f}s  breaker {old.value} -> {new.value}")
        out.write(timeline[-1] + "\n")

    def small_model(features: list[float]) -> list[float]:
        served["fallback"] += 1
        return _softmax_answer(rng, confident=True)

    breaker = CircuitBreaker(
        quality_below(0.6, window=10, score_fn=max),  # confidence = top probability
        name="demo.classifier",
        fallback=small_model,
        half_open_after=30.0,
        recovery_threshold=2,
        on_state_change=on_change,
        clock=clock,
        registry=None,
    )

    @breaker
    def classify(features: list[float]) -> list[float]:
        served["model"] += 1
        return _softmax_answer(rng, confident=healthy["value"])

    def traffic(n: int, label: str) -> None:
        before = dict(served)
        for _ in range(n):
            classify([0.0])
            clock.advance(1.0)
        s = breaker.stats()
        quality = f"{s.last_quality:.2f}" if s.last_quality is not None else "-"
        out.write(
            f"  t={clock():6.1f}s  {label:<38} model {served['model'] - before['model']:>3}  "
            f"fallback {served['fallback'] - before['fallback']:>3}  "
            f"state {breaker.state.value:<9} last confidence {quality}\n"
        )

    out.write("Scene 1: a classifier that still answers, but badly\n")
    out.write("  breaker: quality_below(0.6, window=10) on the top softmax probability\n\n")
    traffic(30, "healthy traffic")
    healthy["value"] = False
    out.write("  -- the model degrades: HTTP 200, on time, but confidence collapses --\n")
    traffic(12, "degraded model (soft failure)")
    traffic(20, "open: the small model answers")
    healthy["value"] = True
    out.write("  -- the model recovers --\n")
    clock.advance(10.0)
    traffic(5, "cool-down over: probes, then traffic")
    traffic(20, "healthy traffic again")
    s = breaker.stats()
    out.write(
        f"\n  totals: {s.calls} calls ran on the model, {s.rejected} rejected and answered by the "
        f"fallback; tripped {s.trip_count}x; final state {s.state.value}\n"
    )
