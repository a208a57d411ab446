"""A real HTTP model service on 127.0.0.1 that tests can slow down, break, kill and restart."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ModelService:
    """``mode``: "ok" (confident answers), "lowq" (low-confidence answers), "error" (HTTP 500).
    ``delay`` seconds are added to every request. ``kill()`` closes the socket (connection
    refused afterwards); ``start()`` serves again on the same port."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.mode = "ok"
        self.delay = 0.0
        self.requests = 0
        self.health_requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: kill() is final

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                # The client may have given up (its timeout expired) or the service was killed.
                with contextlib.suppress(OSError):
                    self._write(status, data)

            def _write(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/health":
                    service.health_requests += 1
                    if service.delay:
                        time.sleep(service.delay)
                    if service.mode == "error":
                        self._send(503, {"status": "unhealthy"})
                    else:
                        self._send(200, {"status": "ok"})
                    return
                service.requests += 1
                if service.delay:
                    time.sleep(service.delay)
                if service.mode == "error":
                    self._send(500, {"error": "internal"})
                    return
                confidence = 0.95 if service.mode == "ok" else 0.15
                prompt = self.path.rsplit("/", 1)[-1]
                self._send(200, {"answer": f"{service.name}:{prompt}", "confidence": confidence})

        return Handler

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def kill(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(5)
            self._server = None


@pytest.fixture
def services() -> Iterator[Callable[[str], ModelService]]:
    started: list[ModelService] = []

    def make(name: str) -> ModelService:
        svc = ModelService(name)
        svc.start()
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.kill()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> None:
    """Poll ``predicate`` until it holds; fail the test with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    pytest.fail(f"condition not reached within {timeout}s: {predicate!r}")


@pytest.fixture
def wait() -> Callable[..., None]:
    return wait_until
