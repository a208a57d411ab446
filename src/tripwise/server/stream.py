"""The live state stream hub: SSE subscribers per project, fan-out of pre-encoded events."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

log = logging.getLogger("tripwise.server.stream")

_CLOSE = b""
KEEPALIVE = b": ping\n\n"


def encode_state(payload: dict[str, Any]) -> bytes:
    """One SSE ``state`` event: a single ``data:`` line of compact JSON."""
    data = json.dumps(payload, separators=(",", ":"))
    return b"event: state\ndata: " + data.encode() + b"\n\n"


class Subscriber:
    __slots__ = ("key_id", "project_id", "queue")

    def __init__(self, project_id: str, key_id: str | None) -> None:
        self.project_id = project_id
        self.key_id = key_id
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()


class StreamHub:
    """Holds every open stream; ``publish`` never blocks (queues are per subscriber)."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscriber]] = {}
        self.closing = False

    @property
    def count(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def subscribe(
        self, project_id: str, key_id: str | None, snapshot: Iterable[bytes]
    ) -> Subscriber:
        sub = Subscriber(project_id, key_id)
        for chunk in snapshot:
            sub.queue.put_nowait(chunk)
        self._subs.setdefault(project_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.project_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.project_id]

    def publish(self, project_id: str, chunk: bytes) -> None:
        for sub in self._subs.get(project_id, ()):
            sub.queue.put_nowait(chunk)

    def close_where(self, *, key_id: str | None = None, project_id: str | None = None) -> int:
        """End the streams of a revoked key or a deleted project."""
        n = 0
        for subs in self._subs.values():
            for sub in subs:
                if (key_id is not None and sub.key_id == key_id) or (
                    project_id is not None and sub.project_id == project_id
                ):
                    sub.queue.put_nowait(_CLOSE)
                    n += 1
        return n

    def close_all(self) -> None:
        """Graceful shutdown: every stream ends cleanly after what is already queued."""
        self.closing = True
        for subs in self._subs.values():
            for sub in subs:
                sub.queue.put_nowait(_CLOSE)


async def stream_events(
    hub: StreamHub, sub: Subscriber, keepalive_s: float
) -> AsyncIterator[bytes]:
    """Yield queued events (several per write when they pile up) and keep-alive comments."""
    queue = sub.queue
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(queue.get(), keepalive_s)
            except asyncio.TimeoutError:
                yield KEEPALIVE
                continue
            if chunk == _CLOSE:
                return
            parts = [chunk]
            while not queue.empty():
                more = queue.get_nowait()
                if more == _CLOSE:
                    yield b"".join(parts)
                    return
                parts.append(more)
            yield b"".join(parts) if len(parts) > 1 else chunk
    finally:
        hub.unsubscribe(sub)
