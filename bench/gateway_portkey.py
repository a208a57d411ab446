"""tripwise gateway vs the Portkey AI gateway, side by side, in front of one fast upstream.

    npm install (once, outside the repo):  see docs/benchmarks.md ("Gateway")
    python bench/gateway_portkey.py --portkey-dir /tmp/portkey-bench --duration 8

Both gateways run pinned to core 1 (``taskset -c 1``), one at a time; the upstream
(bench/gateway_upstream.py) and the load generator (wrk) share core 0. The load generator is
first measured against the upstream directly, so it is known not to be the bottleneck.
Measured per gateway: added latency p50/p99 at concurrency 1 and 50 (gateway minus direct),
throughput and gateway CPU per request at concurrency 50 (from /proc/<pid>/stat) with wrk;
then, with the interleaved probe (bench/gateway_probe.py, on core 0 like wrk), the first
streamed byte and the cost of one fallback hop (first backend answers 500, the second 200):

- first byte, added: median time to the first ``data:`` byte through the gateway minus the
  same taken directly from the upstream, in the same rounds;
- first byte, relay: from the upstream's first byte (its own clock) to the client's, through
  the gateway minus directly (the target's "after the upstream's first byte");
- fallback hop: median per-round difference between the hop route and the single-backend
  route, minus the median round trip of a 500 taken directly (the extra upstream round trip).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BODY = json.dumps(
    {"model": "bench-model", "messages": [{"role": "user", "content": "What is 2+2?"}]}
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, headers: dict[str, str], conns: int, duration: float, body: str) -> dict:
    """One wrk run on core 0: requests/s, latency p50/p99 (ms), requests, non-2xx."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        for k, v in headers.items():
            f.write(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n")
        script = f.name
    try:
        out = subprocess.run(
            [
                "taskset",
                "-c",
                "0",
                "wrk",
                "-t1",
                f"-c{conns}",
                f"-d{max(1, round(duration))}s",
                "--latency",
                "-s",
                script,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script)

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            raise RuntimeError(f"cannot read p{label} from wrk:\n{out}")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "requests": total,
        "non_2xx": int(bad.group(1)) if bad else 0,
    }


def probe(up: int, gw_port: int, single: dict, hop: dict, hop_model: str, rounds: int) -> dict:
    """The interleaved probe (bench/gateway_probe.py) on core 0: streams and the hop."""
    path = "/v1/chat/completions"
    targets = [
        {"name": "direct_stream", "port": up, "stream": True},
        {"name": "gw_stream", "port": gw_port, "stream": True, "headers": single},
        {"name": "direct_fail", "port": up, "path": "/fail" + path},
        {"name": "gw_json", "port": gw_port, "headers": single},
        {"name": "gw_hop", "port": gw_port, "headers": hop, "model": hop_model},
    ]
    cmd = ["taskset", "-c", "0", sys.executable, str(ROOT / "bench" / "gateway_probe.py")]
    cmd += ["--upstream", str(up), "--rounds", str(rounds)]
    for t in targets:
        cmd += ["--target", json.dumps(t)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out))


