"""Incremental SSE / NDJSON parsing and answer assembly, fed in arbitrary byte pieces."""

from __future__ import annotations

import json

import pytest

from tripwise.llm import LLMHTTPError
from tripwise.llm.wire import (
    NDJSONParser,
    OllamaWire,
    OpenAIWire,
    SSEParser,
    request_expectations,
)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def sse(*events: object) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events) + (
        b": keep-alive comment\n\ndata: [DONE]\n\n"
    )


CHUNKS = [
    {"model": "m", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
    {"choices": [{"index": 0, "delta": {"content": "h\u00e9llo"}}]},
    {"choices": [{"index": 0, "delta": {"content": " w\u00f6rld \U0001f600"}}]},
    {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}
                    ]
                },
            }
        ]
    },
    {
        "choices": [
            {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}
        ]
    },
    {
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"completion_tokens": 3},
    },
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_openai_stream_split_anywhere_gives_the_same_answer(size: int) -> None:
    acc = OpenAIWire("b").accumulator()
    deltas = []
    for piece in pieces(sse(*CHUNKS), size):
        for frame in acc.frames(piece):
            deltas.append(acc.feed(frame)[0])
    r = acc.response()
    assert r.content == "h\u00e9llo w\u00f6rld \U0001f600"
    assert "".join(deltas) == r.content
    assert acc.done and r.finish_reason == "stop" and r.model == "m"
    assert [(t.name, t.arguments, t.id) for t in r.tool_calls] == [("f", '{"a": 1}', "c1")]
    assert r.usage == {"completion_tokens": 3}


def test_multiline_sse_data_is_joined() -> None:
    assert SSEParser().feed(b"data: a\ndata: b\n\n") == ["a\nb"]


@pytest.mark.parametrize("size", [1, 5, 1000])
def test_ndjson_split_anywhere(size: int) -> None:
    lines = [
        {"model": "m", "message": {"role": "assistant", "content": "Hi"}, "done": False},
        {"model": "m", "message": {"role": "assistant", "content": " there"}, "done": False},
        {
            "model": "m",
            "message": {"content": ""},
            "done": True,
            "done_reason": "length",
            "prompt_eval_count": 2,
            "eval_count": 2,
        },
    ]
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    acc = OllamaWire("b").accumulator()
    for piece in pieces(data, size):
        for frame in acc.frames(piece):
            acc.feed(frame)
    r = acc.response()
    assert r.content == "Hi there" and r.finish_reason == "length"
    assert r.usage == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}


def test_ndjson_keeps_an_unterminated_last_line_for_close() -> None:
    p = NDJSONParser()
    assert p.feed(b'{"a": 1}\n{"b"') == ['{"a": 1}']
    assert p.feed(b": 2}") == []
    assert p.close() == ['{"b": 2}']


def test_an_error_chunk_mid_stream_raises() -> None:
    acc = OpenAIWire("b").accumulator()
    with pytest.raises(LLMHTTPError, match="error mid-stream"):
        acc.feed(json.dumps({"error": {"message": "overloaded"}}))
    with pytest.raises(LLMHTTPError, match="malformed stream chunk"):
        acc.feed("{not json")


def test_ollama_body_maps_openai_style_params_to_options() -> None:
    body = OllamaWire("b").body(
        "m", [{"role": "user", "content": "x"}], {"temperature": 0, "max_tokens": 5}, False
    )
    assert body["options"] == {"temperature": 0, "num_predict": 5}
    assert body["stream"] is False
    assert OllamaWire("b").body("m", "a prompt", {}, True)["prompt"] == "a prompt"


def test_request_expectations() -> None:
    schema = {"type": "object"}
    body = {
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}],
    }
    assert request_expectations(body) == {
        "wants_json": True,
        "response_schema": schema,
        "tool_schemas": {"f": schema},
    }
    assert request_expectations({"format": "json"})["wants_json"] is True
