"""The sync and async LLM clients and service share one core: the same faults give the same
events (with every ``hold``), the same responses, errors and counters, sync and async."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.fake_llm import REFUSAL, FakeLLMServer, Fault
from tripwise import Registry
from tripwise.llm import LLMService, OllamaClient, OpenAIClient

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]
LONG = "one two three four five six seven eight nine ten eleven twelve"


def client_of(api: str, server: FakeLLMServer) -> Any:
    if api == "openai":
        return OpenAIClient(server.base_url, "m", registry=Registry())
    return OllamaClient(server.url, "m", registry=Registry())


def consume(stream: Any, asynchronous: bool) -> dict[str, Any]:
    """Every event's delta, then the response (or the error that ended the stream)."""
    seen: dict[str, Any] = {"deltas": []}

    async def aconsume() -> None:
        async for e in stream:
            seen["deltas"].append(e.delta)

    def sconsume() -> None:
        for e in stream:
            seen["deltas"].append(e.delta)

    try:
        asyncio.run(aconsume()) if asynchronous else sconsume()
    except Exception as exc:
        seen["raised"] = type(exc).__name__
    r = stream.response
    seen["content"] = None if r is None else r.content
    return seen


@pytest.mark.parametrize("api", ["openai", "ollama"])
@pytest.mark.parametrize("hold", [False, True, 9])
@pytest.mark.parametrize(
    "fault",
    [Fault("content", text=LONG), Fault("content", text="Well. " + REFUSAL), Fault("empty")],
    ids=["ok", "late-refusal", "empty"],
)
def test_client_streams_alike(api: str, hold: Any, fault: Fault, server: FakeLLMServer) -> None:
    outcomes = []
    for asynchronous in (False, True):
        server.script(fault)
        client = client_of(api, server)
        method = client.astream if asynchronous else client.stream
        seen = consume(method(MESSAGES, hold=hold), asynchronous)
        seen["stats"] = repr(client.stats)
        outcomes.append(seen)
    sync, asynchronous_ = outcomes
    assert sync == asynchronous_
    if fault.text == LONG and fault.kind == "content":
        assert "".join(sync["deltas"]) == sync["content"] == LONG
        if hold is not True:
            assert len(sync["deltas"]) > 1  # streamed, not held to the end
    else:
        assert sync["raised"] == "OutputCheckFailed" and sync["content"] is None
        if hold is True:
            assert sync["deltas"] == []  # held to the end: the failure stays invisible
        elif fault.kind == "content":  # the caller saw text before the refusal was found
            assert "".join(sync["deltas"]).startswith("Well.")


@pytest.mark.parametrize("fault", [Fault("status", status=500), Fault("empty"), Fault("ok")])
def test_service_completes_and_streams_alike(
    fault: Fault, server: FakeLLMServer, server2: FakeLLMServer
) -> None:
    def service() -> LLMService:
        return LLMService(
            server.base_url,
            "m",
            fallback_base_url=server2.base_url,
            fallback_model="local-model",
            enable_circuit_breaker=False,
            sleep=lambda s: None,
            async_sleep=asyncio.sleep,
            waits=(0.0, 0.0),
        )

    results = {}
    for mode in ("complete", "acomplete", "stream", "astream"):
        server.script(fault, fault)
        svc = service()
        if mode.endswith("complete"):
            call = getattr(svc, mode)("What is 2+2?")
            r = asyncio.run(call) if mode == "acomplete" else call
        else:
            stream = getattr(svc, mode)("What is 2+2?")
            seen = consume(stream, mode == "astream")
            if "raised" in seen:  # failed after the caller saw events: no moving on
                results[mode] = (seen["raised"], "".join(seen["deltas"]))
                continue
            r = stream.response
        attempts = [(a.outcome, a.detail) for a in r.attempts]
        results[mode] = (r.content, r.model, r.attempt, r.fallback_used, attempts)
    assert results["complete"] == results["acomplete"]
    assert results["stream"] == results["astream"]
    if fault.kind != "empty":  # a JSON answer and a stream take the same way through the chain
        assert results["complete"] == results["stream"]
