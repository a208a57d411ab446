"""OpenAI-compatible and Ollama clients against a real server on 127.0.0.1 with faults:
every fault surfaces as the right error, sync and async, JSON and streamed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.fake_llm import REFUSAL, FakeLLMServer, Fault
from tripwise import CircuitBreaker, CircuitBreakerOpen, Registry, State, consecutive_failures
from tripwise.llm import (
    LLMClient,
    LLMHTTPError,
    LLMResponse,
    LLMTimeout,
    LLMTransportError,
    OllamaClient,
    OpenAIClient,
    OutputCheckFailed,
    counts_as_backend_failure,
)

pytestmark = pytest.mark.integration

APIS = ["openai", "ollama"]
MODES = ["json", "stream", "ajson", "astream"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "required": ["city"],
                "properties": {"city": {"type": "string"}},
            },
        },
    }
]


def make(api: str, server: FakeLLMServer, **kwargs: Any) -> LLMClient:
    kwargs.setdefault("registry", Registry())
    if api == "openai":
        return OpenAIClient(server.base_url, "m", **kwargs)
    return OllamaClient(server.url, "m", **kwargs)


def run(client: LLMClient, mode: str, **params: Any) -> LLMResponse:
    messages = [{"role": "user", "content": "What is 2+2?"}]
    if mode == "json":
        return client.chat(messages, **params)
    if mode == "stream":
        s = client.stream(messages, **params)
        text = "".join(e.delta for e in s)
        assert s.response is not None and s.response.content == text
        return s.response

    async def main() -> LLMResponse:
        try:
            if mode == "ajson":
                return await client.achat(messages, **params)
            s = client.astream(messages, **params)
            text = "".join([e.delta async for e in s])
            assert s.response is not None and s.response.content == text
            return s.response
        finally:
            await client.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
def test_a_good_answer(api: str, mode: str, server: FakeLLMServer) -> None:
    client = make(api, server)
    r = run(client, mode)
    assert r.content == "The answer is 4"
    assert r.finish_reason == "stop" and r.quality == 1.0
    assert r.usage["completion_tokens"] == 4 and r.model == "fake-model"
    assert r.response_time_ms > 0 and r.backend == client.name
    assert client.stats.ok == 1
    path, body = server.requests[-1]
    assert path == ("/v1/chat/completions" if api == "openai" else "/api/chat")
    assert bool(body.get("stream")) == mode.endswith("stream")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("fault", "check", "params"),
    [
        (Fault("empty"), "non_empty", {}),
        (Fault("length"), "finish_reason", {}),
        (Fault("refusal"), "refusal", {}),
        (Fault("invalid_json"), "json", {"json": True}),
        (Fault("bad_tool_args"), "tool_args", {"tools": TOOLS}),
    ],
    ids=["empty", "length", "refusal", "invalid_json", "bad_tool_args"],
)
def test_bad_200s_are_quality_failures(
    api: str, mode: str, fault: Fault, check: str, params: dict[str, Any], server: FakeLLMServer
) -> None:
    params = dict(params)
    if params.pop("json", False):
        params = (
            {"response_format": {"type": "json_object"}} if api == "openai" else {"format": "json"}
        )
    server.script(fault)
    client = make(api, server)
    with pytest.raises(OutputCheckFailed) as info:
        run(client, mode, **params)
    assert info.value.check == check
    assert client.stats.quality_failures == 1 and client.stats.transport_failures == 0
    assert client.stats.by_check == {check: 1}


@pytest.mark.parametrize("api", APIS)
def test_valid_tool_call_args_pass(api: str, server: FakeLLMServer) -> None:
    server.script(Fault("tool_call"), Fault("tool_call", tool_args='{"town": "Paris"}'))
    client = make(api, server)
    r = client.chat([{"role": "user", "content": "weather?"}], tools=TOOLS)
    assert [(t.name, t.arguments) for t in r.tool_calls] == [("get_weather", '{"city": "Paris"}')]
    with pytest.raises(OutputCheckFailed, match="'city' is a required property"):
        client.chat([{"role": "user", "content": "weather?"}], tools=TOOLS)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
def test_transport_faults(api: str, mode: str, server: FakeLLMServer) -> None:
    server.script(
        Fault("status", status=500),
        Fault("status", status=429, retry_after=7),
        Fault("reset"),
        Fault("status", status=400),
    )
    client = make(api, server, breaker=False)
    with pytest.raises(LLMHTTPError) as e500:
        run(client, mode)
    assert e500.value.status_code == 500 and e500.value.retriable
    with pytest.raises(LLMHTTPError) as e429:
        run(client, mode)
    assert e429.value.status_code == 429 and e429.value.retry_after == 7.0
    with pytest.raises(LLMTransportError):
        run(client, mode)
    with pytest.raises(LLMHTTPError) as e400:
        run(client, mode)
    assert not e400.value.retriable and not counts_as_backend_failure(e400.value)
    assert client.stats.transport_failures == 4 and client.stats.quality_failures == 0


@pytest.mark.parametrize("mode", ["stream", "astream"])
@pytest.mark.parametrize("api", APIS)
def test_slow_first_token_and_stall(api: str, mode: str, server: FakeLLMServer) -> None:
    server.script(Fault("slow_first_token", delay=0.6), Fault("stall", after=2, delay=0.6))
    client = make(api, server, timeouts={"first_token": 0.2, "stall": 0.2, "total": 5})
    with pytest.raises(LLMTimeout) as first:
        run(client, mode)
    assert first.value.kind == "first_token"
    with pytest.raises(LLMTimeout) as stall:
        run(client, mode)
    assert stall.value.kind == "stall"
    assert isinstance(stall.value, TimeoutError)


@pytest.mark.parametrize("mode", ["json", "ajson"])
@pytest.mark.parametrize("api", APIS)
def test_total_timeout_of_a_json_answer(api: str, mode: str, server: FakeLLMServer) -> None:
    server.script(Fault("slow_first_token", delay=0.6))
    client = make(api, server)
    with pytest.raises(LLMTimeout) as info:
        run(client, mode, timeout=0.2)
    assert info.value.kind == "total"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", APIS)
def test_a_backend_that_keeps_answering_empty_opens(
    api: str, mode: str, server: FakeLLMServer
) -> None:
    server.default = Fault("empty")
    breaker = CircuitBreaker(
        consecutive_failures(3), exception_predicate=counts_as_backend_failure, registry=None
    )
    client = make(api, server, breaker=breaker)
    for _ in range(3):
        with pytest.raises(OutputCheckFailed):
            run(client, mode)
    assert breaker.state is State.OPEN
    sent = len(server.requests)
    with pytest.raises(CircuitBreakerOpen):
        run(client, mode)
    assert len(server.requests) == sent  # rejected without touching the network


@pytest.mark.parametrize("api", APIS)
def test_hold_keeps_a_late_failure_invisible(api: str, server: FakeLLMServer) -> None:
    long_refusal = Fault("content", text="Well. " + REFUSAL)
    server.script(long_refusal, long_refusal)
    client = make(api, server)
    seen: list[str] = []
    with pytest.raises(OutputCheckFailed):
        for e in client.stream([{"role": "user", "content": "x"}]):
            seen.append(e.delta)
    assert "".join(seen)  # unheld: the caller already saw text when it failed
    seen.clear()
    with pytest.raises(OutputCheckFailed):
        for e in client.stream([{"role": "user", "content": "x"}], hold=True):
            seen.append(e.delta)
    assert seen == []


def test_ollama_generate_and_health(server: FakeLLMServer) -> None:
    client = OllamaClient(server.url, "m", api="generate", registry=Registry())
    assert client.complete("2+2?").content == "The answer is 4"
    assert server.requests[-1][0] == "/api/generate"
    assert client.stream_generate("2+2?").text() == "The answer is 4"
    assert client.health()
    server.healthy = False
    assert not client.health()
    assert not OllamaClient(server.url, "m", health_path="/api/health", breaker=False).health()


def test_openai_logprob_check(server: FakeLLMServer) -> None:
    server.script(Fault(logprob=-0.05), Fault(logprob=-3.0))
    client = make("openai", server, checks=["non_empty", ("logprob", {"min_logprob": -1.0})])
    assert client.chat([{"role": "user", "content": "x"}], logprobs=True).logprobs is not None
    with pytest.raises(OutputCheckFailed, match="mean logprob"):
        client.chat([{"role": "user", "content": "x"}], logprobs=True)


def test_a_client_over_a_breaker_transport(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    """The LLM client on a caller's httpx client whose transport falls back: the API key
    still goes out, and a 500 is answered by the second backend."""
    import httpx

    from tripwise.http import BreakerTransport

    transport = BreakerTransport(fallback=[server2.url], registry=Registry())
    http = httpx.Client(transport=transport)
    client = OpenAIClient(server.base_url, "m", api_key="sk-1", http_client=http, breaker=False)
    server.script(Fault("status", status=500))
    r = client.complete("x")
    assert r.model == "local-model"
    assert server.last_headers["authorization"] == "Bearer sk-1"
    assert server2.last_headers["authorization"] == "Bearer sk-1"
    client.close()
    assert not http.is_closed  # the caller's client stays the caller's
