"""The live state stream hub: SSE subscribers per project, fan-out of pre-encoded events.

An event is encoded once (``encode_state``) and the same bytes object is appended to every
subscriber of the project; ``publish`` is a loop of list appends plus, for a subscriber that
is idle, one future completion, so a trip reaches 1,000 streams in one pass. Each stream is
served by :class:`SSEResponse`, a bare ASGI response whose task sleeps on its subscriber's
future (no ``wait_for`` timer per wait, no generator layers); it writes everything pending in
one chunk. Keep-alive comments come from one hub-wide timer, only to streams that had nothing
to send during the last period. A subscriber that cannot keep up (more than
``MAX_PENDING`` chunks waiting) is disconnected; the SDK reconnects and gets a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

log = logging.getLogger("tripwise.server.stream")

KEEPALIVE = b": ping\n\n"
MAX_PENDING = 10_000
_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def encode_state(payload: dict[str, Any]) -> bytes:
    """One SSE ``state`` event: a single ``data:`` line of compact JSON."""
    return b"event: state\ndata: " + orjson.dumps(payload) + b"\n\n"


class Subscriber:
    """One open stream: the chunks waiting to be written and the future its writer sleeps on."""

    __slots__ = ("active", "closed", "key_id", "pending", "project_id", "waiter")

    def __init__(self, project_id: str, key_id: str | None) -> None:
        self.project_id = project_id
        self.key_id = key_id
        self.pending: list[bytes] = []
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.active = False  # wrote something since the last keep-alive round

    def push(self, chunk: bytes) -> None:
        if self.closed:
            return
        self.pending.append(chunk)
        self._wake()

    def close(self, *, drop_pending: bool = False) -> None:
        """End the stream after what is already pending (or at once with ``drop_pending``)."""
        if drop_pending:
            self.pending.clear()
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_chunk(self) -> bytes | None:
        """Everything pending as one chunk; None once the stream is closed and drained."""
        while not self.pending:
            if self.closed:
                return None
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        pending = self.pending
        chunk = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        return chunk


class StreamHub:
    """Holds every open stream; ``publish`` never blocks."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscriber]] = {}
        self.closing = False
        self._keepalive: asyncio.Task[None] | None = None

    @property
    def count(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def subscribe(
        self, project_id: str, key_id: str | None, snapshot: Iterable[bytes]
    ) -> Subscriber:
        sub = Subscriber(project_id, key_id)
        first = b"".join(snapshot)
        if first:
            sub.push(first)
        self._subs.setdefault(project_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.project_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.project_id]

    def publish(self, project_id: str, chunk: bytes) -> None:
        """Queue the same encoded event on every stream of the project."""
        subs = self._subs.get(project_id)
        if not subs:
            return
        laggards = None
        for sub in subs:
            pending = sub.pending
            pending.append(chunk)
            sub.active = True
            if len(pending) == 1:
                sub._wake()
            elif len(pending) > MAX_PENDING:
                laggards = [*(laggards or ()), sub]
        for sub in laggards or ():
            log.warning("closing a state stream that fell %d events behind", MAX_PENDING)
            sub.close(drop_pending=True)
            self.unsubscribe(sub)

    def close_where(self, *, key_id: str | None = None, project_id: str | None = None) -> int:
        """End the streams of a revoked key or a deleted project."""
        n = 0
        for subs in self._subs.values():
            for sub in subs:
                if (key_id is not None and sub.key_id == key_id) or (
                    project_id is not None and sub.project_id == project_id
                ):
                    sub.close()
                    n += 1
        return n

    def close_all(self) -> None:
        """Graceful shutdown: every stream ends cleanly after what is already queued."""
        self.closing = True
        for subs in self._subs.values():
            for sub in subs:
                sub.close()

    # -- keep-alives -----------------------------------------------------------------------

    def keepalive_round(self) -> int:
        """Send ``: ping`` to every stream that was idle since the last round."""
        n = 0
        for subs in self._subs.values():
            for sub in subs:
                if sub.active:
                    sub.active = False
                elif not sub.pending:
                    sub.push(KEEPALIVE)
                    n += 1
        return n

    def start(self, keepalive_s: float) -> None:
        async def run() -> None:
            while True:
                await asyncio.sleep(keepalive_s)
                self.keepalive_round()

        self._keepalive = asyncio.get_running_loop().create_task(run(), name="sse-keepalive")

    async def stop(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
            self._keepalive = None


class SSEResponse(Response):
    """Streams one subscriber's events (HTTP/1.1 chunked, flushed per write)."""

    media_type = "text/event-stream"

    def __init__(self, hub: StreamHub, sub: Subscriber) -> None:
        super().__init__(status_code=200, media_type=self.media_type)
        self.hub = hub
        self.sub = sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sub = self.sub
        watcher = asyncio.get_running_loop().create_task(self._watch(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            while True:
                chunk = await sub.next_chunk()
                if chunk is None:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the connection broke under a write
            pass
        finally:
            watcher.cancel()
            self.hub.unsubscribe(sub)

    async def _watch(self, receive: Receive) -> None:
        """The client went away: end this stream (uvicorn drops writes to a closed socket)."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.sub.close(drop_pending=True)
                return