class Proc:
    def __init__(self, cmd: list[str], env: dict[str, str] | None = None, log: str = "") -> None:
        self.log = open(log or os.devnull, "wb")  # noqa: SIM115
        self.p = subprocess.Popen(
            cmd, env={**os.environ, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        self.p.terminate()
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.log.close()


def tripwise_gateway(up: int, workdir: Path) -> tuple[Proc, str, dict, dict]:
    port = free_port()
    cfg = workdir / "gateway.yaml"
    cfg.write_text(f"""
shutdown: {{pre_stop_delay: 0, drain_timeout: 1}}
backends:
  up: {{type: openai, url: "http://127.0.0.1:{up}/v1", timeout: 10}}
  fail:
    type: openai
    url: "http://127.0.0.1:{up}/fail/v1"
    timeout: 10
    breaker: {{trip_on: {{consecutive_failures: 1000000000}}}}
routes:
  bench-model: {{chain: [up]}}
  hop: {{chain: [fail, up]}}
""")
    proc = Proc(
        [
            "taskset",
            "-c",
            "1",
            sys.executable,
            "-m",
            "tripwise.cli",
            "gateway",
            "--config",
            str(cfg),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={"PYTHONPATH": str(ROOT / "src")},
        log=str(workdir / "tripwise.log"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health/ready")
    return proc, url + "/v1/chat/completions", {}, {"x-hop": "1"}


def portkey_gateway(up: int, portkey_dir: Path, workdir: Path) -> tuple[Proc, str, dict, dict]:
    build = portkey_dir / "node_modules" / "@portkey-ai" / "gateway" / "build"
    src = (build / "start-server.js").read_text()
    # it listens on all interfaces by default: bind it to loopback (a copy, next to the build)
    patched = src.replace("port:Ku}", 'port:Ku,hostname:"127.0.0.1"}', 1)
    if patched == src:
        raise RuntimeError("could not find Portkey's serve() call to bind it to 127.0.0.1")
    entry = build / "start-server-loopback.js"
    entry.write_text(patched)
    port = free_port()
    proc = Proc(
        ["taskset", "-c", "1", "node", str(entry), f"--port={port}", "--headless"],
        env={"NODE_ENV": "production"},
        log=str(workdir / "portkey.log"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/")
    target = {"provider": "openai", "api_key": "x", "custom_host": f"http://127.0.0.1:{up}/v1"}
    fail = {**target, "custom_host": f"http://127.0.0.1:{up}/fail/v1"}
    single = {"x-portkey-config": json.dumps(target)}
    hop = {
        "x-portkey-config": json.dumps(
            {"strategy": {"mode": "fallback"}, "targets": [fail, target]}
        )
    }
    return proc, url + "/v1/chat/completions", single, hop


def measure(
    url: str, headers: dict, hop_headers: dict, pid: int | None, up: int, args: Any
) -> dict:
    out: dict[str, Any] = {}
    out["c1"] = wrk(url, headers, 1, args.duration, BODY)
    before = cpu_seconds(pid) if pid else 0.0
    out["c50"] = wrk(url, headers, 50, args.duration, BODY)
    if pid:
        out["cpu_ms_per_request"] = (cpu_seconds(pid) - before) * 1000 / out["c50"]["requests"]
    hop_model = "hop" if hop_headers.get("x-hop") else "bench-model"
    body = BODY.replace("bench-model", hop_model)
    hh = {k: v for k, v in hop_headers.items() if k != "x-hop"}
    port = int(url.split(":")[2].split("/")[0])
    out["probe"] = probe(up, port, headers, hh, hop_model, args.stream_requests)
    out["hop_c50"] = wrk(url, hh, 50, args.duration, body)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--portkey-dir", type=Path, default=Path("/tmp/portkey-bench"))
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument(
        "--stream-requests",
        type=int,
        default=1000,
        help="rounds of the interleaved probe (each: one request of every kind)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is needed (apt-get install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    up = free_port()
    upstream = Proc(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            str(ROOT / "bench" / "gateway_upstream.py"),
            "--port",
            str(up),
        ],
        log=str(workdir / "upstream.log"),
    )
    results: dict[str, Any] = {"uptime": os.getloadavg()}
    try:
        wait_http(f"http://127.0.0.1:{up}/v1/models")
        direct = f"http://127.0.0.1:{up}/v1/chat/completions"
        d: dict[str, Any] = {
            "c1": wrk(direct, {}, 1, args.duration, BODY),
            "c50": wrk(direct, {}, 50, args.duration, BODY),
        }
        results["direct"] = d
        for name, start in (
            ("tripwise", lambda: tripwise_gateway(up, workdir)),
            ("portkey", lambda: portkey_gateway(up, args.portkey_dir, workdir)),
        ):
            proc, url, headers, hop = start()
            try:
                results[name] = measure(url, headers, hop, proc.p.pid, up, args)
            finally:
                proc.stop()
    finally:
        upstream.stop()
    results["uptime_after"] = os.getloadavg()
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _fb_added(g: dict) -> float:
    t = g["probe"]["targets"]
    return float(t["gw_stream"]["p50"] - t["direct_stream"]["p50"])


def _fb_relay(g: dict) -> float:
    r = g["probe"].get("relay")
    return float(r["gw_stream"]["p50"] - r["direct_stream"]["p50"]) if r else float("nan")


def _hop_total(g: dict) -> float:
    return float(g["probe"]["paired"]["gw_hop-gw_json"]["p50"])


def _hop(g: dict) -> float:
    p = g["probe"]
    return float(p["paired"]["gw_hop-gw_json"]["p50"] - p["targets"]["direct_fail"]["p50"])


def print_table(r: dict[str, Any]) -> None:
    d = r["direct"]
    print(f"load average before/after: {r['uptime']} / {r['uptime_after']}")
    print(
        f"direct: c1 p50 {d['c1']['p50_ms']:.3f} ms p99 {d['c1']['p99_ms']:.3f} ms; "
        f"c50 {d['c50']['rps']:.0f} req/s p50 {d['c50']['p50_ms']:.2f} ms"
    )
    for name in ("tripwise", "portkey"):
        p = r[name]["probe"]
        t = p["targets"]
        print(
            f"{name} probe ({p['rounds']} rounds, load {p['load_before'][0]:.2f} -> "
            f"{p['load_after'][0]:.2f}, non-200 "
            f"{ {k: v for k, v in p['non_200'].items() if k != 'direct_fail'} or 0 }): "
            + "; ".join(
                f"{k} p50 {v['p50']:.3f} [p25 {v['p25']:.3f}, p75 {v['p75']:.3f}]"
                for k, v in t.items()
            )
        )
        if "relay" in p:
            print(
                f"{name} relay (upstream's first byte -> client's): "
                + "; ".join(f"{k} p50 {v['p50']:.3f}" for k, v in p["relay"].items())
            )
        elif "relay_error" in p:
            print(f"{name} relay not measured: {p['relay_error']}")
    rows = [
        ("added p50, c=1 (ms)", lambda g: g["c1"]["p50_ms"] - d["c1"]["p50_ms"]),
        ("added p99, c=1 (ms)", lambda g: g["c1"]["p99_ms"] - d["c1"]["p99_ms"]),
        ("added p50, c=50 (ms)", lambda g: g["c50"]["p50_ms"] - d["c50"]["p50_ms"]),
        ("added p99, c=50 (ms)", lambda g: g["c50"]["p99_ms"] - d["c50"]["p99_ms"]),
        ("throughput, c=50 (req/s)", lambda g: g["c50"]["rps"]),
        ("gateway CPU per request (ms)", lambda g: g["cpu_ms_per_request"]),
        ("first streamed byte, added (ms)", _fb_added),
        ("first byte after upstream's (relay, ms)", _fb_relay),
        ("fallback hop, total added (ms)", _hop_total),
        ("fallback hop over extra round trip (ms)", _hop),
        ("fallback hop throughput, c=50 (req/s)", lambda g: g["hop_c50"]["rps"]),
        ("non-2xx answers (wrk)", lambda g: g["c50"]["non_2xx"] + g["hop_c50"]["non_2xx"]),
    ]
    print(f"{'':42} {'tripwise':>10} {'portkey':>10} {'ratio':>7}")
    for label, fn in rows:
        t, p = fn(r["tripwise"]), fn(r["portkey"])
        ratio = t / p if p else float("nan")
        print(f"{label:42} {t:10.3f} {p:10.3f} {ratio:7.2f}")


if __name__ == "__main__":
    sys.exit(main())
