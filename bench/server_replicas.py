"""Replica-mode benchmark: ingest throughput and trip-to-client latency with 1 and 3
``tripwise serve`` replicas on one PostgreSQL database (fresh, dropped afterwards) and one
Redis (a unique key prefix, deleted afterwards), next to one plain process on the same
PostgreSQL without Redis.

- ingest: signed gzip 500-sample batches over keep-alive connections spread round-robin
  over the replicas (so with 3 replicas two thirds of the batches are forwarded to the
  evaluating replica through Redis); accepted samples/s as counted by the servers.
- stream: SSE clients spread over the replicas; each round a manual override is sent to a
  different replica and the time to the event's arrival at every client is recorded.

    python bench/server_replicas.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from tests.support.postgres_service import fresh_database, postgres_port  # noqa: E402
from tests.support.redis_service import delete_namespace, redis_url  # noqa: E402
from tests.support.server_process import ServerProcess  # noqa: E402

from server_load import (  # noqa: E402
    SSEClient,
    _read_response,
    build_batches,
    pct,
    setup_project,
)


async def ingest(ports: list[int], requests: list[bytes], senders: int) -> tuple[float, int]:
    queue = list(reversed(requests))
    accepted = 0
    conns = [
        await asyncio.open_connection("127.0.0.1", ports[i % len(ports)]) for i in range(senders)
    ]

    async def sender(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        while queue:
            writer.write(queue.pop())
            status, body = await _read_response(reader)
            assert status == 202, body
            accepted += json.loads(body)["accepted"]
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(sender(r, w) for r, w in conns))
    return time.perf_counter() - started, accepted


async def stream(
    servers: list[ServerProcess],
    admin: str,
    pid: str,
    bid: str,
    pk: str,
    clients: int,
    rounds: int,
    snapshot: int,
) -> list[float]:
    loop = asyncio.get_running_loop()
    request = (
        f"GET /v1/projects/{pid}/breakers/state:stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {pk}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    arrivals: list[list[float]] = [[] for _ in range(rounds)]
    conns = []
    for i in range(clients):
        port = servers[i % len(servers)].port
        _, proto = await loop.create_connection(
            lambda: SSEClient(request, snapshot, arrivals), "127.0.0.1", port
        )
        conns.append(proto)
    await asyncio.wait_for(asyncio.gather(*(c.ready for c in conns)), 120)
    await asyncio.sleep(0.5)
    latencies: list[float] = []
    admins = [
        httpx.AsyncClient(base_url=s.url, headers={"Authorization": f"Bearer {admin}"})
        for s in servers
    ]
    for a in admins:
        await a.get("/healthz")
    for i in range(rounds):
        mode = "force_open" if i % 2 == 0 else "force_closed"
        sent = time.perf_counter()
        r = await admins[i % len(admins)].post(
            f"/v1/projects/{pid}/breakers/{bid}/override", json={"mode": mode}
        )
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        while len(arrivals[i]) < clients and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        latencies.extend((t - sent) * 1000 for t in arrivals[i])
        await asyncio.sleep(0.3)
    for a in admins:
        await a.aclose()
    for conn in conns:
        conn.transport.close()
    if clients * rounds != len(latencies):
        print(f"stream: WARNING {clients * rounds - len(latencies)} deliveries missing")
    return latencies


def run(label: str, replicas: int, use_redis: bool, pg: int, args: argparse.Namespace) -> None:
    at = redis_url()
    prefix = f"tripwise_bench_{uuid.uuid4().hex[:8]}"
    admin = "eb_admin_" + secrets.token_hex(16)
    env = {
        "TRIPWISE_RATE_LIMIT_PER_S": "100000",
        "TRIPWISE_RATE_LIMIT_BURST": "100000",
        "TRIPWISE_INGEST_RATE_LIMIT_PER_S": "100000",
        "TRIPWISE_INGEST_RATE_LIMIT_BURST": "100000",
    }
    if use_redis:
        env |= {"TRIPWISE_REDIS": at, "TRIPWISE_REDIS_PREFIX": prefix}
    with fresh_database(pg) as db, tempfile.TemporaryDirectory() as tmp:
        servers = [ServerProcess(db, admin, env=env) for _ in range(replicas)]
        try:
            for i, s in enumerate(servers):
                s.start(Path(tmp) / f"r{i}.log")
            pid, secret, pk, rid, bids = setup_project(servers[0].url, admin, 4)
            time.sleep(2.5)  # every replica has reloaded and one holds the lease
            n = 200 if args.quick else 1000
            requests = build_batches(secret, rid, pid, n + 20, 500)
            ports = [s.port for s in servers]
            asyncio.run(ingest(ports, requests[:20], args.senders))
            elapsed, accepted = asyncio.run(ingest(ports, requests[20:], args.senders))
            print(
                f"{label}: ingest {accepted / elapsed:,.0f} samples/s ({accepted:,} samples in "
                f"{elapsed:.2f} s, {args.senders} connections over {replicas} process(es))"
            )
            lat = asyncio.run(
                stream(servers, admin, pid, bids[0], pk, args.clients, args.rounds, len(bids))
            )
            print(
                f"{label}: trip to {args.clients} SSE clients over {replicas} process(es), "
                f"{args.rounds} rounds: p50 {pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms"
            )
        finally:
            for s in servers:
                s.stop()
            delete_namespace(at, prefix)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--senders", type=int, default=6)
    ap.add_argument("--clients", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    with postgres_port() as pg:
        run("one process, PostgreSQL, no Redis", 1, False, pg, args)
        run("replica mode, 1 replica", 1, True, pg, args)
        run("replica mode, 3 replicas", 3, True, pg, args)


if __name__ == "__main__":
    main()
