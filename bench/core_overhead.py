"""Per-call overhead of tripwise next to pybreaker, circuitbreaker, ml-breaker, purgatory and
aiobreaker, all measured in one process.

Run:  .venv/bin/python bench/core_overhead.py            (full run, ~1 minute)
      .venv/bin/python bench/core_overhead.py --quick    (a few seconds, noisier)
      .venv/bin/python bench/core_overhead.py --json     (machine-readable results on stdout)

What is measured (ns per guarded call, best of N interleaved timeit-style repeats, clocked with
the CPU time of the benchmark thread, garbage collector on; see _common for why):

1. CLOSED, sync: guarded call of an empty function minus the bare call, measured in the same
   run. tripwise is shown with the rule the target names (``error_rate_above(0.5, window=20)``)
   through the decorator, through ``breaker.call()``, and with a latency and a quality rule.
2. CLOSED, async: the same with ``async def`` functions on one event loop.
3. OPEN with a fallback: the whole cost of a rejected call (the function never runs), minus
   only the empty timing loop. Libraries without a fallback raise; the timed statement then
   catches the error and substitutes the value, as a user would.
4. Concurrency: 8 threads x 50 calls of a function sleeping 5 ms. The ideal is 0.25 s; a
   breaker holding a lock around the call serializes the threads (8x the ideal).
5. Paired ratios: the timed rows of table 1 (latency and quality rules) against
   circuitbreaker, round by round (see measure_paired): the median is what a load that comes
   and goes on a small shared machine leaves intact; the targets are checked on both.

Peers are configured with their own documented rules; the tables say which. Ratios are
against circuitbreaker (consecutive-failure count, no locks at all).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from importlib import metadata
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aiobreaker
import circuitbreaker
import ml_breaker
import purgatory
import pybreaker
from purgatory.domain.model import OpenedState

import tripwise
from _common import (
    AsyncRunner,
    Case,
    cpu_clock,
    log,
    markdown_table,
    measure,
    positive_int,
    sync_loop,
)

# ml-breaker logs a warning when a breaker opens (scenario 3 trips one on purpose).
logging.getLogger("ml_breaker").setLevel(logging.ERROR)

FALLBACK = "cached answer"
_ids = itertools.count(1)

CFG_CB = "failure_threshold=5 (consecutive-failure count), no locks, decorator"
CFG_PYB = "fail_max=5 (consecutive), RLock held around the call, decorator"
CFG_AIO = "fail_max=5 (consecutive), no locks, decorator"
CFG_PURG = "threshold=5 (consecutive), in-memory; decorator looks the breaker up per call"
CFG_PURG_CM = "threshold=5 (consecutive), breaker fetched once, `with brk:` inline"
TW_RATE = "error_rate_above(0.5, window=20)"


def uid(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def tw(trip_on: Any, **kw: Any) -> tripwise.CircuitBreaker:
    return tripwise.CircuitBreaker(trip_on, name=uid("tw"), registry=None, **kw)


def cb(**kw: Any) -> circuitbreaker.CircuitBreaker:
    return circuitbreaker.CircuitBreaker(name=uid("cb"), **kw)


def mlb(trip_on: Any, **kw: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return ml_breaker.circuit_breaker(trip_on=trip_on, name=uid("mlb"), **kw)


def _score(result: Any) -> float:
    return 1.0


def _one() -> Any:
    yield None


def _reporting() -> Callable[[], None]:
    """An empty function that reports its score (the bare call it is compared with does not:
    the row includes report_quality itself)."""

    def f() -> None:
        tripwise.report_quality(1.0)

    return f


# ---------------------------------------------------------------------------- 1. CLOSED sync


def closed_sync_cases() -> list[Case]:
    def target() -> None:
        return None

    def fresh() -> Callable[[], None]:
        def f() -> None:
            return None

        return f

    def dec(wrapper: Callable[[], Any]) -> Any:
        assert wrapper() is None  # sanity: it runs and returns the function's value
        return sync_loop("f()", {"f": wrapper})

    tw_rate = tw(tripwise.error_rate_above(0.5, window=20))
    assert tw_rate.call(target) is None
    purg = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)
    purg_name = uid("purg")
    purg_brk = purg.get_breaker(purg_name)
    return [
        Case("bare", "bare call", "`f()` of an empty function (subtracted)", dec(target)),
        Case("tw", "tripwise", f"{TW_RATE}, decorator", dec(tw_rate(fresh()))),
        Case(
            "tw_call",
            "tripwise",
            f"{TW_RATE}, `breaker.call(f)`",
            sync_loop("call(f)", {"call": tw_rate.call, "f": target}),
        ),
        Case(
            "tw_consec",
            "tripwise",
            "consecutive_failures(5) (circuitbreaker's rule), decorator",
            dec(tw(tripwise.consecutive_failures(5))(fresh())),
        ),
        Case(
            "tw_lat",
            "tripwise",
            "latency_above(1000 ms, window=20), decorator (reads the clock, locks)",
            dec(tw(tripwise.latency_above(1000.0, window=20))(fresh())),
        ),
        Case(
            "tw_lat_bound",
            "tripwise",
            "latency_above(1000 ms, window=20), `clock=time.monotonic` bound (no per-read lookup)",
            dec(tw(tripwise.latency_above(1000.0, window=20), clock=time.monotonic)(fresh())),
        ),
        Case(
            "tw_stream",
            "tripwise",
            f"{TW_RATE}, decorated generator of one item, `list(gen())` (a whole stream)",
            sync_loop("list(g())", {"g": tw(tripwise.error_rate_above(0.5, window=20))(_one)}),
        ),
        Case(
            "tw_q",
            "tripwise",
            "quality_below(0.5, window=20, score_fn), decorator (quality context, locks)",
            dec(tw(tripwise.quality_below(0.5, window=20, score_fn=_score))(fresh())),
        ),
        Case(
            "tw_rq",
            "tripwise",
            "quality_below(0.5, window=20), `report_quality(1.0)` inside the call (context slot)",
            dec(tw(tripwise.quality_below(0.5, window=20))(_reporting())),
        ),
        Case("cb", "circuitbreaker", CFG_CB, dec(cb(failure_threshold=5)(fresh()))),
        Case("pyb", "pybreaker", CFG_PYB, dec(pybreaker.CircuitBreaker(fail_max=5)(fresh()))),
        Case(
            "mlb",
            "ml-breaker",
            f"{TW_RATE}: RLock around the call, statistics.mean per call",
            dec(mlb(ml_breaker.error_rate_above(0.5, window=20))(fresh())),
        ),
        Case(
            "mlb_consec",
            "ml-breaker",
            "consecutive_failures(5): RLock around the call",
            dec(mlb(ml_breaker.consecutive_failures(5))(fresh())),
        ),
        Case(
            "mlb_q",
            "ml-breaker",
            "quality_below(0.5, window=20, score_fn): RLock, statistics.mean per call",
            dec(mlb(ml_breaker.quality_below(0.5, window=20, score_fn=_score))(fresh())),
        ),
        Case("purg", "purgatory", CFG_PURG, dec(purg(purg_name)(fresh()))),
        Case(
            "purg_cm",
            "purgatory",
            CFG_PURG_CM,
            sync_loop("with brk:\n    f()", {"brk": purg_brk, "f": target}),
        ),
        Case("aio", "aiobreaker", CFG_AIO, dec(aiobreaker.CircuitBreaker(fail_max=5)(fresh()))),
    ]


# ---------------------------------------------------------------------------- 2. CLOSED async


async def _aloop(n: int, fn: Callable[[], Any]) -> float:
    start = cpu_clock()
    for _ in range(n):
        await fn()
    return cpu_clock() - start


async def _aloop_call(n: int, call: Callable[..., Any], fn: Callable[[], Any]) -> float:
    start = cpu_clock()
    for _ in range(n):
        await call(fn)
    return cpu_clock() - start


async def _aloop_with(n: int, brk: Any, fn: Callable[[], Any]) -> float:
    start = cpu_clock()
    for _ in range(n):
        async with brk:
            await fn()
    return cpu_clock() - start


def closed_async_cases(runner: AsyncRunner) -> list[Case]:
    async def target() -> None:
        return None

    def fresh() -> Callable[[], Any]:
        async def f() -> None:
            return None

        return f

    def dec(wrapper: Callable[[], Any]) -> Any:
        assert runner.run(wrapper()) is None
        return runner.loop_fn(_aloop, wrapper)

    tw_rate = tw(tripwise.error_rate_above(0.5, window=20))
    purg = purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)
    runner.run(purg.initialize())
    purg_name = uid("purg")
    purg_brk = runner.run(purg.get_breaker(purg_name))
    try:
        mlb(ml_breaker.error_rate_above(0.5, window=20))(fresh())
        mlb_note = "accepted an async function (not measured)"
    except TypeError:
        mlb_note = "rejects async functions at decoration (TypeError)"
    return [
        Case("bare", "bare call", "`await f()` of an empty coroutine (subtracted)", dec(target)),
        Case("tw", "tripwise", f"{TW_RATE}, async decorator", dec(tw_rate(fresh()))),
        Case(
            "tw_call",
            "tripwise",
            f"{TW_RATE}, `await breaker.acall(f)`",
            runner.loop_fn(_aloop_call, tw_rate.acall, target),
        ),
        Case("cb", "circuitbreaker", CFG_CB, dec(cb(failure_threshold=5)(fresh()))),
        Case("aio", "aiobreaker", CFG_AIO, dec(aiobreaker.CircuitBreaker(fail_max=5)(fresh()))),
        Case("purg", "purgatory", CFG_PURG, dec(purg(purg_name)(fresh()))),
        Case(
            "purg_cm",
            "purgatory",
            CFG_PURG_CM.replace("`with", "`async with"),
            runner.loop_fn(_aloop_with, purg_brk, target),
        ),
        Case(
            "pyb",
            "pybreaker",
            "n/a: async only through Tornado coroutines, not asyncio",
            None,
        ),
        Case("mlb", "ml-breaker", f"n/a: 0.1.1 {mlb_note}", None),
    ]


# ---------------------------------------------------------------------------- 3. OPEN + fallback

CATCH = "try:\n    v = f()\nexcept E:\n    v = FB"


def open_cases() -> list[Case]:
    def boom() -> None:
        raise RuntimeError("dependency down")

    def trip(fn: Callable[[], Any], times: int, expected: type[BaseException] | None) -> None:
        for _ in range(times):
            try:
                fn()
            except RuntimeError:
                pass
            except BaseException as exc:
                if expected is None or not isinstance(exc, expected):
                    raise

    def returns(fn: Callable[[], Any], times: int) -> Any:
        trip(fn, times, None)
        assert fn() == FALLBACK, "breaker did not open"
        return sync_loop("v = f()", {"f": fn})

    def raises(fn: Callable[[], Any], times: int, err: type[BaseException]) -> Any:
        trip(fn, times, err)
        first = second = None
        try:
            fn()
        except err as exc:
            first = exc
        try:
            fn()
        except err as exc:
            second = exc
        assert first is not None, "breaker did not open"
        loop = sync_loop(CATCH, {"f": fn, "E": err, "FB": FALLBACK})
        if first is not second:
            return loop
        # purgatory raises its OPEN state object itself, every time: each raise prepends to that
        # one exception's traceback, which grows without bound (millions of live objects after a
        # full run). Drop the chain between measurements, outside the timed loop, so the growth
        # does not burden the cases measured after it.
        shared = first

        def cleared(n: int) -> float:
            try:
                return loop(n)
            finally:
                shared.__traceback__ = None

        return cleared

    def rate(**kw: Any) -> tripwise.CircuitBreaker:
        return tw(tripwise.error_rate_above(0.5, window=20), half_open_after=3600.0, **kw)

    purg = purgatory.SyncCircuitBreakerFactory(default_threshold=1, default_ttl=3600)
    return [
        Case("bare", "empty loop", "timeit loop with no call (subtracted)", sync_loop("pass", {})),
        Case(
            "tw",
            "tripwise",
            f"{TW_RATE}, decorator, `fallback=` static value",
            returns(rate(fallback=FALLBACK)(boom), 20),
        ),
        Case(
            "tw_fn",
            "tripwise",
            f"{TW_RATE}, decorator, `fallback=` callable",
            returns(rate(fallback=lambda: FALLBACK)(boom), 20),
        ),
        Case(
            "tw_raise",
            "tripwise",
            f"{TW_RATE}, decorator, no fallback: raises CircuitBreakerOpen, caller substitutes",
            raises(rate()(boom), 20, tripwise.CircuitBreakerOpen),
        ),
        Case(
            "cb",
            "circuitbreaker",
            "failure_threshold=1, `fallback_function=` (its fallback path), no locks",
            returns(
                cb(
                    failure_threshold=1,
                    recovery_timeout=3600,
                    fallback_function=lambda: FALLBACK,
                )(boom),
                1,
            ),
        ),
        Case(
            "mlb",
            "ml-breaker",
            "consecutive_failures(1), `fallback=` static value, RLock",
            returns(
                mlb(ml_breaker.consecutive_failures(1), fallback=FALLBACK, half_open_after=3600)(
                    boom
                ),
                1,
            ),
        ),
        Case(
            "pyb",
            "pybreaker",
            "fail_max=1, raises CircuitBreakerError, caller substitutes; RLock",
            raises(
                pybreaker.CircuitBreaker(fail_max=1, reset_timeout=3600)(boom),
                1,
                pybreaker.CircuitBreakerError,
            ),
        ),
        Case(
            "purg",
            "purgatory",
            "threshold=1, decorator, raises its one OpenedState instance, caller substitutes",
            raises(purg(uid("purg"))(boom), 1, OpenedState),
        ),
        Case(
            "aio",
            "aiobreaker",
            "fail_max=1, raises CircuitBreakerError, caller substitutes",
            raises(
                aiobreaker.CircuitBreaker(fail_max=1, timeout_duration=timedelta(hours=1))(boom),
                1,
                aiobreaker.CircuitBreakerError,
            ),
        ),
    ]


# ---------------------------------------------------------------------------- 4. concurrency

THREADS, CALLS, SLEEP_S = 8, 50, 0.005
IDEAL_S = CALLS * SLEEP_S


def sleepy() -> None:
    time.sleep(SLEEP_S)


def concurrency_cases() -> list[tuple[str, str, str, Callable[[], Any]]]:
    purg = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)
    return [
        ("bare", "bare call", "no breaker", sleepy),
        ("tw", "tripwise", f"{TW_RATE}, decorator", tw(tripwise.error_rate_above(0.5))(sleepy)),
        (
            "tw_lat",
            "tripwise",
            "latency_above(1000 ms, window=20), decorator (locks around bookkeeping only)",
            tw(tripwise.latency_above(1000.0))(sleepy),
        ),
        ("cb", "circuitbreaker", CFG_CB, cb(failure_threshold=5)(sleepy)),
        ("pyb", "pybreaker", CFG_PYB, pybreaker.CircuitBreaker(fail_max=5)(sleepy)),
        (
            "mlb",
            "ml-breaker",
            f"{TW_RATE}: RLock held around the call",
            mlb(ml_breaker.error_rate_above(0.5, window=20))(sleepy),
        ),
        ("purg", "purgatory", CFG_PURG, purg(uid("purg"))(sleepy)),
        ("aio", "aiobreaker", CFG_AIO, aiobreaker.CircuitBreaker(fail_max=5)(sleepy)),
    ]


def run_threads(fn: Callable[[], Any]) -> float:
    barrier = threading.Barrier(THREADS + 1)

    def worker() -> None:
        barrier.wait()
        for _ in range(CALLS):
            fn()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def measure_concurrency(repeats: int) -> list[dict[str, Any]]:
    cases = concurrency_cases()
    walls: dict[str, list[float]] = {key: [] for key, *_ in cases}
    for r in range(repeats):
        shift = r % len(cases)
        for key, *_, fn in cases[shift:] + cases[:shift]:
            walls[key].append(run_threads(fn))
        log(f"  repeat {r + 1}/{repeats} done")
    bare = statistics.median(walls["bare"])
    return [
        {
            "key": key,
            "library": lib,
            "config": config,
            "best_s": min(walls[key]),
            "median_s": statistics.median(walls[key]),
            "ratio_to_ideal": statistics.median(walls[key]) / IDEAL_S,
            "ratio_to_bare": statistics.median(walls[key]) / bare,
        }
        for key, lib, config, _ in cases
    ]


# ---------------------------------------------------------------------------- reporting


def overhead_rows(cases: list[Case]) -> list[dict[str, Any]]:
    """ns over the baseline case ("bare"), and the ratio to circuitbreaker's ("cb")."""
    base = next(c.best_ns for c in cases if c.key == "bare")
    ref = next(c.best_ns for c in cases if c.key == "cb") - base
    rows = []
    for c in cases:
        if c.loop is None:
            rows.append({"key": c.key, "library": c.library, "config": c.config, "ns": None})
            continue
        ns = c.best_ns if c.key == "bare" else c.best_ns - base
        ratio = None if c.key == "bare" else ns / ref
        rows.append(
            {
                "key": c.key,
                "library": c.library,
                "config": c.config,
                "ns": ns,
                "ratio_vs_circuitbreaker": ratio,
                "calls_per_measurement": c.number,
            }
        )
    return rows


