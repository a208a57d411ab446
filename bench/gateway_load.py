"""Load test of an OpenAI-compatible endpoint (the seed's ``load_test.py``, same flags).

    python bench/gateway_load.py --requests 1000 --concurrency 50
    python bench/gateway_load.py --url http://127.0.0.1:8000 --stream --requests 500

Reports throughput, latency p50/p90/p99 (time to the last byte; with ``--stream`` also the
time to the first byte), the tier that answered (the gateway's ``x-tripwise-backend``
header) and the errors by kind.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import time
from typing import Any

import aiohttp


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = args.url.rstrip("/") + "/v1/chat/completions"
    body: dict[str, Any] = {"messages": [{"role": "user", "content": args.prompt}]}
    if args.model:
        body["model"] = args.model
    if args.stream:
        body["stream"] = True
    payload = json.dumps(body).encode()
    headers = {"content-type": "application/json", **dict(h.split(":", 1) for h in args.header)}
    latencies: list[float] = []
    firsts: list[float] = []
    tiers: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    todo = iter(range(args.requests))
    # aiohttp, not httpx: httpx's pool costs more CPU per request than the gateway under test
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

        async def one() -> None:
            start = time.perf_counter()
            try:
                async with client.post(url, data=payload, headers=headers) as resp:
                    first = None
                    async for _ in resp.content.iter_any():
                        if first is None:
                            first = time.perf_counter() - start
                    if resp.status != 200:
                        errors[f"http_{resp.status}"] += 1
                        return
                    tiers[resp.headers.get("x-tripwise-backend", "(no header)")] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                errors[type(exc).__name__] += 1
                return
            latencies.append(time.perf_counter() - start)
            if first is not None:
                firsts.append(first)

        async def worker() -> None:
            for _ in todo:
                await one()

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - began
    ms = [x * 1000 for x in latencies]
    report: dict[str, Any] = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "ok": len(latencies),
        "errors": dict(errors),
        "seconds": round(elapsed, 3),
        "throughput_rps": round(args.requests / elapsed, 1),
        "latency_ms": {q: round(percentile(ms, q), 2) for q in (50, 90, 99)},
        "tier_usage": dict(tiers),
    }
    if args.stream:
        report["first_byte_ms"] = {
            q: round(percentile([x * 1000 for x in firsts], q), 2) for q in (50, 99)
        }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load test an OpenAI-compatible gateway.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="gateway base URL")
    parser.add_argument("--requests", type=int, default=1000, help="requests in total")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight")
    parser.add_argument("--model", default=None, help="model name (default: none, as the seed)")
    parser.add_argument("--prompt", default="Hello", help="user message")
    parser.add_argument("--stream", action="store_true", help="ask for SSE streams")
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument(
        "--header", action="append", default=[], help="extra header 'name:value' (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON only")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be >= 1")
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"requests     {report['ok']}/{report['requests']} ok at concurrency {args.concurrency}")
    print(f"throughput   {report['throughput_rps']} req/s ({report['seconds']} s)")
    lat = report["latency_ms"]
    print(f"latency      p50 {lat[50]} ms  p90 {lat[90]} ms  p99 {lat[99]} ms")
    if args.stream:
        fb = report["first_byte_ms"]
        print(f"first byte   p50 {fb[50]} ms  p99 {fb[99]} ms")
    print("tier usage   " + ", ".join(f"{k}: {v}" for k, v in report["tier_usage"].items()))
    print("errors       " + (", ".join(f"{k}: {v}" for k, v in report["errors"].items()) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
