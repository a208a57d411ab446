"""What the gateway puts on the wire to a backend and back: the backend's own stream bytes,
no cookies carried between clients, kept-alive connections through a fallback hop, and the
same behaviour on the standard asyncio loop as on uvloop."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.gateway.gateway_process import GatewayProcess

pytestmark = pytest.mark.integration

# Escapes, spacing and key order a re-serialisation would change (orjson writes "é" raw).
EVENTS = [
    b'data: {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",'
    b' "choices": [{"index": 0, "delta": {"role": "assistant", "content": "caf\\u00e9"},'
    b' "finish_reason": null}]}',
    b'data: {"choices": [{"index": 0, "delta": {"content": " au lait"}, "finish_reason": null}],'
    b' "model": "m", "object": "chat.completion.chunk", "id": "c1", "created": 1}',
    b'data: {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",'
    b' "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}',
]
COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
}


class Backend:
    """An OpenAI-style backend on loopback that records what reaches it: ``/fail/...``
    answers 500, every answer sets a cookie, streams send EVENTS one write each and end
    their HTTP body (the chunked terminator) 50 ms after ``[DONE]``."""

    def __init__(self) -> None:
        self.cookies: list[str | None] = []
        self.peers: set[int] = set()
        self.closed: list[int] = []  # connections the gateway closed
        self.body_done = threading.Event()  # a stream's HTTP body has ended
        self.lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with backend.lock:
                    backend.cookies.append(self.headers.get("cookie"))
                    backend.peers.add(self.client_address[1])
                if self.path.startswith("/fail/"):
                    self._send(500, b'{"error": {"message": "injected"}}')
                elif body.get("stream"):
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("set-cookie", "session=s3cret; Path=/")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for event in [*EVENTS, b"data: [DONE]"]:
                        self._chunk(event + b"\n\n")
                    time.sleep(0.05)  # the gateway has seen [DONE] well before the body ends
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    backend.body_done.set()
                else:
                    self._send(200, json.dumps(COMPLETION).encode())

            def finish(self) -> None:
                with backend.lock:
                    backend.closed.append(self.client_address[1])
                super().finish()

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("set-cookie", "session=s3cret; Path=/")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A host name, not an IP: aiohttp's default jar ignores cookies from IP hosts.
        self.url = f"http://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend()
    yield b
    b.close()


@pytest.fixture(params=["auto", "asyncio"])
def gw(request: pytest.FixtureRequest, backend: Backend, tmp_path: Path) -> Iterator[str]:
    config = f"""
shutdown: {{pre_stop_delay: 0, drain_timeout: 1}}
backends:
  up: {{type: openai, url: "{backend.url}/v1", timeout: 5}}
  fail:
    type: openai
    url: "{backend.url}/fail/v1"
    timeout: 5
    breaker: {{trip_on: {{consecutive_failures: 1000000}}}}
routes:
  m: {{chain: [up]}}
  hop: {{chain: [fail, up]}}
"""
    g = GatewayProcess(tmp_path, config)
    g.extra_args = ["--loop", request.param]
    g.start()
    try:
        yield g.url
    finally:
        g.stop()


def ask(url: str, model: str, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=10)


def test_a_stream_carries_the_backends_own_event_bytes(gw: str) -> None:
    resp = ask(gw, "m", stream=True)
    assert resp.status_code == 200
    events = [e for e in resp.content.split(b"\n\n") if e]
    assert events == [*EVENTS, b"data: [DONE]"]
    assert resp.headers["x-tripwise-backend"] == "up"


def test_no_cookie_of_one_answer_reaches_the_next_request(gw: str, backend: Backend) -> None:
    for extra in ({}, {"stream": True}, {}):
        assert ask(gw, "m", **extra).status_code == 200
    assert backend.cookies == [None, None, None]


def test_a_fallback_hop_keeps_both_connections_alive(gw: str, backend: Backend) -> None:
    for _ in range(10):
        resp = ask(gw, "hop")
        assert resp.status_code == 200
        assert resp.headers["x-tripwise-fallback-reason"] == "fail=error:500"
    assert len(backend.cookies) == 20  # each request tried the failing backend, then the next
    assert len(backend.peers) == 2  # one kept-alive connection per backend, none re-opened


def test_streams_keep_their_connection_when_the_body_ends_after_done(
    gw: str, backend: Backend
) -> None:
    for _ in range(5):
        backend.body_done.clear()
        start = time.monotonic()
        assert ask(gw, "m", stream=True).status_code == 200
        assert time.monotonic() - start < 5  # [DONE] reached the client without the wait
        assert backend.body_done.wait(10)
    assert len(backend.cookies) == 5
    # No connection was closed: each went back to the pool once its body ended (the gateway
    # used to close it at [DONE], one new connection per stream).
    assert backend.closed == []
