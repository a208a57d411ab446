"""The SSE hub: one encoding per event, coalesced writes, keep-alives only when idle."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("sqlalchemy", reason="needs tripwise[server]")

from tripwise.server import stream
from tripwise.server.stream import KEEPALIVE, StreamHub, encode_state


def test_event_framing_is_one_compact_data_line() -> None:
    chunk = encode_state({"breaker": "b", "state": "half_open", "allow_rate": 0.25})
    assert chunk == b'event: state\ndata: {"breaker":"b","state":"half_open","allow_rate":0.25}\n\n'


async def test_publish_shares_one_bytes_object_and_writes_coalesce() -> None:
    hub = StreamHub()
    a = hub.subscribe("p", None, [b"snap1", b"snap2"])
    b = hub.subscribe("p", "k", [])
    other = hub.subscribe("q", None, [])
    event = encode_state({"breaker": "x", "state": "open", "allow_rate": 0.0})
    waiting = asyncio.ensure_future(b.next_chunk())
    await asyncio.sleep(0)
    hub.publish("p", event)
    assert await waiting is event  # the very object published, no per-client copy
    hub.publish("p", event)
    assert await a.next_chunk() == b"snap1snap2" + event + event
    assert other.pending == []
    assert hub.count == 3


async def test_keepalive_only_for_idle_streams() -> None:
    hub = StreamHub()
    busy = hub.subscribe("p", None, [])
    idle = hub.subscribe("q", None, [])
    hub.publish("p", b"e")
    await busy.next_chunk()
    assert hub.keepalive_round() == 1
    assert await idle.next_chunk() == KEEPALIVE
    assert hub.keepalive_round() == 2  # now both were idle for a whole period
    assert await busy.next_chunk() == KEEPALIVE


async def test_close_drains_what_is_pending_then_ends() -> None:
    hub = StreamHub()
    sub = hub.subscribe("p", "key1", [b"s"])
    assert hub.close_where(key_id="key1") == 1
    assert await sub.next_chunk() == b"s"
    assert await sub.next_chunk() is None


async def test_a_stream_that_falls_far_behind_is_cut_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream, "MAX_PENDING", 3)
    hub = StreamHub()
    slow = hub.subscribe("p", None, [])
    for _ in range(4):
        hub.publish("p", b"e")
    assert await slow.next_chunk() is None  # closed, nothing left to write
    assert hub.count == 0
