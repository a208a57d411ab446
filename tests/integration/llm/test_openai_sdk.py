"""The official openai SDK (3.x, on httpx2) and the ollama client as real clients through
the breaker transport: breakers, one retry loop, fallback, the open 503, bad 200s."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import ollama
import openai
import pytest

from tests.support.fake_llm import FakeLLMServer, Fault
from tripwise import Registry, State, consecutive_failures
from tripwise.http import Fallback, wrap_ollama, wrap_openai
from tripwise.llm import body_check

pytestmark = pytest.mark.integration

MESSAGES: list[Any] = [{"role": "user", "content": "What is 2+2?"}]


def test_the_sdk_runs_on_httpx2_without_its_own_retries(server: FakeLLMServer) -> None:
    assert openai.__version__.startswith("3.")
    client = wrap_openai({"base_url": server.base_url, "api_key": "k"}, registry=Registry())
    assert client.max_retries == 0
    assert isinstance(client._client, httpx2.Client)
    server.script(Fault("status", status=500))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert len(server.requests) == 1  # the SDK did not retry behind our back
    r = client.chat.completions.create(model="m", messages=MESSAGES)
    assert r.choices[0].message.content == "The answer is 4"


def test_transport_retry_is_the_one_retry_loop(server: FakeLLMServer) -> None:
    server.script(Fault("status", status=503), Fault("status", status=429, retry_after=0))
    client = wrap_openai(
        {"base_url": server.base_url, "api_key": "k"}, retry=3, registry=Registry()
    )
    r = client.chat.completions.create(model="m", messages=MESSAGES)
    assert r.choices[0].message.content == "The answer is 4"
    assert len(server.requests) == 3


def test_fallback_to_a_local_model_is_invisible_to_the_call_site(
    server: FakeLLMServer, server2: FakeLLMServer
) -> None:
    server.default = Fault("status", status=500)
    client = wrap_openai(
        {"base_url": server.base_url, "api_key": "cloud"},
        fallback=[
            Fallback(server2.base_url, model="llama3.2", headers={"authorization": "Bearer local"})
        ],
        registry=Registry(),
    )
    r = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert r.model == "local-model"
    path, body = server2.requests[-1]
    assert path == "/v1/chat/completions" and body["model"] == "llama3.2"


def test_an_open_breaker_is_a_clean_503_the_sdk_does_not_retry(server: FakeLLMServer) -> None:
    server.default = Fault("status", status=500)
    client = wrap_openai(
        {"base_url": server.base_url, "api_key": "k"},
        trip_on=consecutive_failures(2),
        registry=Registry(),
    )
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    err = info.value
    assert err.status_code == 503
    assert err.response.headers["x-should-retry"] == "false"
    assert int(err.response.headers["retry-after"]) >= 1
    assert err.code == "circuit_breaker_open" and err.type == "circuit_breaker_open"
    assert len(server.requests) == 2


def test_a_bad_200_counts_and_falls_back(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    server.default = Fault("empty")
    client = wrap_openai(
        {"base_url": server.base_url, "api_key": "k"},
        checks=[body_check()],
        fallback=[server2.base_url],
        trip_on=consecutive_failures(2),
        registry=Registry(),
    )
    transport = client._client._transport
    for _ in range(3):
        r = client.chat.completions.create(model="m", messages=MESSAGES)
        assert r.choices[0].message.content == "The answer is 4"  # from the fallback
    assert len(server.requests) == 2  # the empty-answering backend opened after two
    assert transport.breaker(f"http://127.0.0.1:{server.port}").state is State.OPEN


def test_streaming_through_the_sdk_passes_untouched(server: FakeLLMServer) -> None:
    client = wrap_openai({"base_url": server.base_url, "api_key": "k"}, registry=Registry())
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "The answer is 4"


def test_wrapping_an_existing_async_client(server: FakeLLMServer, server2: FakeLLMServer) -> None:
    async def main() -> str:
        base = openai.AsyncOpenAI(base_url=server.base_url, api_key="k")
        client = wrap_openai(base, fallback=[server2.base_url], registry=Registry())
        assert client.max_retries == 0
        server.script(Fault("reset"))
        r = await client.chat.completions.create(model="m", messages=MESSAGES)
        await client.close()
        return str(r.model)

    assert asyncio.run(main()) == "local-model"


def test_wrap_openai_refuses_a_second_retry_loop() -> None:
    with pytest.raises(ValueError, match="max_retries must be 0"):
        wrap_openai({"base_url": "http://127.0.0.1:1/v1", "api_key": "k", "max_retries": 2})
    with pytest.raises(TypeError, match="wrap_openai takes"):
        wrap_openai("http://127.0.0.1:1/v1")


def test_the_ollama_client_through_the_transport(
    server: FakeLLMServer, server2: FakeLLMServer
) -> None:
    server.default = Fault("status", status=500)
    client = wrap_ollama(server.url, fallback=[server2.url], registry=Registry())
    r = client.chat(model="m", messages=MESSAGES, stream=False)
    assert r.message.content == "The answer is 4"
    assert r.model == "local-model"
    parts = [p.message.content for p in client.chat(model="m", messages=MESSAGES, stream=True)]
    assert "".join(parts) == "The answer is 4"
    server2.default = Fault("status", status=500)
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="m", messages=MESSAGES, stream=False)
    assert info.value.status_code == 500
