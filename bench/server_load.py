"""Control-plane load benchmark: ingest throughput, trip-to-client latency, evaluation tick.

Starts one real ``python -m tripwise.server`` process (SQLite in a temp dir) on 127.0.0.1 and:

1. ingest: several concurrent senders POST signed, gzip-compressed 500-sample batches;
   reports accepted samples per second (server-side counts).
2. stream: 1,000 SSE clients connected; a breaker is tripped (manual override, so the timing
   excludes the evaluator's tick period) and each client's receive time is compared with the
   moment the trip was requested; p50 / p99 over all clients and rounds.
3. tick: in-process, one evaluation pass over 1,000 breakers that all received new samples.

    python bench/server_load.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import hmac
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

try:
    import uvloop
except ImportError:  # pragma: no cover - optional speed-up of the load generator
    uvloop = None

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.server_process import ServerProcess  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def setup_project(url: str, admin: str, breakers: int) -> tuple[str, str, str, str, list[str]]:
    h = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=url, headers=h) as c:
        pid = c.post("/v1/projects", json={"name": "bench"}).json()["project_id"]
        secret = c.post(f"/v1/projects/{pid}/ingest_secret/rotate").json()["ingest_secret"]
        pk = c.post(f"/v1/projects/{pid}/keys", json={"name": "bench"}).json()["key"]
        bids = []
        for i in range(breakers):
            body = {
                "name": f"b{i}",
                "metric": "latency_ms",
                "kind": "p95",
                "op": "gt",
                "threshold": 1e9,
                "eval_interval_ms": 500,
            }
            bids.append(c.post(f"/v1/projects/{pid}/breakers", json=body).json()["breaker"]["id"])
        rid = c.post(f"/v1/projects/{pid}/routers", json={"name": "r", "mode": "static"}).json()[
            "router"
        ]["id"]
        c.post(f"/v1/projects/{pid}/routers/{rid}/breakers", json={"breaker_ids": bids})
    return pid, secret, pk, rid, bids


def build_batches(secret: str, rid: str, pid: str, n: int, size: int, seed: int = 7) -> list[bytes]:
    """Pre-built, pre-signed raw HTTP/1.1 requests (gzip bodies of ``size`` samples).

    Values are random floats (log-normal latencies) and timestamps spread over the last
    second, like real traffic; every request has its own timestamp, so none is a replay.
    """
    key = bytes.fromhex(secret)
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        samples = [
            {
                "router_id": rid,
                "metric": "latency_ms",
                "ts_ms": now - rng.randrange(1000),
                "value": rng.lognormvariate(4.0, 0.8),
                "ok": rng.random() > 0.02,
            }
            for _ in range(size)
        ]
        raw = gzip.compress(json.dumps({"samples": samples}).encode(), 6)
        ts = str(now + i)
        sig = hmac.new(key, ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
        head = (
            f"POST /v1/projects/{pid}/ingest HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n"
            "Content-Encoding: gzip\r\n"
            f"X-EB-Timestamp: {ts}\r\n"
            f"X-EB-Signature: v1={sig}\r\n"
            f"Content-Length: {len(raw)}\r\n\r\n"
        )
        out.append(head.encode() + raw)
    return out


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def ingest_bench(port: int, requests: list[bytes], senders: int) -> tuple[float, int, int]:
    """``senders`` keep-alive HTTP/1.1 connections, one request in flight on each; returns
    (seconds, accepted samples as counted by the server, requests)."""
    queue = list(reversed(requests))
    accepted = 0
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(senders)]

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
    return time.perf_counter() - started, accepted, len(requests)


class SSEClient(asyncio.Protocol):
    """One SSE connection as a bare protocol (cheap: no coroutine wake-up per event).

    Counts ``data:`` lines; after the snapshot (one event per breaker) it stamps the arrival
    time of every event with ``perf_counter`` as soon as its bytes reach this process.
    """

    def __init__(self, request: bytes, snapshot: int, arrivals: list[list[float]]) -> None:
        self.request = request
        self.snapshot_left = snapshot
        self.arrivals = arrivals
        self.seen = 0
        self.ready = asyncio.get_running_loop().create_future()
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport  # uvloop transports are not asyncio.Transport
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        text = self.tail + data
        events = text.count(b"\ndata: ") + text.startswith(b"data: ")
        self.tail = text[-8:]
        events -= self.tail.count(b"\ndata: ")  # counted again with the next chunk
        for _ in range(events):
            if self.snapshot_left:
                self.snapshot_left -= 1
                if not self.snapshot_left and not self.ready.done():
                    self.ready.set_result(None)
                continue
            if self.seen < len(self.arrivals):
                self.arrivals[self.seen].append(now)
            self.seen += 1


async def stream_bench(
    url: str,
    port: int,
    admin: str,
    pid: str,
    bid: str,
    pk: str,
    clients: int,
    rounds: int,
    snapshot_size: int,
) -> list[float]:
    """``clients`` SSE connections; each round trips (or resets) a breaker through the manual
    override and measures, per client, the time from just before the admin request is sent to
    the arrival of the state event; returns all latencies in ms."""
    loop = asyncio.get_running_loop()
    request = (
        f"GET /v1/projects/{pid}/breakers/state:stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {pk}\r\nAccept: text/event-stream\r\n"
        "Cache-Control: no-cache\r\n\r\n"
    ).encode()
    arrivals: list[list[float]] = [[] for _ in range(rounds)]
    conns = []
    for i in range(clients):
        _, proto = await loop.create_connection(
            lambda: SSEClient(request, snapshot_size, arrivals), "127.0.0.1", port
        )
        conns.append(proto)
        if i % 100 == 99:
            await asyncio.sleep(0.05)  # let the server accept and answer
    await asyncio.wait_for(asyncio.gather(*(c.ready for c in conns)), 120)
    await asyncio.sleep(0.5)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin}"}) as c:
        await c.get("/healthz")  # open the admin connection outside the timed part
        for i in range(rounds):
            mode = "force_open" if i % 2 == 0 else "force_closed"
            sent = time.perf_counter()
            r = await c.post(f"/v1/projects/{pid}/breakers/{bid}/override", json={"mode": mode})
            assert r.status_code == 200, r.text
            deadline = time.monotonic() + 30
            while len(arrivals[i]) < clients and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            latencies.extend((t - sent) * 1000 for t in arrivals[i])
            await asyncio.sleep(0.3)
    for conn in conns:
        conn.transport.close()
    missing = clients * rounds - len(latencies)
    if missing:
        print(f"stream: WARNING {missing} deliveries did not arrive within 30 s")
    return latencies


def tick_bench(breakers: int, rounds: int) -> list[float]:
    from tripwise.server.evaluator.breaker import KINDS, BreakerRuntime
    from tripwise.server.evaluator.projects import ProjectRuntime, RouterRuntime

    project = ProjectRuntime(
        SimpleNamespace(
            id="p", org_id="o", name="p", enable_signed_ingest=False, ingest_secret="00"
        )
    )
    now = int(time.time() * 1000)
    rng = random.Random(1)
    kinds = [k for k in KINDS]
    for i in range(breakers):
        row = SimpleNamespace(
            id=f"b{i}",
            project_id="p",
            name=f"b{i}",
            metric="m",
            kind=kinds[i % len(kinds)],
            op="gt",
            threshold=1e12,
            kind_params={},
            window_ms=60_000,
            min_count=1,
            min_state_duration_ms=0,
            cooldown_ms=30_000,
            eval_interval_ms=0,
            half_open_backoff_enabled=True,
            half_open_backoff_cap_ms=300_000,
            half_open_indeterminate_policy="conservative",
            recovery_allow_rate_ramp_steps=4,
            state="closed",
            allow_rate=1.0,
            state_changed_ms=now,
            rate_changed_ms=now,
            half_open_failures=0,
            healthy_evals=0,
            override="automatic",
            override_reason=None,
        )
        project.breakers[row.id] = BreakerRuntime(row, now_ms=now)
    project.routers["r"] = RouterRuntime("r", "r", True, set(project.breakers))
    for j in range(200):  # 200 samples per breaker spread over the window
        samples = [
            {
                "router_id": "r",
                "metric": "m",
                "ts_ms": now - 59_000 + j * 290,
                "value": rng.uniform(1, 1000),
                "ok": rng.random() > 0.1,
            }
        ]
        project.ingest(samples, now, __import__("collections").Counter())
    times = []
    changes: list = []
    for r in range(rounds):
        t = now + r
        project.ingest(
            [{"router_id": "r", "metric": "m", "ts_ms": t, "value": 5.0, "ok": True}],
            t,
            __import__("collections").Counter(),
        )  # every breaker is dirty
        started = time.perf_counter()
        project.evaluate(t, changes)
        times.append((time.perf_counter() - started) * 1000)
    return times


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), to show who used the cores."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_ingest(server: ServerProcess, pid: str, requests: list[bytes], senders: int) -> None:
    assert server.proc is not None
    asyncio.run(ingest_bench(server.port, requests[:20], senders))  # warm-up, not timed
    timed = requests[20:]
    server_cpu = cpu_seconds(server.proc.pid)
    client_cpu = time.process_time()
    elapsed, accepted, n = asyncio.run(ingest_bench(server.port, timed, senders))
    client_cpu = time.process_time() - client_cpu
    after = cpu_seconds(server.proc.pid)
    used = f"server CPU {(after - server_cpu) / elapsed:.0%}" if server_cpu and after else ""
    print(
        f"ingest: {accepted:,} samples accepted in {elapsed:.2f} s = {accepted / elapsed:,.0f} "
        f"samples/s ({n} signed gzip requests of 500 samples, {senders} keep-alive "
        f"connections, 4 p95 breakers on the router; {used}, load generator CPU "
        f"{client_cpu / elapsed:.0%}) target >= 200,000"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller run (smoke test)")
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--only", choices=("ingest", "stream", "tick"), help="run one measurement only")
    ap.add_argument("--http", default=None, help="uvicorn HTTP implementation (TRIPWISE_HTTP)")
    args = ap.parse_args()
    if uvloop is not None:
        uvloop.install()  # the load generator's own loop: keep it cheap
    n_batches = 300 if args.quick else 2000
    admin = "eb_admin_" + secrets.token_hex(8)
    env = {
        "TRIPWISE_RATE_LIMIT_PER_S": "1000000",
        "TRIPWISE_RATE_LIMIT_BURST": "1000000",
        "TRIPWISE_INGEST_RATE_LIMIT_PER_S": "1000000",
        "TRIPWISE_INGEST_RATE_LIMIT_BURST": "1000000",
    }
    if args.http:
        env["TRIPWISE_HTTP"] = args.http
    if args.only in (None, "ingest", "stream"):
        with tempfile.TemporaryDirectory() as tmp:
            server = ServerProcess(f"sqlite:///{tmp}/bench.db", admin, env=env)
            server.start(Path(tmp) / "server.log")
            try:
                pid, secret, pk, rid, bids = setup_project(server.url, admin, breakers=4)
                if args.only in (None, "ingest"):
                    requests = build_batches(secret, rid, pid, n_batches, 500)
                    run_ingest(server, pid, requests, args.senders)
                if args.only in (None, "stream"):
                    lat = asyncio.run(
                        stream_bench(
                            server.url,
                            server.port,
                            admin,
                            pid,
                            bids[0],
                            pk,
                            args.clients,
                            4 if args.quick else 10,
                            len(bids),
                        )
                    )
                    print(
                        f"stream: {len(lat)} deliveries to {args.clients} SSE clients: "
                        f"p50 {statistics.median(lat):.1f} ms, p99 {pct(lat, 0.99):.1f} ms, "
                        f"max {max(lat):.1f} ms (target p99 < 100 ms)"
                    )
            finally:
                server.stop()
    if args.only in (None, "tick"):
        ticks = tick_bench(1000, 20 if args.quick else 100)
        print(
            f"tick: 1,000 breakers (all kinds, all with new samples): mean "
            f"{statistics.mean(ticks):.2f} ms, p99 {pct(ticks, 0.99):.2f} ms (target < 10 ms)"
        )


if __name__ == "__main__":
    main()
