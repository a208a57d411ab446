"""Helpers for tests that talk raw HTTP to a real server: admin calls, an SSE listener."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.integration.server.scenario import wait_until
from tests.support.server_process import ServerProcess

# Generous limits: these modules make many admin calls in a few seconds.
FAST_ENV = {"TRIPWISE_RATE_LIMIT_PER_S": "10000", "TRIPWISE_RATE_LIMIT_BURST": "10000"}


@contextlib.contextmanager
def running_server(tmp: Path, **env: str) -> Iterator[ServerProcess]:
    """A server on its own SQLite file in ``tmp`` (one database per test module)."""
    proc = ServerProcess(
        f"sqlite:///{tmp / 'tripwise.db'}",
        "eb_admin_" + secrets.token_hex(16),
        env={**FAST_ENV, **env},
    )
    proc.start(tmp / "server.log")
    try:
        yield proc
    finally:
        proc.stop()


class Api:
    """Raw admin HTTP calls against one project (status codes are the test's business)."""

    def __init__(self, server: ServerProcess, pid: str | None = None) -> None:
        self.server = server
        self.pid = pid
        self.http = httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=10,
        )

    def project_path(self, path: str) -> str:
        return f"/v1/projects/{self.pid}{path}"

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, **kw)

    def create_breaker(self, name: str, **fields: Any) -> dict[str, Any]:
        body = {"name": name, "metric": "m", "kind": "avg", "op": "gt", "threshold": 1, **fields}
        r = self.http.post(self.project_path("/breakers"), json=body)
        assert r.status_code == 201, r.text
        return dict(r.json()["breaker"])

    def override(self, bid: str, mode: str, reason: str = "test") -> dict[str, Any]:
        r = self.http.post(
            self.project_path(f"/breakers/{bid}/override"), json={"mode": mode, "reason": reason}
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def state(self, bid: str) -> dict[str, Any]:
        r = self.http.get(self.project_path(f"/breakers/{bid}/state"))
        assert r.status_code == 200, r.text
        return dict(r.json())

    def close(self) -> None:
        self.http.close()


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The contract's error body: ``{"code", "message"}`` at the top level."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["code"] == code, body
    return dict(body)


class StreamListener:
    """Reads a project's SSE state stream in a thread and records every ``data:`` payload."""

    def __init__(self, url: str, pid: str, key: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.status: int | None = None
        self.ended = threading.Event()
        self._socket: socket.socket | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._url = f"{url}/v1/projects/{pid}/breakers/state:stream"
        self._key = key
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream(
                "GET", self._url, headers={"Authorization": f"Bearer {self._key}"}
            ) as r:
                self.status = r.status_code
                self._socket = r.extensions["network_stream"].get_extra_info("socket")
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(json.loads(line.removeprefix("data: ")))
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def wait_for(self, event: dict[str, Any], after: int = 0, timeout: float = 5.0) -> int:
        """Index of the first payload equal to ``event`` at or after ``after`` (waits)."""
        wait_until(lambda: event in self.events[after:], timeout, f"stream event {event}")
        return self.events.index(event, after)

    def wait_connected(self, n_snapshot: int, timeout: float = 5.0) -> None:
        wait_until(lambda: len(self.events) >= n_snapshot, timeout, "stream snapshot")

    def close(self) -> None:
        """Hang up (a shutdown wakes the reader blocked in recv) and wait for the thread."""
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._client.close()
