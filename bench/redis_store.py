"""Benchmark: tripwise's Redis store against the in-memory store and pybreaker's Redis storage.

1. Per-call overhead in the CLOSED state (ns over a bare call, best of ``--repeat``
   interleaved rounds):
   tripwise in memory, with ``RedisStore`` (shared state, shared window), pybreaker in memory
   and pybreaker with ``CircuitRedisStorage``, all in this process against the same Redis.
2. Trip propagation: one process trips, ``--subscribers`` other processes note when their
   breaker turns open; latency p50/p99 over ``--rounds`` trips (one host, one wall clock).
3. Shared-window staleness: how long after one store records an outcome another store's
   window counts it (``--staleness`` samples, ``flush_interval`` 0.05 s).
4. Faults (``--faults``, needs ``redis-server`` on PATH): a private server is killed
   (restarted empty), paused (CLIENT PAUSE), frozen (SIGSTOP), flushed (FLUSHALL); for each,
   the time from Redis being back (or the data loss) until two processes' breakers agree with
   Redis again, with ``retry_interval`` 0.5 s and ``refresh_interval`` 1 s (the defaults).

5. Event-loop lag (``--loop-lag``): the scenario of tests/integration/redis/test_async_loop.py
   (async breakers tripping, probing and recovering while Redis is killed, paused, frozen),
   printing the longest the loop was late; ``--sync-slow-path`` runs it with the store's sync
   path on the loop thread instead (the design before issue 13), for comparison.

Run: ``python bench/redis_store.py [--url redis://127.0.0.1:6379/0] [--faults] [--loop-lag]``.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import statistics
import sys
import time
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pybreaker
import redis

from tripwise import CircuitBreaker, consecutive_failures, error_rate_above
from tripwise.stores import RedisStore


def f() -> int:
    return 1


def _best_ns(fn: Callable[[], Any], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e9


def overhead(url: str, number: int, repeat: int) -> list[tuple[str, float]]:
    ns = f"bench-{uuid.uuid4().hex[:8]}"
    state_store = RedisStore(url, namespace=ns)
    window_store = RedisStore(url, namespace=ns, mode="shared_window")
    client = redis.Redis.from_url(url)
    time_rule: Callable[[], Any] = lambda: error_rate_above(0.5, window_seconds=10)  # noqa: E731
    cases: dict[str, Callable[[], Any]] = {
        "tripwise, in memory": CircuitBreaker(consecutive_failures(5), registry=None)(f),
        "tripwise, RedisStore shared_state": CircuitBreaker(
            consecutive_failures(5), name="a", registry=None, store=state_store
        )(f),
        "tripwise, in memory, time-window rule": CircuitBreaker(time_rule(), registry=None)(f),
        "tripwise, RedisStore shared_window, time-window rule": CircuitBreaker(
            time_rule(), name="b", registry=None, store=window_store
        )(f),
        "pybreaker, in memory": pybreaker.CircuitBreaker(fail_max=5)(f),
        "pybreaker, CircuitRedisStorage": pybreaker.CircuitBreaker(
            fail_max=5,
            state_storage=pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED, client, namespace=ns
            ),
        )(f),
    }
    # Interleave the cases, repeat after repeat, and keep each one's best: load on the machine
    # then drifts over all cases alike instead of favouring whichever ran in a quiet moment.
    best = dict.fromkeys(["bare", *cases], float("inf"))
    for _ in range(repeat):
        best["bare"] = min(best["bare"], _best_ns(f, number, 1))
        for label, fn in cases.items():
            # pybreaker's Redis storage is ~1000x slower per call: fewer calls per repeat.
            n = max(500, number // 500) if "CircuitRedisStorage" in label else number
            best[label] = min(best[label], _best_ns(fn, n, 1))
    rows = [(label, best[label] - best["bare"]) for label in cases]
    state_store.close()
    window_store.close()
    for key in client.scan_iter(match=f"{ns}*"):
        client.delete(key)
    client.close()
    return rows


def _subscriber(url: str, ns: str, events: Any, ready: Any) -> None:
    store = RedisStore(url, namespace=ns)

    def seen(breaker: Any, old: Any, new: Any) -> None:
        events.put((new.value, time.time()))

    breaker = CircuitBreaker(
        consecutive_failures(1), name="p", registry=None, store=store, on_state_change=seen
    )
    ready.put(breaker.state.value)
    while True:
        time.sleep(1.0)


def propagation(url: str, subscribers: int, rounds: int) -> list[float]:
    ns = f"bench-{uuid.uuid4().hex[:8]}"
    ctx = mp.get_context("spawn")
    events, ready = ctx.Queue(), ctx.Queue()
    procs = [
        ctx.Process(target=_subscriber, args=(url, ns, events, ready), daemon=True)
        for _ in range(subscribers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=30)
    store = RedisStore(url, namespace=ns)
    breaker = CircuitBreaker(consecutive_failures(1), name="p", registry=None, store=store)
    latencies = []

    def boom() -> None:
        raise RuntimeError

    for _ in range(rounds):
        time.sleep(0.02)
        start = time.time()
        with contextlib.suppress(Exception):
            breaker.call(boom)
        for _ in procs:
            state, at = events.get(timeout=10)
            assert state == "open", state
            latencies.append((at - start) * 1000.0)
        breaker.reset()
        for _ in procs:
            state, _at = events.get(timeout=10)
            assert state == "closed", state
    for p in procs:
        p.kill()
    store.close()
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"{ns}*"):
        client.delete(key)
    client.close()
    return latencies


def staleness(url: str, samples: int, flush_interval: float = 0.05) -> list[float]:
    """ms from an outcome recorded in store A to its count in store B's shared window."""
    ns = f"bench-{uuid.uuid4().hex[:8]}"
    stores = [
        RedisStore(url, namespace=ns, mode="shared_window", flush_interval=flush_interval)
        for _ in range(2)
    ]
    a, b = (
        CircuitBreaker(
            error_rate_above(0.99, window_seconds=600, min_calls=10**9),
            name="w",
            registry=None,
            store=s,
        )
        for s in stores
    )
    window = b.trip_on.window  # type: ignore[attr-defined]
    delays = []
    for i in range(samples):
        time.sleep(0.013 * (i % 7))  # sample every phase of the flush period
        before = window.count
        start = time.monotonic()
        a.call(f)
        while window.count == before:
            time.sleep(0.0005)
        delays.append((time.monotonic() - start) * 1000.0)
    for store in stores:
        store.close()
    return delays


