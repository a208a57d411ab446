"""Micro benchmark: CLOSED calls of a breaker without a store, with ``MemoryStore`` and with
``RedisStore`` (shared state), side by side in one process.

Each call style (decorator on the lean path, decorator with a count window, decorator with a
timed rule, ``breaker.call``, ``with breaker:``, an async decorated function) is measured for
the three stores, interleaved round after round; each case keeps its best round. A CLOSED call
with a store should cost what it costs without one (the store is consulted on slow paths only).

Run: ``python bench/store_hotpath.py [--url redis://127.0.0.1:6379/0] [--number 100000]
[--repeat 15]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from tripwise import CircuitBreaker, consecutive_failures, error_rate_above, latency_above
from tripwise.stores import MemoryStore, RedisStore


def f() -> int:
    return 1


async def af() -> int:
    return 1


def _styles() -> dict[str, Callable[[Any], Callable[[], Any]]]:
    """Call style -> (store -> a no-argument callable making one guarded call)."""

    def breaker(store: Any, rule: Any = None) -> CircuitBreaker:
        name = f"b-{uuid.uuid4().hex[:8]}"
        return CircuitBreaker(rule, name=name, registry=None, store=store)

    def with_block(store: Any) -> Callable[[], Any]:
        b = breaker(store)

        def run() -> None:
            with b:
                f()

        return run

    return {
        "decorator, consecutive_failures (lean)": lambda s: breaker(s, consecutive_failures(5))(f),
        "decorator, error_rate_above count window": lambda s: breaker(
            s, error_rate_above(0.5, window=20)
        )(f),
        "decorator, latency_above (timed)": lambda s: breaker(s, latency_above(1000.0))(f),
        "breaker.call(f)": lambda s: (lambda b: lambda: b.call(f))(breaker(s)),
        "with breaker:": with_block,
        "async decorator (lean)": lambda s: breaker(s, consecutive_failures(5))(af),
    }


def _time(fn: Callable[[], Any], number: int, loop: asyncio.AbstractEventLoop) -> float:
    """ns per call of ``fn`` (awaited in ``loop`` when it is an async function)."""
    if asyncio.iscoroutinefunction(fn):

        async def many() -> None:
            for _ in range(number):
                await fn()

        start = time.perf_counter()
        loop.run_until_complete(many())
    else:
        start = time.perf_counter()
        for _ in range(number):
            fn()
    return (time.perf_counter() - start) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--number", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    redis_store = RedisStore(args.url, namespace=namespace)
    stores = {"store=None": None, "MemoryStore()": MemoryStore(), "RedisStore": redis_store}
    cases = {
        (style, label): make(store)
        for style, make in _styles().items()
        for label, store in stores.items()
    }
    loop = asyncio.new_event_loop()
    bare = {"sync": float("inf"), "async": float("inf")}
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.repeat):  # interleaved: machine load drifts over all cases alike
        bare["sync"] = min(bare["sync"], _time(f, args.number, loop))
        bare["async"] = min(bare["async"], _time(af, args.number, loop))
        for key, fn in cases.items():
            best[key] = min(best[key], _time(fn, args.number, loop))
    loop.close()

    print(f"bare f(): {bare['sync']:.0f} ns, bare await af(): {bare['async']:.0f} ns")
    print(f"{'call style (CLOSED), ns over bare':42s} {'None':>7s} {'Memory':>7s} {'Redis':>7s}")
    for style in _styles():
        base = bare["async" if style.startswith("async") else "sync"]
        row = [best[(style, label)] - base for label in stores]
        print(f"{style:42s} {row[0]:7.0f} {row[1]:7.0f} {row[2]:7.0f}", end="")
        print(f"   Memory/None {row[1] / row[0]:.2f}x  Redis/None {row[2] / row[0]:.2f}x")
    assert redis_store.stats()["available"], "Redis went away during the benchmark"
    redis_store.close()
    client = redis.Redis.from_url(args.url)
    for key in client.scan_iter(match=f"{namespace}:*"):
        client.delete(key)
    client.close()


if __name__ == "__main__":
    main()
