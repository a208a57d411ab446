"""Many threads / tasks through one transport: every request gets an answer, the failing
backend's breaker opens once, and the fallback serves the rest."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from tests.support.fake_llm import FakeLLMServer, Fault
from tripwise import Registry, State, consecutive_failures
from tripwise.http import AsyncBreakerTransport, BreakerTransport

pytestmark = pytest.mark.integration

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_threads_share_one_transport(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    server.default = Fault("status", status=500)
    transport = BreakerTransport(
        fallback=[server2.url], trip_on=consecutive_failures(3), registry=Registry()
    )
    client = httpx.Client(transport=transport, base_url=server.base_url)
    answers: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            r = client.post("/chat/completions", json=BODY)
            with lock:
                answers.append(r.status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert answers == [200] * 80
    primary = transport.breaker(f"http://127.0.0.1:{server.port}")
    assert primary.state is State.OPEN and primary.trip_count == 1
    # only the calls before the trip (and those in flight when it tripped) reached it
    assert len(server.requests) < 20
    client.close()


def test_tasks_share_one_async_transport(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    server.default = Fault("status", status=503)

    async def main() -> list[int]:
        transport = AsyncBreakerTransport(
            fallback=[server2.url], trip_on=consecutive_failures(3), registry=Registry()
        )
        async with httpx.AsyncClient(transport=transport, base_url=server.base_url) as client:
            rs = await asyncio.gather(
                *(client.post("/chat/completions", json=BODY) for _ in range(40))
            )
        return [r.status_code for r in rs]

    assert asyncio.run(main()) == [200] * 40
    assert len(server2.requests) == 40
