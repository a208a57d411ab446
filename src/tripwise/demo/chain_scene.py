"""Demo scene: a fallback chain primary → secondary → cache → degraded rides out an outage.

The primary model first answers well, then answers badly (low confidence), then both live
models go down; the cache serves earlier answers with their age and the degraded tier covers
the rest; the primary comes back and takes the traffic again once its breaker half-opens.
Runs on a fake clock, so it takes no time.
"""

from __future__ import annotations

from typing import Any, TextIO

from tripwise.core import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    State,
    consecutive_failures,
)
from tripwise.policies import CacheMiss, CacheTier, DegradedTier, FallbackChain, Tier

PROMPTS = ["capital of France", "2+2", "largest planet", "speed of light"]


class _Model:
    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = "ok"  # "ok", "vague" (answers with low confidence) or "down"

    def __call__(self, prompt: str) -> dict[str, Any]:
        if self.mode == "down":
            raise ConnectionError(f"{self.name} unreachable")
        confidence = 0.93 if self.mode == "ok" else 0.21
        return {"text": f"[{self.name}] answer to {prompt!r}", "confidence": confidence}


def _why(error: BaseException) -> str:
    score = getattr(error, "score", None)
    if score is not None:
        return f"low confidence {score:.2f}"
    if isinstance(error, CircuitBreakerOpen):
        cause = error.__cause__
        return "breaker open" if cause is None else f"{_why(cause)}, breaker opened"
    if isinstance(error, CacheMiss):
        return "not cached"
    return type(error).__name__


def run(out: TextIO, *, fast: bool = True) -> None:
    clock = FakeClock(0.0)
    primary, secondary = _Model("gpu-large"), _Model("cpu-small")

    def on_change(breaker: CircuitBreaker, old: State, new: State) -> None:
        out.write(f"  t={clock():6.1f}s  breaker {breaker.name}: {old.value} -> {new.value}\n")

    def tier_breaker(name: str) -> CircuitBreaker:
        return CircuitBreaker(
            consecutive_failures(3),
            name=name,
            half_open_after=30.0,
            recovery_threshold=1,
            on_state_change=on_change,
            clock=clock,
            registry=None,
        )

    def confidence(answer: dict[str, Any]) -> float:
        return float(answer["confidence"])

    chain = FallbackChain(
        [
            Tier(
                "primary",
                primary,
                breaker=tier_breaker("primary"),
                score_fn=confidence,
                min_quality=0.5,
            ),
            Tier(
                "secondary",
                secondary,
                breaker=tier_breaker("secondary"),
                score_fn=confidence,
                min_quality=0.5,
            ),
            CacheTier("cache", ttl=3600.0, clock=clock),
            DegradedTier(
                {"text": "The assistant is busy, please retry shortly.", "confidence": 0.0}
            ),
        ],
        name="demo.assistant",
        clock=clock,
        registry=None,
    )

    out.write("Scene 3: fallback chain primary -> secondary -> cache -> degraded\n")

    def traffic(label: str, prompts: list[str]) -> None:
        out.write(f"  t={clock():6.1f}s  -- {label}\n")
        for prompt in prompts:
            result = chain.call(prompt)
            age = f", cached {result.cache_age_s:.0f}s ago" if result.cache_age_s else ""
            skipped = ", ".join(f"{t}: {_why(e)}" for t, e in result.errors.items())
            out.write(
                f"  t={clock():6.1f}s  {prompt!r:<20} -> {result.tier:<9} "
                f"attempts={result.attempts}{age}{f'  [{skipped}]' if skipped else ''}\n"
            )
            clock.advance(2.0)

    traffic("all healthy", PROMPTS[:2])
    primary.mode = "vague"
    traffic("primary answers with low confidence", PROMPTS[:3] + PROMPTS[2:3])
    secondary.mode = "down"
    primary.mode = "down"
    traffic("both live models down", PROMPTS)
    primary.mode = "ok"
    clock.advance(30.0)
    traffic("primary back; its breaker half-opens after 30 s", PROMPTS[:2])

    out.write("  per-tier usage:\n")
    usage = chain.usage()
    total = sum(usage.values()) or 1
    for tier, count in usage.items():
        bar = "#" * round(30 * count / total)
        out.write(f"    {tier:<10} {count:>3}  {bar}\n")
