"""Probes, SIGTERM drain, SIGHUP reload and config errors of a real gateway process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.gateway.gateway_process import SRC, GatewayProcess
from tests.support.fake_llm import Fault

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "Hello"}]


def solo_config(url: str, *, pre_stop: float, drain: float, message: str = "sorry") -> str:
    return f"""
shutdown: {{pre_stop_delay: {pre_stop}, drain_timeout: {drain}}}
backends:
  max_gpu: {{type: openai, url: "{url}", timeout: 30, stall_timeout: 30}}
  degraded: {{type: degraded, message: "{message}"}}
routes:
  "*": {{chain: [max_gpu]}}
  fallback: {{chain: [max_gpu, degraded]}}
"""


class StreamReader(threading.Thread):
    """Reads one streamed answer in the background; ``first`` is set on the first event."""

    def __init__(self, url: str, model: str = "m") -> None:
        super().__init__(daemon=True)
        self.url, self.model = url, model
        self.first = threading.Event()
        self.events: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        body = {"model": self.model, "messages": HELLO, "stream": True}
        try:
            with httpx.stream(
                "POST", self.url + "/v1/chat/completions", json=body, timeout=30
            ) as resp:
                for line in resp.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(line[6:])
                        self.first.set()
        except httpx.HTTPError as exc:
            self.error = exc
        self.first.set()


def test_probes(primary, tmp_path: Path) -> None:
    g = GatewayProcess(tmp_path, solo_config(primary.base_url, pre_stop=0, drain=1)).start()
    try:
        for path in ("/health/live", "/health/ready", "/health/startup", "/health"):
            r = httpx.get(g.url + path)
            assert r.status_code == 200, path
        assert httpx.get(g.url + "/health").json()["status"] == "healthy"
        # readiness does not depend on upstreams: the degraded tier still answers
        primary.default = Fault("status", status=500)
        for _ in range(4):
            httpx.post(g.url + "/v1/chat/completions", json={"model": "m", "messages": HELLO})
        assert httpx.get(g.url + "/health/ready").status_code == 200
        assert "/health" not in g.log()  # probes are not logged
    finally:
        g.stop()


def test_sigterm_drains_streams_then_exits_zero(primary, tmp_path: Path) -> None:
    g = GatewayProcess(tmp_path, solo_config(primary.base_url, pre_stop=2.0, drain=6)).start()
    primary.script(Fault("stall", after=1, delay=2.5))
    reader = StreamReader(g.url)
    reader.start()
    assert reader.first.wait(10)
    g.signal(signal.SIGTERM)
    time.sleep(0.2)
    assert httpx.get(g.url + "/health/ready").status_code == 503
    assert httpx.get(g.url + "/health/live").status_code == 200
    # during the pre-stop delay new requests are still served
    r = httpx.post(g.url + "/v1/chat/completions", json={"model": "m", "messages": HELLO})
    assert r.status_code == 200
    reader.join(15)
    assert reader.events[-1] == "[DONE]"  # the open stream finished normally
    assert g.wait(20) == 0


def test_streams_past_the_drain_timeout_get_an_error_event(primary, tmp_path: Path) -> None:
    g = GatewayProcess(tmp_path, solo_config(primary.base_url, pre_stop=0.2, drain=1.0)).start()
    primary.script(Fault("stall", after=1, delay=20), Fault("stall", after=1, delay=20))
    readers = [StreamReader(g.url), StreamReader(g.url)]
    for r in readers:
        r.start()
    for r in readers:
        assert r.first.wait(10)
    start = time.monotonic()
    g.signal(signal.SIGTERM)
    for r in readers:
        r.join(15)
        assert "[DONE]" not in r.events
        assert json.loads(r.events[-1])["error"]["code"] == "draining"
    assert g.wait(20) == 0
    assert time.monotonic() - start < 10


def test_sighup_reloads_without_dropping_streams(primary, tmp_path: Path) -> None:
    g = GatewayProcess(
        tmp_path, solo_config(primary.base_url, pre_stop=0, drain=2, message="first")
    ).start()
    try:
        primary.default = Fault("status", status=500)
        r = httpx.post(
            g.url + "/v1/chat/completions", json={"model": "fallback", "messages": HELLO}
        )
        assert r.json()["choices"][0]["message"]["content"] == "first"
        primary.default = Fault("ok")
        primary.script(Fault("stall", after=1, delay=1.5))
        reader = StreamReader(g.url)
        reader.start()
        assert reader.first.wait(10)
        g.config_path.write_text(
            solo_config(primary.base_url, pre_stop=0, drain=2, message="second")
        )
        g.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        primary.default = Fault("status", status=500)
        while time.monotonic() < deadline:
            r = httpx.post(
                g.url + "/v1/chat/completions", json={"model": "fallback", "messages": HELLO}
            )
            if r.json()["choices"][0]["message"]["content"] == "second":
                break
            time.sleep(0.1)
        else:
            pytest.fail("the reload did not take effect")
        reader.join(10)
        assert reader.events[-1] == "[DONE]"  # the stream in flight was not dropped
        # a broken file is refused and the running config kept
        g.config_path.write_text("backends: [\n")
        g.signal(signal.SIGHUP)
        time.sleep(0.5)
        r = httpx.post(
            g.url + "/v1/chat/completions", json={"model": "fallback", "messages": HELLO}
        )
        assert r.json()["choices"][0]["message"]["content"] == "second"
        assert "reload refused" in g.log()
    finally:
        g.stop()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tripwise.cli", "gateway", *args],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
        timeout=60,
    )


def test_check_reports_every_error_with_file_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "gateway.yaml"
    bad.write_text(
        "backends:\n"
        "  max_gpu:\n"
        "    type: openai\n"
        "    url: http://127.0.0.1:1/v1\n"
        "    timeout: fast\n"
        "routes:\n"
        "  '*':\n"
        "    chain: [max_gpu, missing]\n"
    )
    res = run_cli("--check", str(bad))
    assert res.returncode == 1
    assert f"{bad}:5: backends.max_gpu.timeout: must be a number > 0, got 'fast'" in res.stderr
    assert f"{bad}:8: routes.*.chain.1: unknown backend 'missing'" in res.stderr
    good = tmp_path / "ok.yaml"
    good.write_text(solo_config("http://127.0.0.1:1/v1", pre_stop=0, drain=1))
    res = run_cli("--check", str(good))
    assert res.returncode == 0 and "OK" in res.stdout
    # starting with a bad file fails before listening, with the same message
    res = run_cli("--config", str(bad), "--port", "1")
    assert res.returncode == 1 and "backends.max_gpu.timeout" in res.stderr


def test_a_taken_port_is_one_line_naming_the_address(tmp_path: Path) -> None:
    import socket

    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(solo_config("http://127.0.0.1:1/v1", pre_stop=0, drain=1))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = run_cli("--config", str(cfg), "--host", "127.0.0.1", "--port", str(port))
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.strip().splitlines() == [
        f"tripwise gateway: cannot listen on 127.0.0.1:{port}: "
        "the port is already in use (is another server running there?)"
    ], res.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--port", "70000"], "a port is 0-65535"),
        (["--port", "eighty"], "not a port number"),
        (["--log-level", "loud"], "invalid choice: 'loud'"),
        (["--loop", "trio"], "invalid choice: 'trio'"),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(
    tmp_path: Path, args: list[str], complaint: str
) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(solo_config("http://127.0.0.1:1/v1", pre_stop=0, drain=1))
    res = run_cli("--config", str(cfg), *args)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert complaint in res.stderr and args[0] in res.stderr
    assert "Traceback" not in res.stderr
