"""Notifications delivered to real HTTP receivers; operational endpoints; graceful shutdown."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server.scenario import Setup, wait_until
from tests.support.server_process import ServerProcess


class Receiver:
    """A real HTTP receiver on 127.0.0.1 recording POSTs (optionally failing first)."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        self.delay = delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(outer.delay)
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self.send_response(503)
                else:
                    outer.requests.append((dict(self.headers), body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1)
    yield r
    r.close()


def _channel(server: ServerProcess, pid: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(
        f"{server.url}/v1/projects/{pid}/notification-channels",
        json=body,
        headers={"Authorization": f"Bearer {server.admin_key}"},
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_webhook_and_slack_receive_signed_trip_despite_a_dead_receiver(
    sqlite_server: ServerProcess, receiver: Receiver
) -> None:
    s = Setup(sqlite_server.url, sqlite_server.admin_key, name="notify")
    slack = Receiver()
    slow = Receiver(delay=30)  # never answers in time: must not delay anything else
    try:
        _channel(
            sqlite_server,
            s.pid,
            {"name": "dead", "channel": "webhook", "config": {"url": slow.url}, "events": ["trip"]},
        )
        ch = _channel(
            sqlite_server,
            s.pid,
            {
                "name": "hook",
                "channel": "webhook",
                "config": {"url": receiver.url, "secret": "s3cret"},
                "events": ["trip", "recover"],
            },
        )
        assert ch["config"]["secret"].startswith("****")
        _channel(
            sqlite_server,
            s.pid,
            {"name": "slack", "channel": "slack", "config": {"url": slack.url}, "events": ["trip"]},
        )
        with s.client(timeout=10) as ts:
            for _ in range(500):
                ts.execute(
                    lambda: None,
                    breakers=["checkout-latency"],
                    router=s.rid,
                    metrics={"latency_ms": 900.0},
                )
            wait_until(lambda: ts.get_state("checkout-latency").state == "open", 5, "trip")
        # the first webhook attempt got 503 and was retried
        wait_until(lambda: len(receiver.requests) == 1, 10, "webhook delivery")
        headers, body = receiver.requests[0]
        event = json.loads(body)
        assert (event["event"], event["breaker_name"], event["to_state"]) == (
            "trip",
            "checkout-latency",
            "open",
        )
        expected = hmac.new(
            b"s3cret", headers["X-Tripwise-Timestamp"].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        assert headers["X-Tripwise-Signature"] == "v1=" + expected
        wait_until(lambda: len(slack.requests) == 1, 10, "slack delivery")
        assert "checkout-latency" in json.loads(slack.requests[0][1])["text"]
    finally:
        slack.close()
        slow.close()


def test_channel_test_endpoint(sqlite_server: ServerProcess) -> None:
    s = Setup(sqlite_server.url, sqlite_server.admin_key, name="chtest")
    hook = Receiver()
    auth = {"Authorization": f"Bearer {sqlite_server.admin_key}"}
    try:
        ok = _channel(
            sqlite_server, s.pid, {"name": "h", "channel": "webhook", "config": {"url": hook.url}}
        )
        r = httpx.post(
            f"{sqlite_server.url}/v1/projects/{s.pid}/notification-channels/{ok['id']}/test",
            headers=auth,
        )
        assert r.status_code == 204 and len(hook.requests) == 1
        mail = _channel(
            sqlite_server, s.pid, {"name": "m", "channel": "email", "config": {"to": "a@b.c"}}
        )
        r = httpx.post(
            f"{sqlite_server.url}/v1/projects/{s.pid}/notification-channels/{mail['id']}/test",
            headers=auth,
        )
        assert r.status_code == 422 and "TRIPWISE_SMTP_HOST" in r.json()["message"]
        pd = _channel(sqlite_server, s.pid, {"name": "p", "channel": "pagerduty", "config": {}})
        r = httpx.post(
            f"{sqlite_server.url}/v1/projects/{s.pid}/notification-channels/{pd['id']}/test",
            headers=auth,
        )
        assert r.status_code == 422 and "routing_key" in r.json()["message"]
    finally:
        hook.close()


def test_health_ready_metrics_openapi(sqlite_server: ServerProcess) -> None:
    url = sqlite_server.url
    assert httpx.get(url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(url + "/readyz").json()
    assert ready["checks"] == {"database": True, "evaluator": True}
    text = httpx.get(url + "/metrics").text
    for name in (
        "tripwise_ingest_samples_total",
        "tripwise_evaluation_seconds",
        "tripwise_streams_connected",
        "tripwise_transitions_total",
    ):
        assert name in text
    paths = httpx.get(url + "/openapi.json").json()["paths"]
    assert "/v1/projects/{project_id}/breakers/state:stream" in paths
    assert httpx.get(url + "/docs").status_code == 200


def test_sigterm_ends_open_streams_and_exits_cleanly(tmp_path: Path) -> None:
    server = ServerProcess(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        "eb_admin_sigterm",
        env={"TRIPWISE_SHUTDOWN_GRACE_S": "5"},
    )
    server.start(tmp_path / "server.log")
    s = Setup(server.url, "eb_admin_sigterm", name="sigterm")
    lines: list[str] = []

    def listen() -> None:
        with httpx.stream(
            "GET",
            f"{server.url}/v1/projects/{s.pid}/breakers/state:stream",
            headers={"Authorization": f"Bearer {s.pk}"},
            timeout=None,
        ) as r:
            lines.extend(r.iter_lines())

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    wait_until(lambda: any(line.startswith("data:") for line in lines), 5, "snapshot")
    started = time.monotonic()
    # uvicorn re-raises the captured SIGTERM after its graceful shutdown completed
    assert server.stop() in (0, -signal.SIGTERM)
    assert "Traceback" not in server.log()
    t.join(5)
    assert not t.is_alive(), "stream not ended by shutdown"
    assert time.monotonic() - started < 5
    assert json.loads(lines[1].removeprefix("data: ")) == {
        "breaker": "checkout-latency",
        "state": "closed",
        "allow_rate": 1.0,
    }
