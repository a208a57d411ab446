"""Request validation, answer checks and cache keys (no I/O)."""

from __future__ import annotations

import pytest

from tripwise.gateway.checks import check_completion
from tripwise.gateway.runtime import cache_key
from tripwise.gateway.validate import BadRequest, check_chat, parse_json_body


def completion(content: str | None, finish: str = "stop", **msg: object) -> dict:
    return {
        "choices": [
            {"message": {"role": "assistant", "content": content, **msg}, "finish_reason": finish}
        ]
    }


CHECKS = ("empty", "finish_reason", "refusal", "json", "tool_args")
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (completion("fine"), None),
        (completion("   "), "quality:empty"),
        (completion(None, "tool_calls", tool_calls=[CALL]), None),
        (completion("half", "length"), "quality:truncated"),
        (completion("x", "content_filter"), "quality:content_filter"),
        (completion("I'm sorry, but I can't help with that."), "quality:refusal"),
        ({"choices": []}, "quality:no_choices"),
    ],
)
def test_checks(answer: dict, reason: str | None) -> None:
    assert check_completion(answer, CHECKS, request={}) == reason


def test_json_checks_follow_the_request() -> None:
    schema = {"type": "object", "required": ["a"]}
    fmt = {"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
    assert check_completion(completion('{"a": 1}'), CHECKS, request=fmt) is None
    assert check_completion(completion('{"b": 1}'), CHECKS, request=fmt) == "quality:json_schema"
    assert check_completion(completion("{"), CHECKS, request=fmt) == "quality:invalid_json"
    plain = {"response_format": {"type": "json_object"}}
    assert check_completion(completion("[1]"), CHECKS, request=plain) is None
    assert check_completion(completion("nope"), CHECKS, request={}) is None


def test_cache_key_ignores_transport_fields_only() -> None:
    m = [{"role": "user", "content": "hi"}]
    base = cache_key("r", {"model": "x", "messages": m})
    assert base == cache_key("r", {"messages": m, "model": "x", "stream": True, "user": "u"})
    assert base != cache_key("r", {"model": "x", "messages": m, "temperature": 0.5})
    assert base != cache_key("other", {"model": "x", "messages": m})


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"\xff", b"[]", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": "\\ud800"}'],
)
def test_bad_bodies(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_json_body(raw)


def test_chat_fields_name_the_parameter() -> None:
    with pytest.raises(BadRequest) as info:
        check_chat({"messages": [{"role": "user", "content": "x"}], "top_p": 2})
    assert info.value.param == "top_p" and "top_p" in str(info.value)