def faults() -> list[tuple[str, float]]:
    """Seconds from the end of each fault until both processes agree with Redis again."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.redis_service import RedisServer

    rows = []
    for fault in ("kill", "pause", "freeze", "flushall"):
        with RedisServer() as server:
            ns = f"bench-{uuid.uuid4().hex[:8]}"
            stores = [RedisStore(server.url, namespace=ns) for _ in range(2)]
            a, b = (
                CircuitBreaker(consecutive_failures(2), name="m", half_open_after=30.0,
                               registry=None, store=s)
                for s in stores
            )  # fmt: skip
            client = redis.Redis.from_url(server.url)
            if fault == "kill":
                server.stop()
            elif fault == "pause":
                paused_at = time.monotonic()
                server.pause(1500)
            elif fault == "freeze":
                server.freeze()
            while fault != "flushall" and (stores[0].available or stores[1].available):
                time.sleep(0.005)
            for _ in range(2):  # a trips during the outage (local policy)
                with contextlib.suppress(Exception):
                    a.call(_boom)
            if fault == "kill":
                server.start()
            elif fault == "pause":
                time.sleep(max(0.0, paused_at + 1.5 - time.monotonic()))
            elif fault == "freeze":
                server.thaw()
            else:
                client.flushall()
            back = time.monotonic()

            def agreed(client: Any = client, a: Any = a, b: Any = b, key: str = ns) -> bool:
                try:
                    st = client.hget(f"{key}:{{m}}:state", "st")
                except redis.RedisError:
                    return False
                want = {b"c": "closed", b"o": "open", b"h": "half_open"}.get(st or b"")
                return want is not None and a.state.value == b.state.value == want

            while not agreed():
                time.sleep(0.002)
            rows.append((fault, time.monotonic() - back))
            client.close()
            for store in stores:
                store.close()
    return rows


def loop_lag(sync_slow_path: bool) -> list[tuple[str, float]]:
    import asyncio

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.integration.redis import test_async_loop as scenario
    from tests.support.redis_service import RedisServer

    if sync_slow_path:
        RedisStore.running_loop = staticmethod(lambda: None)  # type: ignore[method-assign]
    rows = []
    for fault in ("kill", "pause", "freeze"):
        with RedisServer() as server:
            ns = f"bench-{uuid.uuid4().hex[:8]}"
            options = {"timeout": scenario.TIMEOUT, "refresh_interval": 0.2, "retry_interval": 0.1}
            store, other = (RedisStore(server.url, namespace=ns, **options) for _ in range(2))

            async def main(
                store: Any = store, other: Any = other, server: Any = server, fault: str = fault
            ) -> Any:
                try:
                    return await scenario._scenario(fault, server, store, other)
                finally:
                    await store.aclose()

            result = asyncio.run(main())
            other.close()
            rows.append((fault, result["max_lag"] * 1000.0))
    return rows


def _boom() -> None:
    raise RuntimeError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--number", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--staleness", type=int, default=200)
    parser.add_argument("--faults", action="store_true")
    parser.add_argument("--loop-lag", action="store_true")
    parser.add_argument("--sync-slow-path", action="store_true")
    args = parser.parse_args()

    if args.loop_lag:
        for fault, ms in loop_lag(args.sync_slow_path):
            print(f"loop lag, Redis {fault}: max {ms:.1f} ms (target <= 10 ms)")
        return
    rows = overhead(args.url, args.number, args.repeat)
    table = dict(rows)
    print("| CLOSED call, overhead over a bare call | ns/call |")
    print("|---|---:|")
    for label, ns in rows:
        print(f"| {label} | {ns:,.0f} |")
    mem = table["tripwise, in memory"]
    shared = table["tripwise, RedisStore shared_state"]
    window = table["tripwise, RedisStore shared_window, time-window rule"]
    window_mem = table["tripwise, in memory, time-window rule"]
    pyb = table["pybreaker, CircuitRedisStorage"]
    print()
    print(f"shared_state / in-memory overhead: {shared / mem:.2f}x (target <= 1.1x)")
    print(f"shared_window / in-memory (same time-window rule): {window / window_mem:.2f}x")
    print(f"pybreaker CircuitRedisStorage / tripwise shared_state: {pyb / shared:,.0f}x")

    lat = sorted(propagation(args.url, args.subscribers, args.rounds))
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
    print()
    print(
        f"trip propagation to {args.subscribers} processes, {args.rounds} trips "
        f"({len(lat)} samples): p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {lat[-1]:.2f} ms "
        "(target p99 < 50 ms)"
    )

    stale = sorted(staleness(args.url, args.staleness))
    print(
        f"shared-window staleness, flush_interval 50 ms, {len(stale)} samples: "
        f"p50 {statistics.median(stale):.1f} ms, "
        f"p99 {stale[round(0.99 * (len(stale) - 1))]:.1f} ms, max {stale[-1]:.1f} ms "
        "(bound: 2 x flush_interval + 2 flush round trips)"
    )
    if args.faults:
        print()
        for fault, seconds in faults():
            print(f"fault {fault}: both processes agree with Redis {seconds:.3f} s after it ended")


if __name__ == "__main__":
    main()
