"""LLMService: the seed's chain (cloud, wait, cloud retry, wait, local), per-attempt records,
fail-fast when every tier is open, streams that fail over before the first token."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from tests.support.fake_llm import FakeLLMServer, Fault
from tripwise import FakeClock
from tripwise.llm import (
    AllAttemptsFailed,
    CircuitBreakerError,
    LLMHTTPError,
    LLMService,
    OutputCheckFailed,
)
from tripwise.policies import HealthChecker

pytestmark = pytest.mark.integration


def service(
    cloud: FakeLLMServer, local: FakeLLMServer | None = None, **kw: Any
) -> tuple[LLMService, list[float]]:
    waits: list[float] = []

    async def async_sleep(s: float) -> None:
        waits.append(s)

    kw.setdefault("health_checker", HealthChecker(registry=None, clock=FakeClock()))
    svc = LLMService(
        base_url=cloud.base_url,
        model="gpt-4o",
        fallback_base_url=local.base_url if local else None,
        fallback_model="llama3.2" if local else None,
        sleep=waits.append,
        async_sleep=async_sleep,
        **kw,
    )
    return svc, waits


def test_first_try_answers_with_the_seed_metadata(
    server: FakeLLMServer, server2: FakeLLMServer
) -> None:
    svc, waits = service(server, server2)
    r = svc.complete("What is 2+2?")
    assert (r.content, r.attempt, r.fallback_used, r.backend) == (
        "The answer is 4",
        0,
        False,
        server.base_url,
    )
    assert r.finish_reason == "stop" and r.quality == 1.0
    assert [(a.attempt, a.outcome) for a in r.attempts] == [(0, "ok")]
    assert waits == [] and server.requests[-1][1]["model"] == "gpt-4o"


def test_the_default_chain_retries_then_falls_back_to_local(
    server: FakeLLMServer, server2: FakeLLMServer
) -> None:
    server.script(Fault("status", status=500), Fault("empty"))
    svc, waits = service(server, server2)
    r = svc.complete("What is 2+2?")
    assert r.attempt == 2 and r.fallback_used and r.backend == server2.base_url
    assert r.model == "local-model" and server2.requests[-1][1]["model"] == "llama3.2"
    assert waits == [2.0, 5.0]
    assert [(a.attempt, a.outcome, a.detail) for a in r.attempts] == [
        (0, "http", "500"),
        (1, "quality", "non_empty"),
        (2, "ok", ""),
    ]
    assert all(a.ms > 0 for a in r.attempts)


def test_attempt_timeouts_are_10_20_30_seconds(
    server: FakeLLMServer, server2: FakeLLMServer
) -> None:
    svc, _ = service(server, server2, enable_circuit_breaker=False, health_checker=None)
    seen: list[float | None] = []
    for client in (svc.primary, svc.fallback):
        assert client is not None
        raw = client._chat_raw

        def spy(msgs: Any, params: Any, t: Any, generate: bool, raw: Any = raw) -> Any:
            seen.append(t.total)
            raise LLMHTTPError(503, "down")

        client._chat_raw = spy  # type: ignore[method-assign]
    with pytest.raises(AllAttemptsFailed):
        svc.complete("x")
    assert seen == [10.0, 20.0, 30.0]
    seen.clear()
    with pytest.raises(AllAttemptsFailed):
        svc.complete("x", timeout=60)  # the seed's "increase timeout"
    assert seen == [60.0, 60.0, 60.0]


def test_jitter_spreads_the_waits(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    server.default = Fault("status", status=500)
    svc, waits = service(server, server2, jitter=0.5, rng=random.Random(7))
    svc.complete("x")
    assert len(waits) == 2 and waits != [2.0, 5.0]
    assert 1.0 <= waits[0] <= 3.0 and 2.5 <= waits[1] <= 7.5


def test_every_tier_open_fails_fast(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    server.default = server2.default = Fault("status", status=500)
    svc, waits = service(server, server2, failure_threshold=1)
    with pytest.raises(AllAttemptsFailed) as info:
        svc.complete("x")
    assert [a.outcome for a in info.value.attempts] == ["http", "open", "http"]
    assert isinstance(info.value.__cause__, LLMHTTPError)  # the last error
    sent = len(server.requests) + len(server2.requests)
    waits.clear()
    with pytest.raises(CircuitBreakerError) as fast:
        svc.complete("x")
    assert len(server.requests) + len(server2.requests) == sent and waits == []
    assert set(fast.value.breakers) == {server.base_url, server2.base_url}
    assert fast.value.retry_after > 0


def test_a_caller_error_is_raised_at_once_and_not_counted(server: FakeLLMServer) -> None:
    server.script(Fault("status", status=400))
    checker = HealthChecker(registry=None)
    svc, waits = service(server, health_checker=checker)
    with pytest.raises(LLMHTTPError) as info:
        svc.complete("x")
    assert info.value.status_code == 400 and waits == []
    assert checker.get_health_status(server.base_url).total_failures == 0


def test_messages_and_params(server: FakeLLMServer) -> None:
    svc, _ = service(server, params={"temperature": 0})
    svc.complete(
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        max_tokens=5,
    )
    body = server.requests[-1][1]
    assert body["messages"][0]["role"] == "system"
    assert body["temperature"] == 0 and body["max_tokens"] == 5
    with pytest.raises(TypeError, match="not both"):
        svc.complete("x", messages=[{"role": "user", "content": "y"}])


def test_ollama_native_local_tier(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    server.default = Fault("status", status=503)
    svc = LLMService(
        base_url=server.base_url,
        fallback_base_url=server2.url,
        fallback_api="ollama",
        health_checker=HealthChecker(registry=None),
        sleep=lambda s: None,
    )
    r = svc.complete("x")
    assert r.fallback_used and server2.requests[-1][0] == "/api/chat"


def test_with_local_and_a_cloud_primary(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    svc = LLMService.with_local(
        base_url=server2.base_url,
        cloud_base_url=server.base_url,
        cloud_model="gpt-4o",
        health_checker=HealthChecker(registry=None),
    )
    assert svc.endpoints == [server.base_url, server2.base_url]
    assert svc.fallback is not None and svc.fallback.model == "llama3.2"


def test_async_complete_runs_the_same_chain(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    server.script(Fault("reset"), Fault("refusal"))
    svc, waits = service(server, server2)

    async def main() -> Any:
        try:
            return await svc.acomplete("x")
        finally:
            await svc.aclose()

    r = asyncio.run(main())
    assert r.attempt == 2 and waits == [2.0, 5.0]
    assert [a.outcome for a in r.attempts] == ["transport", "quality", "ok"]


def test_stream_fails_over_before_the_first_token(
    server: FakeLLMServer, server2: FakeLLMServer
) -> None:
    server.script(Fault("status", status=500), Fault("slow_first_token", delay=0.5))
    svc, _ = service(server, server2)
    svc.primary.timeouts = svc.primary.timeouts.__class__(first_token=0.1)
    stream = svc.stream("x")
    assert "".join(e.delta for e in stream) == "The answer is 4"
    r = stream.response
    assert r is not None and r.attempt == 2 and r.fallback_used
    assert [(a.outcome, a.detail) for a in r.attempts] == [
        ("http", "500"),
        ("timeout", "first_token"),
        ("ok", ""),
    ]


def test_held_stream_fails_over_on_a_refusal(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    server.script(Fault("refusal"), Fault("empty"))
    svc, _ = service(server, server2)
    stream = svc.stream("x", hold=True)
    assert "".join(e.delta for e in stream) == "The answer is 4"
    assert stream.response is not None and stream.response.attempt == 2


def test_a_failure_after_the_commit_point_raises(
    server: FakeLLMServer, server2: FakeLLMServer
) -> None:
    server.script(Fault("content", text="Well. I'm sorry, but I can't help with that request."))
    svc, _ = service(server, server2)
    seen = []
    with pytest.raises(OutputCheckFailed):
        for e in svc.stream("x"):
            seen.append(e.delta)
    assert seen and not server2.requests  # text was delivered: no silent switch to another model


def test_async_stream_fails_over(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    server.default = Fault("status", status=502)
    svc, _ = service(server, server2)

    async def main() -> tuple[str, Any]:
        s = svc.astream("x")
        text = "".join([e.delta async for e in s])
        await svc.aclose()
        return text, s.response

    text, r = asyncio.run(main())
    assert text == "The answer is 4" and r.attempt == 2


def test_retry_after_of_the_backend_is_honoured(
    server: FakeLLMServer, server2: FakeLLMServer
) -> None:
    server.script(Fault("status", status=429, retry_after=7))
    svc, waits = service(server, server2)
    assert svc.complete("x").attempt == 1
    assert waits == [7.0]  # at least what the backend asked, not the default 2 s
    server.script(Fault("status", status=429, retry_after=600))
    waits.clear()
    r = svc.complete("x")
    assert r.attempt == 2 and waits == [5.0]
    assert [(a.outcome, a.detail) for a in r.attempts][:2] == [
        ("http", "429"),
        ("skipped", "retry-after"),
    ]
