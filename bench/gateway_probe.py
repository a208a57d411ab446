"""Interleaved latency probe for the gateway benchmark: first streamed byte and fallback hop.

    taskset -c 0 python bench/gateway_probe.py --upstream 9100 --rounds 1000 \\
        --target '{"name": "direct", "port": 9100, "stream": true}' \\
        --target '{"name": "gw", "port": 9200, "stream": true}' ...

Why not wrk or httpx: on a shared 2-core machine the load drifts within seconds, so two
medians taken in separate runs differ by more than the effect measured (1 ms); and a Python
HTTP client spends ~0.3 ms of CPU per request on the core the upstream needs. This probe is a
raw-socket HTTP/1.1 keep-alive client (one connection per target, TCP_NODELAY) that waits in
``recv`` while a request is out, and sends the requests round-robin: every round is one request
to each target, so all targets see the same load, and per-round differences pair neighbours.

A target is a JSON object: ``name``, ``port``, ``path`` (default ``/v1/chat/completions``),
``model`` (default ``bench-model``), ``stream`` (default false), ``headers``. For JSON targets
the sample is the time to the whole answer; for streams, the time to the first ``data:`` byte.
With
``--upstream PORT`` (bench/gateway_upstream.py) the upstream's own clock (CLOCK_MONOTONIC, the
same for every process) stamps when it starts each streamed answer, so each stream sample also
gives ``relay``: from the upstream's first byte to the client's (the gateway's part of a
stream's first byte, without the request's way in). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
import urllib.request
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import count_at_least


@dataclass
class Target:
    name: str
    port: int
    path: str
    model: str
    stream: bool
    headers: dict[str, str] = field(default_factory=dict)
    samples: list[int] = field(default_factory=list)  # ns from send to first byte / answer
    first_at: list[int] = field(default_factory=list)  # client clock at the first data byte
    sock: socket.socket | None = None
    request: bytes = b""

    @classmethod
    def parse(cls, spec: str) -> Target:
        d = json.loads(spec)
        return cls(
            str(d["name"]),
            int(d["port"]),
            str(d.get("path", "/v1/chat/completions")),
            str(d.get("model", "bench-model")),
            bool(d.get("stream", False)),
            {str(k): str(v) for k, v in d.get("headers", {}).items()},
        )

    def connect(self) -> None:
        body: dict[str, object] = {
            "model": self.model,
            "messages": [{"role": "user", "content": "What is 2+2?"}],
        }
        if self.stream:
            body["stream"] = True
        raw = json.dumps(body).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        self.request = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\n{head}Content-Length: {len(raw)}\r\n\r\n"
        ).encode() + raw
        self.sock = socket.create_connection(("127.0.0.1", self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def once(self) -> tuple[int, int, int]:
        """(ns to the sample point, client clock then, HTTP status) for one request."""
        assert self.sock is not None
        sock = self.sock
        start = time.perf_counter_ns()
        sock.sendall(self.request)
        buf = b""
        mark = 0
        while True:
            data = sock.recv(65536)
            now = time.perf_counter_ns()
            if not data:
                raise RuntimeError(f"{self.name}: connection closed")
            buf += data
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                continue
            if self.stream:
                if not mark and b"data:" in rest:
                    mark = now
                if rest.endswith(b"0\r\n\r\n"):
                    break
                continue
            length = _content_length(head)
            if length is None:
                if rest.endswith(b"0\r\n\r\n"):
                    break
            elif len(rest) >= length:
                break
        status = int(buf[9:12])
        if not self.stream:
            mark = now
        return mark - start, mark, status


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            return int(line[15:])
    return None


def _stamps(port: int) -> list[int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stamps", timeout=10) as r:
        return list(json.loads(r.read()))


def summary(ns: list[int]) -> dict[str, float]:
    ms = sorted(x / 1e6 for x in ns)
    n = len(ms)
    return {
        "n": n,
        "p25": ms[n // 4],
        "p50": statistics.median(ms),
        "p75": ms[3 * n // 4],
        "p90": ms[9 * n // 10],
    }


_count = count_at_least(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--target",
        action="append",
        required=True,
        type=Target.parse,
        help='JSON: {"name": ..., "port": N, "stream": bool, ...} (gateway_portkey.py passes it)',
    )
    parser.add_argument("--rounds", type=_count, default=1000)
    parser.add_argument("--warmup", type=_count, default=50)
    parser.add_argument("--upstream", type=int, default=None, help="port with GET /stamps")
    args = parser.parse_args()
    targets: list[Target] = args.target
    for t in targets:
        t.connect()
    for _ in range(args.warmup):
        for t in targets:
            t.once()
    if args.upstream:
        _stamps(args.upstream)  # forget the warm-up's
    load_before = os.getloadavg()
    bad: dict[str, int] = {}
    stream_order: list[Target] = []
    for _ in range(args.rounds):
        for t in targets:
            ns, at, status = t.once()
            if status != 200:
                bad[t.name] = bad.get(t.name, 0) + 1
            t.samples.append(ns)
            if t.stream:
                t.first_at.append(at)
                stream_order.append(t)
    out: dict[str, object] = {
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "rounds": args.rounds,
        "non_200": bad,
        "targets": {t.name: summary(t.samples) for t in targets},
    }
    if args.upstream:
        stamps = _stamps(args.upstream)
        relay: dict[str, list[int]] = {}
        if len(stamps) == len(stream_order):
            cursor = {t.name: 0 for t in targets}
            for t, stamp in zip(stream_order, stamps, strict=True):
                i = cursor[t.name]
                cursor[t.name] = i + 1
                relay.setdefault(t.name, []).append(t.first_at[i] - stamp)
            out["relay"] = {k: summary(v) for k, v in relay.items()}
        else:
            out["relay_error"] = f"{len(stamps)} upstream stamps for {len(stream_order)} streams"
    # Per-round differences between neighbours (same load): "a-b" for every pair asked for.
    pairs: dict[str, dict[str, float]] = {}
    by_name = {t.name: t for t in targets}
    for a in by_name:
        for b in by_name:
            if a < b:
                d = [x - y for x, y in zip(by_name[a].samples, by_name[b].samples, strict=True)]
                pairs[f"{a}-{b}"] = {"p50": statistics.median(d) / 1e6}
    out["paired"] = pairs
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
