"""Micro benchmark of the core breaker's CLOSED-state paths (in-memory, no store).

Run: ``python bench/core_hotpath.py`` (best of 7 x 200,000 calls per path). Used to check that
hooks for shared stores leave the in-memory hot path as fast as it was.
"""

from __future__ import annotations

import argparse
import timeit

from tripwise import CircuitBreaker, error_rate_above, latency_above


def _paths() -> dict[str, object]:
    def f() -> int:
        return 1

    lean = CircuitBreaker(registry=None)(f)
    rate = CircuitBreaker(error_rate_above(0.5, window=20), registry=None)(f)
    timed = CircuitBreaker(latency_above(1000.0, window=20), registry=None)(f)
    ctx = CircuitBreaker(registry=None)
    call = CircuitBreaker(registry=None)

    def with_block() -> None:
        with ctx:
            f()

    return {
        "bare f()": f,
        "decorator, consecutive_failures (lean)": lean,
        "decorator, error_rate_above count window": rate,
        "decorator, latency_above (timed)": timed,
        "with breaker:": with_block,
        "breaker.call(f)": lambda: call.call(f),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"{'path':45s} {'ns/call':>9s}")
    for label, fn in _paths().items():
        best = min(timeit.repeat(fn, number=args.number, repeat=args.repeat))  # type: ignore[arg-type]
        print(f"{label:45s} {best / args.number * 1e9:9.0f}")


if __name__ == "__main__":
    main()
