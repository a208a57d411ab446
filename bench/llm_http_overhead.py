"""What tripwise.http and tripwise.llm add to a request, against a fast local
OpenAI-compatible server (bench/_fast_llm_server.py, its own process), all in one run:

- ``httpx`` / ``httpx2``: a bare client's ``post(json=...)`` + ``.json()`` vs the same client
  with ``transport=BreakerTransport(...)`` (breaker per origin, status classification);
- ``LLMService.complete`` (breaker from the health checker, default output checks, metadata)
  vs the bare httpx client doing the same request;
- a fallback hop: the first backend answers 500, the transport rewrites the request to the
  second one; compared with one bare round trip (budget: one extra round trip + 1 ms).

Per request: wall-clock microseconds (best of ``--repeat`` interleaved rounds of
``--number`` requests) and the client thread's CPU microseconds.
Run: ``python bench/llm_http_overhead.py [--number 100] [--repeat 40]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import httpx2

from tripwise import Registry, consecutive_failures
from tripwise.http import BreakerTransport
from tripwise.llm import AllAttemptsFailed, CircuitBreakerError, LLMService
from tripwise.policies import HealthChecker

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_fast_llm_server.py")), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc, f"http://127.0.0.1:{port}"


def timed(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    """(wall µs, cpu µs) per call over n calls."""
    w0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - w0) / n * 1e6, (time.thread_time() - c0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--number", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=40)
    args = ap.parse_args()
    proc, url = start_server()
    try:
        run(url, args.number, args.repeat)
    finally:
        proc.terminate()
        proc.wait()


def run(url: str, number: int, repeat: int) -> None:
    base = url + "/v1"
    never = consecutive_failures(10**9)  # the hop case must not trip the failing backend
    clients = {
        "httpx bare": httpx.Client(base_url=base),
        "httpx + BreakerTransport": httpx.Client(
            base_url=base, transport=BreakerTransport(httpx.HTTPTransport(), registry=Registry())
        ),
        "httpx2 bare": httpx2.Client(base_url=base),
        "httpx2 + BreakerTransport": httpx2.Client(
            base_url=base,
            transport=BreakerTransport(httpx2.HTTPTransport(), registry=Registry()),
        ),
        "httpx fallback hop (500, then 2nd backend)": httpx.Client(
            base_url=url + "/fail/v1",
            transport=BreakerTransport(
                httpx.HTTPTransport(),
                registry=Registry(),
                trip_on=never,
                key="path",
                base_path="/fail/v1",
                fallback=[base],
            ),
        ),
    }
    service = LLMService(base_url=base, model="m", health_checker=HealthChecker(registry=None))
    cases: dict[str, Callable[[], Any]] = {
        name: (
            lambda c=c: c.post(
                "/chat/completions", json={"model": "m", "messages": MESSAGES}
            ).json()
        )
        for name, c in clients.items()
    }
    cases["LLMService.complete"] = lambda: service.complete("What is 2+2?")
    for fn in cases.values():  # warm up connections and caches
        for _ in range(50):
            fn()
    best: dict[str, tuple[float, float]] = {}
    names = list(cases)
    for r in range(repeat):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            wall, cpu = timed(cases[name], number)
            old = best.get(name)
            best[name] = (min(wall, old[0]), min(cpu, old[1])) if old else (wall, cpu)
    print(
        f"python {platform.python_version()}, load {os.getloadavg()[0]:.2f}, "
        f"{number} requests x best of {repeat}"
    )
    print("| case | wall µs/request | CPU µs/request | ratio (wall) | ratio (CPU) |")
    print("|---|---:|---:|---:|---:|")
    refs = {"httpx": best["httpx bare"], "httpx2": best["httpx2 bare"]}
    for name in names:
        wall, cpu = best[name]
        ref = refs["httpx2" if name.startswith("httpx2") else "httpx"]
        print(f"| {name} | {wall:.0f} | {cpu:.0f} | {wall / ref[0]:.3f}x | {cpu / ref[1]:.3f}x |")
    hop = best["httpx fallback hop (500, then 2nd backend)"][0]
    print(
        f"\nLLMService.complete with every tier open: {fail_fast_us(url):.1f} µs per call "
        "(CircuitBreakerError; the seed's target: < 1 ms)"
    )
    rt = best["httpx bare"][0]
    print(
        f"\nfallback hop: {hop:.0f} µs = one round trip {rt:.0f} µs + {hop - rt:.0f} µs "
        f"(budget: one extra round trip + 1000 µs = {2 * rt + 1000:.0f} µs)"
    )


def fail_fast_us(url: str, n: int = 20000) -> float:
    """µs per ``complete`` when every tier's breaker is open (best of 5 rounds)."""
    svc = LLMService(
        base_url=url + "/fail/v1",
        fallback_base_url=url + "/fail/local/v1",
        health_checker=HealthChecker(registry=None),
        failure_threshold=1,
        waits=(0, 0),
    )
    with contextlib.suppress(AllAttemptsFailed):
        svc.complete("x")  # opens both

    def once() -> None:
        try:
            svc.complete("x")
        except CircuitBreakerError:
            pass
        else:  # pragma: no cover
            raise AssertionError("expected every tier to be open")

    once()
    return min(timed(once, n)[0] for _ in range(5))


if __name__ == "__main__":
    main()
