"""Stream checks in the transport: a streamed answer is one guarded call whose outcome is
the stream's, so a refusal or an empty stream counts for the breaker; without stream checks
streams pass untouched."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import httpx2
import pytest

from tests.support.fake_llm import FakeLLMServer, Fault
from tripwise import Registry, State, consecutive_failures
from tripwise.http import AsyncBreakerTransport, BodyCheckFailed, BreakerTransport
from tripwise.llm import stream_check

pytestmark = pytest.mark.integration

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=lambda m: m.__name__)
def test_a_refusing_stream_fails_mid_way_and_counts(lib: Any, server: FakeLLMServer) -> None:
    server.script(Fault("refusal"), Fault("empty"))
    t = BreakerTransport(
        stream_checks=[stream_check()], trip_on=consecutive_failures(2), registry=Registry()
    )
    with lib.Client(transport=t, base_url=server.base_url) as client:
        for _ in range(2):
            with (
                pytest.raises(BodyCheckFailed),
                client.stream("POST", "/chat/completions", json=BODY) as r,
            ):
                assert r.status_code == 200
                r.read()
        (breaker,) = t.breakers().values()
        assert breaker.state is State.OPEN
        assert client.post("/chat/completions", json=BODY).status_code == 503


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=lambda m: m.__name__)
def test_a_good_stream_passes_and_is_a_success(lib: Any, server: FakeLLMServer) -> None:
    t = BreakerTransport(stream_checks=[stream_check()], registry=Registry())
    with lib.Client(transport=t, base_url=server.base_url) as client:
        with client.stream("POST", "/chat/completions", json=BODY) as r:
            text = r.read().decode()
        assert "The" in text and text.rstrip().endswith("data: [DONE]")
        (breaker,) = t.breakers().values()
        assert breaker.stats().failures == 0 and breaker.stats().calls == 1
        # a JSON answer through the same transport is still one success
        assert client.post("/chat/completions", json={**BODY, "stream": False}).status_code == 200
        assert breaker.stats().calls == 2


def test_async_stream_checks_on_ollama_ndjson(server: FakeLLMServer) -> None:
    async def main() -> None:
        server.script(Fault("length"))
        t = AsyncBreakerTransport(stream_checks=[stream_check(api="ollama")], registry=Registry())
        async with httpx.AsyncClient(transport=t, base_url=server.url) as client:
            with pytest.raises(BodyCheckFailed):
                async with client.stream("POST", "/api/chat", json=BODY) as r:
                    await r.aread()
            async with client.stream("POST", "/api/chat", json=BODY) as r:
                assert b'"done": true' in await r.aread()
        (breaker,) = t.breakers().values()
        assert breaker.stats().failures == 1 and breaker.stats().calls == 2

    asyncio.run(main())


def test_bad_stream_check_spec_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown check"):
        stream_check(["nope"])
    with pytest.raises(TypeError, match="stream_checks must be factories"):
        BreakerTransport(stream_checks=[42])
