"""BreakerTransport and AsyncBreakerTransport share one core: every scenario here runs through
both, on httpx and httpx2, and must end alike (answer, raised error, which upstream answers
were closed, breaker states)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.unit.http.test_transport import LIBS, TrackedStream, Upstream, fake_retry, make
from tripwise import Registry, State, consecutive_failures
from tripwise.http import AsyncBreakerTransport, BreakerTransport
from tripwise.http.errors import BodyCheckFailed

MODES = [False, True]


def outcome(lib: Any, up: Upstream, asynchronous: bool, **kwargs: Any) -> dict[str, Any]:
    """One GET through the transport itself (no client reading the answer): what the caller
    got, which upstream answers the transport closed, the breakers' states."""
    _client, t = make(lib, up, asynchronous=asynchronous, **kwargs)
    request = lib.Request("GET", "http://api.test/v1/x")
    seen: dict[str, Any] = {}
    try:
        if asynchronous:
            r = asyncio.run(t.handle_async_request(request))
        else:
            r = t.handle_request(request)
    except Exception as exc:
        seen["raised"] = type(exc).__name__
        r = None
    seen["closed"] = [s.closed for s in up.streams]
    if r is not None:
        seen["status"] = r.status_code
        seen["body"] = asyncio.run(r.aread()) if asynchronous else r.read()
    seen["hosts"] = [req.url.host for req in up.requests]
    seen["states"] = {k: b.state for k, b in sorted(t.breakers().items())}
    return seen


def both(lib: Any, script: list[Any], **kwargs: Any) -> dict[str, Any]:
    """The outcome of ``script`` through the sync transport, checked equal to the async one."""
    sync = outcome(lib, Upstream(lib, *script), False, **dict(kwargs))
    if "retry" in kwargs:
        kwargs["retry"] = fake_retry(kwargs["retry"].attempts)[0]
    asynchronous = outcome(lib, Upstream(lib, *script), True, **kwargs)
    assert sync == asynchronous
    return sync


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_one_backend_failures_reach_the_caller_alike(lib: Any) -> None:
    assert both(lib, [(500, {"n": 1})])["status"] == 500
    assert both(lib, [lib.ConnectError("refused")])["raised"] == "ConnectError"
    opened = both(lib, [lib.ConnectError("refused")], trip_on=consecutive_failures(1))
    assert opened["raised"] == "ConnectError"
    assert list(opened["states"].values()) == [State.OPEN]


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_a_failed_body_check_keeps_the_answer_alike(lib: Any) -> None:
    seen = both(lib, [(200, {"answer": ""})], checks=[lambda r: 0.0])
    assert seen["status"] == 200 and json.loads(seen["body"]) == {"answer": ""}


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_fallback_hops_alike(lib: Any) -> None:
    hops = ["http://b.test", "http://c.test"]
    seen = both(lib, [(500, {}), lib.ConnectError("down"), (200, {"n": "c"})], fallback=hops)
    assert json.loads(seen["body"]) == {"n": "c"}
    assert seen["hosts"] == ["api.test", "b.test", "c.test"]
    assert seen["closed"] == [True, False]  # the 500 was discarded; the answer is the caller's
    # every hop fails: the last upstream answer (earlier ones closed), or the last error
    last = both(lib, [(500, {"n": 1}), (502, {"n": 2}), lib.ConnectError("x")], fallback=hops)
    assert last["status"] == 502 and last["closed"] == [True, False]
    error = both(lib, [lib.ConnectError("a"), lib.ConnectError("b")], fallback=hops[:1])
    assert error["raised"] == "ConnectError"


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_final_answers_alike(lib: Any) -> None:
    script = [(500, {}), (503, {})]
    static = both(lib, script, fallback=["http://b.test", (200, {"cached": 1})])
    assert static["status"] == 200 and json.loads(static["body"]) == {"cached": 1}
    assert static["closed"] == [True, True] and static["hosts"] == ["api.test", "b.test"]

    def answer(request: Any) -> Any:
        return lib.Response(203, json={"made": str(request.url.path)}, request=request)

    made = both(lib, [lib.ConnectError("x")], fallback=answer)
    assert made["status"] == 203 and json.loads(made["body"]) == {"made": "/v1/x"}
    assert made["hosts"] == ["api.test"]


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_an_awaitable_final_answer_is_awaited_by_the_async_transport(lib: Any) -> None:
    async def answer(request: Any) -> Any:
        return lib.Response(203, json={"async": True}, request=request)

    up = Upstream(lib, (500, {}))
    seen = outcome(lib, up, True, fallback=answer)
    assert seen["status"] == 203 and json.loads(seen["body"]) == {"async": True}
    assert seen["closed"] == [True]


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_an_open_primary_and_a_failing_fallback_alike(lib: Any) -> None:
    kwargs: dict[str, Any] = {"fallback": "http://b.test", "trip_on": consecutive_failures(1)}
    for mode in MODES:
        up = Upstream(lib, (500, {}), (500, {}), (500, {}))
        client, _t = make(lib, up, asynchronous=mode, **kwargs)

        async def twice(client: Any = client) -> list[int]:
            async with client:
                return [(await client.get("/x")).status_code for _ in range(2)]

        statuses = asyncio.run(twice()) if mode else [client.get("/x").status_code for _ in "ab"]
        assert statuses == [500, 503]  # both open now: the open breaker's answer
        assert [r.url.host for r in up.requests] == ["api.test", "b.test"]


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_retries_alike(lib: Any) -> None:
    retry, _ = fake_retry(3)
    seen = both(lib, [(500, {}), (429, {}), (200, {"n": 3})], retry=retry)
    assert seen["status"] == 200 and seen["closed"] == [True, True, False]
    retry, _ = fake_retry(2)
    checked = both(lib, [(200, {"a": ""}), (200, {"a": ""})], retry=retry, checks=[lambda r: 0])
    # the last failed answer reaches the caller already read (so closed), body intact
    assert checked["status"] == 200 and checked["closed"] == [True, True]
    assert json.loads(checked["body"]) == {"a": ""}


class _FailsAt:
    """A stream check that fails once it saw ``needle``."""

    def __init__(self, needle: bytes) -> None:
        self.needle, self.seen = needle, b""

    def feed(self, chunk: bytes) -> float | None:
        self.seen += chunk
        return 0.0 if self.needle in self.seen else None

    def close(self) -> float | None:
        return 1.0


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("mode", MODES, ids=["sync", "async"])
def test_stream_checks_fail_the_breaker_mid_stream_alike(lib: Any, mode: bool) -> None:
    def upstream(request: Any) -> Any:
        body = TrackedStream(lib, b"data: fine\n\ndata: BAD\n\n")
        streams.append(body)
        return lib.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    streams: list[Any] = []
    kwargs: dict[str, Any] = {
        "stream_checks": [lambda: _FailsAt(b"BAD")],
        "trip_on": consecutive_failures(1),
        "registry": Registry(),
    }
    cls = AsyncBreakerTransport if mode else BreakerTransport
    t = cls(lib.MockTransport(upstream), **kwargs)
    url = "http://api.test/v1/x"

    async def aread() -> None:
        async with lib.AsyncClient(transport=t) as client, client.stream("GET", url) as r:
            await r.aread()

    def read() -> None:
        with lib.Client(transport=t) as client, client.stream("GET", url) as r:
            r.read()

    with pytest.raises(BodyCheckFailed, match="in the stream"):
        asyncio.run(aread()) if mode else read()
    assert t.breaker("http://api.test:80").state is State.OPEN
    assert [s.closed for s in streams] == [True]
