"""Streams through a real gateway: the commit point, stalls, error events, tool calls."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.integration.gateway.conftest import chain_config
from tests.support.fake_llm import Fault

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "Hello"}]
LONG = " ".join(f"word{i}" for i in range(60))  # well past the 64-character hold window


def stream(url: str, body: dict) -> tuple[httpx.Response, list[str]]:
    with httpx.stream(
        "POST", url + "/v1/chat/completions", json={**body, "stream": True}, timeout=15
    ) as resp:
        events = [line[len("data: ") :] for line in resp.iter_lines() if line.startswith("data: ")]
    return resp, events


def text_of(events: list[str]) -> str:
    out = []
    for e in events:
        if e == "[DONE]":
            continue
        data = json.loads(e)
        for c in data.get("choices", []):
            out.append(c.get("delta", {}).get("content") or "")
    return "".join(out)


def test_stall_before_commit_fails_over_invisibly(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary))
    primary.script(Fault("stall", after=1, delay=3))  # inside the hold window
    resp, events = stream(g.url, {"model": "m", "messages": HELLO})
    assert resp.status_code == 200
    assert resp.headers["x-tripwise-backend"] == "ollama_cpu"
    assert resp.headers["x-tripwise-fallback-reason"] == "max_gpu=error:stall"
    assert text_of(events) == "The answer is 4"  # nothing of the first backend leaked
    assert events[-1] == "[DONE]"


def test_slow_first_token_fails_over(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary))
    primary.script(Fault("slow_first_token", delay=3))
    resp, events = stream(g.url, {"model": "m", "messages": HELLO})
    assert resp.headers["x-tripwise-backend"] == "ollama_cpu"
    assert resp.headers["x-tripwise-fallback-reason"] == "max_gpu=error:first_byte_timeout"
    assert events[-1] == "[DONE]"


def test_empty_stream_fails_over_before_commit(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary))
    primary.script(Fault("empty"))
    resp, events = stream(g.url, {"model": "m", "messages": HELLO})
    assert resp.headers["x-tripwise-fallback-reason"] == "max_gpu=quality:empty"
    assert text_of(events) == "The answer is 4"


def test_refusal_inside_the_hold_window_fails_over(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary))
    primary.script(Fault("refusal"))
    resp, events = stream(g.url, {"model": "m", "messages": HELLO})
    assert resp.headers["x-tripwise-fallback-reason"] == "max_gpu=quality:refusal"
    assert "sorry" not in text_of(events).lower()


def test_failure_after_commit_ends_with_an_error_event_and_no_done(
    primary, secondary, gateway
) -> None:
    g = gateway(chain_config(primary, secondary))
    primary.script(Fault("stall", text=LONG, after=30, delay=3))  # past the hold window
    resp, events = stream(g.url, {"model": "m", "messages": HELLO})
    assert resp.status_code == 200
    assert resp.headers["x-tripwise-backend"] == "max_gpu"
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert last["error"]["code"] == "error:stall"
    assert text_of(events[:-1]).startswith("word0 word1")
    assert len(secondary.requests) == 0  # a committed stream is never continued elsewhere
    # the official SDK surfaces it as an error, not as a silently short answer
    primary.script(Fault("stall", text=LONG, after=30, delay=3))
    client = openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="m", messages=HELLO, stream=True):
            pass


def test_single_backend_route_commits_on_the_first_chunk(primary, secondary, gateway) -> None:
    extra = "  solo:\n    chain: [max_gpu]\n"
    g = gateway(chain_config(primary, secondary, extra_routes=extra))
    # a stall right after the first chunk: no next tier, so no hold window: the first chunk
    # was already sent, and the stall ends the stream with an error event
    primary.script(Fault("stall", after=2, delay=3))  # after the role chunk and "The"
    resp, events = stream(g.url, {"model": "solo", "messages": HELLO})
    assert resp.headers["x-tripwise-backend"] == "max_gpu"
    assert text_of(events[:-1]) == "The"
    assert json.loads(events[-1])["error"]["code"] == "error:stall"


def test_tool_call_stream_passes_through(primary, secondary, gateway) -> None:
    g = gateway(chain_config(primary, secondary, secondary_type="openai"))
    primary.script(Fault("tool_call"))
    resp, events = stream(
        g.url,
        {
            "model": "m",
            "messages": HELLO,
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
        },
    )
    assert resp.headers["x-tripwise-backend"] == "max_gpu"
    assert events[-1] == "[DONE]"
    assert any("tool_calls" in e for e in events)


def test_hold_window_in_tokens_decides_the_commit_point(primary, secondary, gateway) -> None:
    extra = (
        "  short-hold:\n    chain: [max_gpu, ollama_cpu]\n    hold: {tokens: 2}\n"
        "  long-hold:\n    chain: [max_gpu, ollama_cpu]\n    hold: {tokens: 50}\n"
    )
    g = gateway(chain_config(primary, secondary, extra_routes=extra))
    # role chunk, "word0", " word1", " word2", then a stall
    primary.script(Fault("stall", text=LONG, after=4, delay=3))
    resp, events = stream(g.url, {"model": "short-hold", "messages": HELLO})
    assert resp.headers["x-tripwise-backend"] == "max_gpu"  # committed after 2 tokens
    assert json.loads(events[-1])["error"]["code"] == "error:stall"
    primary.script(Fault("stall", text=LONG, after=4, delay=3))
    resp, events = stream(g.url, {"model": "long-hold", "messages": HELLO})
    assert resp.headers["x-tripwise-backend"] == "ollama_cpu"  # still held: invisible failover
    assert events[-1] == "[DONE]" and "word0" not in text_of(events)


def test_a_bad_answer_after_commit_still_counts_for_the_breaker(
    primary, secondary, gateway
) -> None:
    extra = "  solo:\n    chain: [max_gpu]\n"
    g = gateway(chain_config(primary, secondary, extra_routes=extra))
    primary.default = Fault("length")  # truncated: visible only at the end of the stream
    for _ in range(3):
        resp, events = stream(g.url, {"model": "solo", "messages": HELLO})
        assert resp.headers["x-tripwise-backend"] == "max_gpu"
        assert events[-1] == "[DONE]"  # delivered: no next tier, nothing to fail over to
    status = httpx.get(g.url + "/circuit-breakers/max_gpu").json()
    assert status["state"] == "open" and status["reason"] == "quality:truncated"