PAIRED_KEYS = ("tw_lat", "tw_q", "tw_rq")


def measure_paired(cases: list[Case], rounds: int) -> dict[str, dict[str, float]]:
    """The timed rows' ratios to circuitbreaker, paired: each round times the bare call,
    circuitbreaker and every row of ``PAIRED_KEYS`` back to back (order rotated), ~1/7 of a
    calibrated measurement each, and takes (row - bare) / (circuitbreaker - bare) within the
    round. Load that comes and goes during the run (the other core of a small machine) then
    hits both sides of a ratio alike; the median and quartiles over the rounds are reported.
    The best-of tables above compare minima taken at different moments."""
    by_key = {c.key: c for c in cases}
    group = [by_key[k] for k in ("bare", "cb", *PAIRED_KEYS)]
    ratios: dict[str, list[float]] = {k: [] for k in PAIRED_KEYS}
    for r in range(rounds):
        shift = r % len(group)
        ns: dict[str, float] = {}
        for case in group[shift:] + group[:shift]:
            assert case.loop is not None
            n = max(1, case.number // 7)
            ns[case.key] = case.loop(n) / n * 1e9
        ref = ns["cb"] - ns["bare"]
        for k in PAIRED_KEYS:
            ratios[k].append((ns[k] - ns["bare"]) / ref)
    out = {}
    for k, values in ratios.items():
        q1, median, q3 = statistics.quantiles(values, n=4)
        out[k] = {"median": median, "q1": q1, "q3": q3, "rounds": float(rounds)}
    return out


def render(rows: list[dict[str, Any]], ns_label: str) -> str:
    table = []
    for row in rows:
        ns = row["ns"]
        ratio = row.get("ratio_vs_circuitbreaker")
        table.append(
            [
                row["library"],
                row["config"],
                "n/a" if ns is None else f"{ns:,.0f}",
                "n/a" if ratio is None else f"{ratio:.2f}x",
            ]
        )
    return markdown_table(["library", "configuration", ns_label, "vs circuitbreaker"], table)


def render_concurrency(rows: list[dict[str, Any]]) -> str:
    table = [
        [
            r["library"],
            r["config"],
            f"{r['best_s']:.3f}",
            f"{r['median_s']:.3f}",
            f"{r['ratio_to_ideal']:.2f}x",
            f"{r['ratio_to_bare']:.2f}x",
        ]
        for r in rows
    ]
    headers = [
        "library",
        "configuration",
        "wall s (best)",
        "wall s (median)",
        "median / 0.25 s",
        "median / bare median",
    ]
    return markdown_table(headers, table)


def render_paired(results: dict[str, Any]) -> str:
    rows = []
    for key, p in results["paired"].items():
        row = pick(results["closed_sync"], key)
        rows.append(
            [
                row["config"],
                f"{p['median']:.2f}x",
                f"{p['q1']:.2f}x - {p['q3']:.2f}x",
                f"{row['ratio_vs_circuitbreaker']:.2f}x",
            ]
        )
    rounds = int(next(iter(results["paired"].values()))["rounds"])
    headers = [
        "tripwise",
        f"median of {rounds} rounds",
        "middle half",
        "best-of ratio (table 1)",
    ]
    return markdown_table(headers, rows)


def pick(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return next(r for r in rows if r["key"] == key)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, group, limit in (
        ("CLOSED sync, error_rate_above(0.5, window=20), vs circuitbreaker", "closed_sync", 0.6),
        ("CLOSED async, error_rate_above(0.5, window=20), vs circuitbreaker", "closed_async", 0.6),
        ("OPEN with fallback value, vs circuitbreaker's fallback path", "open_fallback", 0.5),
    ):
        value = pick(results[group], "tw")["ratio_vs_circuitbreaker"]
        out.append({"target": name, "value": value, "limit": limit, "pass": value <= limit})
    for name, key in (
        ("CLOSED sync, latency_above (timed path), vs circuitbreaker", "tw_lat"),
        ("CLOSED sync, quality_below (timed path), vs circuitbreaker", "tw_q"),
    ):
        value = pick(results["closed_sync"], key)["ratio_vs_circuitbreaker"]
        out.append({"target": name, "value": value, "limit": 1.5, "pass": value <= 1.5})
        paired = results["paired"][key]["median"]
        out.append(
            {
                "target": f"{name}, paired median",
                "value": paired,
                "limit": 1.5,
                "pass": paired <= 1.5,
            }
        )
    ratio = pick(results["concurrency"], "tw")["ratio_to_ideal"]
    out.append(
        {
            "target": f"{THREADS} threads x {CALLS} calls x 5 ms, median wall / {IDEAL_S:.2f} s",
            "value": ratio,
            "limit": 1.15,
            "pass": ratio <= 1.15,
        }
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short, noisier run")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--repeats", type=positive_int, help="best-of repeats (default 7, quick 3)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    target_s = 0.02 if args.quick else 0.07
    thread_repeats = 1 if args.quick else 4
    began = time.perf_counter()

    runner = AsyncRunner()
    results: dict[str, Any] = {}
    for group, build in (
        ("closed_sync", closed_sync_cases),
        ("closed_async", lambda: closed_async_cases(runner)),
        ("open_fallback", open_cases),
    ):
        log(f"measuring {group} ...")
        cases = build()
        measure(cases, repeats=repeats, target_s=target_s, progress=log)
        results[group] = overhead_rows(cases)
        if group == "closed_sync":
            log("measuring paired ratios ...")
            results["paired"] = measure_paired(cases, 15 if args.quick else 61)
    runner.close()
    log("measuring concurrency ...")
    results["concurrency"] = measure_concurrency(thread_repeats)
    checks = targets(results)
    libs = ["tripwise", "circuitbreaker", "pybreaker", "ml-breaker", "purgatory", "aiobreaker"]
    meta = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "versions": {name: metadata.version(name) for name in libs},
        "repeats": repeats,
        "target_s_per_measurement": target_s,
        "thread_repeats": thread_repeats,
        "elapsed_s": round(time.perf_counter() - began, 1),
        "command": "python bench/core_overhead.py" + (" --quick" if args.quick else ""),
    }
    if args.json:
        print(json.dumps({"meta": meta, "results": results, "targets": checks}, indent=2))
        return 0
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    print(f"Python {meta['python']} on {meta['machine']}; {versions}")
    print(
        f"best of {repeats} interleaved repeats, ~{target_s}s of thread CPU time per "
        "measurement, gc on; "
        f"run took {meta['elapsed_s']}s\n"
    )
    print("### 1. CLOSED, sync (ns per call over the bare call)\n")
    print(render(results["closed_sync"], "ns overhead"))
    print("\n### 2. CLOSED, async (ns per call over the bare `await`)\n")
    print(render(results["closed_async"], "ns overhead"))
    print("\n### 3. OPEN, rejected call answered with a fallback value (whole call, ns)\n")
    print(render(results["open_fallback"], "ns per rejected call"))
    print(
        f"\n### 4. {THREADS} threads x {CALLS} calls sleeping 5 ms (ideal {IDEAL_S:.2f} s; "
        f"wall clock, {thread_repeats} interleaved repeats)\n"
    )
    print(render_concurrency(results["concurrency"]))
    print("\n### 5. The timed rows of table 1, paired with circuitbreaker round by round\n")
    print(render_paired(results))
    print()
    for c in checks:
        verdict = "PASS" if c["pass"] else "FAIL"
        print(f"{verdict}  {c['target']}: {c['value']:.2f}x (limit {c['limit']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
