"""Overhead of a 4-tier fallback chain call whose first tier answers.

Compares, in one process, per call:

- ``bare``: the tier function called directly;
- ``tripwise chain``: FallbackChain(primary → secondary → cache → degraded), each live tier
  with its own breaker (and, in the ``+ retry`` row, a Retry(2) on each live tier), every answer
  stored in the cache tier, metadata returned (ChainResult);
- ``hand-stacked``: the same behaviour built by hand from tenacity ``@retry`` and
  circuitbreaker ``@circuit`` decorators, a dict cache and a degraded answer.

Run: ``python bench/chain_overhead.py`` (``--number`` calls per repeat, best of ``--repeat``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import timeit
from typing import Any

import circuitbreaker
import tenacity

from tripwise import CircuitBreaker, consecutive_failures
from tripwise.policies import Backoff, CacheTier, DegradedTier, FallbackChain, Retry, Tier

DEGRADED = "Service temporarily unavailable"


def primary(prompt: str) -> str:
    return prompt


def secondary(prompt: str) -> str:
    return prompt


def tripwise_chain(with_retry: bool, with_cache: bool = True) -> FallbackChain:
    def tier(name: str, fn: Any) -> Tier:
        return Tier(
            name,
            fn,
            breaker=CircuitBreaker(
                consecutive_failures(3), name=name, half_open_after=30.0, registry=None
            ),
            retry=Retry(2, backoff=Backoff(0.1, 2.0, 1.0)) if with_retry else None,
        )

    return FallbackChain(
        [
            tier("gpu", primary),
            tier("cpu", secondary),
            CacheTier(ttl=300.0, max_entries=1024) if with_cache else tier("cpu2", secondary),
            DegradedTier(DEGRADED),
        ],
        registry=None,
    )


def hand_stacked() -> Any:
    def guard(fn: Any) -> Any:
        guarded = circuitbreaker.circuit(failure_threshold=3, recovery_timeout=30)(fn)
        return tenacity.retry(
            stop=tenacity.stop_after_attempt(2),
            wait=tenacity.wait_random_exponential(multiplier=0.1, max=1.0),
            retry=tenacity.retry_if_not_exception_type(circuitbreaker.CircuitBreakerError),
            reraise=True,
        )(guarded)

    gpu, cpu = guard(primary), guard(secondary)
    cache: dict[str, tuple[str, float]] = {}

    def call(prompt: str) -> str:
        for tier in (gpu, cpu):
            try:
                value = tier(prompt)
            except Exception:
                continue
            cache[prompt] = (value, time.time())
            return value
        hit = cache.get(prompt)
        if hit is not None and time.time() - hit[1] < 300.0:
            return hit[0]
        return DEGRADED

    return call


def best_ns(fn: Any, number: int, repeat: int) -> float:
    timer = timeit.Timer(lambda: fn("What is 2+2?"))
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    plain = tripwise_chain(with_retry=False)
    no_cache = tripwise_chain(with_retry=False, with_cache=False)
    single = CircuitBreaker(consecutive_failures(3), half_open_after=30.0, registry=None)(primary)
    retried = tripwise_chain(with_retry=True)
    hand = hand_stacked()
    assert plain.call("x").value == "x" and retried.call("x").tier == "gpu" and hand("x") == "x"

    rows = [
        ("bare tier function", primary),
        ("one tripwise breaker (decorator), for scale", single),
        ("tripwise chain (breakers)", plain.call),
        ("tripwise chain (breakers, 3 live tiers, no cache tier)", no_cache.call),
        ("tripwise chain (breakers + retry)", retried.call),
        ("hand-stacked tenacity + circuitbreaker", hand),
    ]
    results = {name: best_ns(fn, args.number, args.repeat) for name, fn in rows}
    bare = results["bare tier function"]
    hand_ns = results["hand-stacked tenacity + circuitbreaker"]
    print(f"# Python {platform.python_version()} on {platform.machine()}, {sys.platform}")
    print(f"# best of {args.repeat} x {args.number:,} calls; first tier answers")
    print("| variant | ns / call | overhead vs bare (ns) | vs hand-stacked |")
    print("|---|---:|---:|---:|")
    for name, ns in results.items():
        print(f"| {name} | {ns:,.0f} | {ns - bare:,.0f} | {ns / hand_ns:.2f}x |")


if __name__ == "__main__":
    main()
