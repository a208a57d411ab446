"""Shared timing helpers for the bench/ scripts.

Every script here compares tripwise with peer libraries in ONE process. To keep the comparison
fair on a noisy 2-core machine the helpers:

* time each case with a timeit-style loop (``timeit.Timer``: the statement is compiled into a
  tight ``for`` loop). Unlike timeit's default the garbage collector stays ON: a library whose
  guarded call leaves reference cycles behind pays for collecting them, as it would in a real
  program (with the collector off such garbage piles up and distorts every later case);
* clock the loops with the CPU time of the benchmark thread (``time.thread_time``), not the
  wall clock: on a shared machine other processes preempt us, which inflates wall-clock
  samples at random and skews ratios; CPU time of this thread only counts our own work;
* size the loop per case so one measurement lasts about ``target_s`` seconds;
* take the best of ``repeats`` measurements (the least disturbed one);
* interleave the cases: repeat ``r`` runs every case once, in an order rotated by ``r``, so slow
  drift of the machine (frequency scaling, other processes) hits every case alike.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import timeit
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

cpu_clock = time.thread_time
"""The clock of every timing loop: CPU seconds used by the calling thread."""

LoopFn = Callable[[int], float]
"""``loop(n)`` runs a case ``n`` times and returns the elapsed seconds."""


def sync_loop(stmt: str, namespace: dict[str, Any]) -> LoopFn:
    """A timeit loop over ``stmt`` (may be several lines), names taken from ``namespace``;
    the garbage collector stays enabled while it runs."""
    timer = timeit.Timer(
        stmt, setup="_gc.enable()", timer=cpu_clock, globals={**namespace, "_gc": gc}
    )
    return timer.timeit


class AsyncRunner:
    """Runs async timing loops on one event loop (garbage collector on, like sync_loop).

    ``loop_fn(aloop, *args)`` turns ``async def aloop(n, *args) -> float`` (which awaits the
    case ``n`` times and returns the elapsed seconds) into a :data:`LoopFn`.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def loop_fn(self, aloop: Callable[..., Awaitable[float]], *args: Any) -> LoopFn:
        def loop(n: int) -> float:
            return float(self.run(aloop(n, *args)))

        return loop

    def close(self) -> None:
        self.loop.close()


@dataclass
class Case:
    """One measured line of a table."""

    key: str
    library: str
    config: str
    loop: LoopFn | None  # None: the library cannot do this (reported as n/a)
    note: str = ""
    number: int = 0  # calls per measurement, set by calibration
    best_ns: float = field(default=float("inf"))


def calibrate(loop: LoopFn, target_s: float) -> int:
    """The smallest n in 1, 2, 5, 10, 20, 50, ... whose loop takes at least ``target_s``."""
    n = 1
    while True:
        for mult in (1, 2, 5):
            number = n * mult
            if loop(number) >= target_s:
                return number
        n *= 10


def measure(
    cases: Sequence[Case],
    *,
    repeats: int,
    target_s: float,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Fill ``best_ns`` (ns per call, best of ``repeats``) of every case, interleaved."""
    live = [c for c in cases if c.loop is not None]
    for case in live:
        assert case.loop is not None
        case.loop(max(1, case.number or 10))  # warm up caches and lazy setup
        case.number = calibrate(case.loop, target_s)
    for r in range(repeats):
        shift = r % len(live) if live else 0
        for case in live[shift:] + live[:shift]:
            assert case.loop is not None
            ns = case.loop(case.number) / case.number * 1e9
            case.best_ns = min(case.best_ns, ns)
        if progress is not None:
            progress(f"  repeat {r + 1}/{repeats} done")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; numeric-looking columns are right-aligned."""

    def numeric(col: int) -> bool:
        cells = [row[col] for row in rows if row[col] not in ("n/a", "")]
        return bool(cells) and all(
            c.replace(",", "").replace(".", "").replace("x", "").replace("-", "").isdigit()
            for c in cells
        )

    aligns = ["---:" if numeric(i) else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(aligns) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def count_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``low`` (a count of repeats, rows, rounds)."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if n < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {n}")
        return n

    return parse


positive_int = count_at_least(1)


def log(msg: str) -> None:
    """Progress goes to stderr so ``--json`` output on stdout stays clean."""
    print(msg, file=sys.stderr, flush=True)
