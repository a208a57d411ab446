"""Output checks: a bad 200 is a failure, a good one passes; bad check specs fail loudly."""

from __future__ import annotations

from typing import Any

import pytest

from tripwise.llm import LLMResponse, ToolCall, build_checks
from tripwise.llm.checks import CHECKS


def answer(content: str = "The answer is 4", **kw: Any) -> LLMResponse:
    kw.setdefault("finish_reason", "stop")
    return LLMResponse(content=content, **kw)


def failed(spec: Any, r: LLMResponse) -> list[str]:
    return [f.check for f in build_checks(spec).run(r).failures]


def test_default_checks_pass_a_good_answer() -> None:
    report = build_checks().run(answer())
    assert report.passed and report.quality == 1.0


@pytest.mark.parametrize(
    ("r", "check"),
    [
        (answer(""), "non_empty"),
        (answer("   \n"), "non_empty"),
        (answer("The answer is", finish_reason="length"), "finish_reason"),
        (answer("", finish_reason="content_filter"), "finish_reason"),
        (answer("I'm sorry, but I can't help with that."), "refusal"),
        (answer("I can\u2019t help with that request."), "refusal"),
        (answer('{"a": 1', wants_json=True), "json"),
        (
            answer(
                "",
                finish_reason="tool_calls",
                tool_calls=[ToolCall("get_weather", "{city: Paris")],
            ),
            "tool_args",
        ),
    ],
)
def test_default_checks_catch_bad_200s(r: LLMResponse, check: str) -> None:
    assert check in failed(None, r)


def test_json_check_uses_the_request_schema() -> None:
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    assert failed(["json"], answer('{"n": "four"}', response_schema=schema)) == ["json"]
    assert failed(["json"], answer('{"n": 4}', response_schema=schema)) == []
    assert failed(["json"], answer("not json at all")) == []  # no JSON was asked for


def test_tool_args_are_validated_against_the_tool_schema() -> None:
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
    bad = answer("", tool_calls=[ToolCall("get_weather", '{"town": "Paris"}')])
    bad.tool_schemas = {"get_weather": schema}
    report = build_checks(["tool_args"]).run(bad)
    assert not report.passed and "'city' is a required property" in report.failures[0].reason
    good = answer("", tool_calls=[ToolCall("get_weather", '{"city": "Paris"}')])
    good.tool_schemas = {"get_weather": schema}
    assert build_checks(["tool_args"]).run(good).passed


def test_min_tokens_repetition_and_logprob() -> None:
    short = answer("4", usage={"completion_tokens": 1})
    assert failed([("min_tokens", {"n": 3})], short) == ["min_tokens"]
    loop = answer("and again " * 40)
    assert failed(["repetition"], loop) == ["repetition"]
    assert failed(["repetition"], answer("a fine varied answer with many different words")) == []
    unsure = answer(logprobs=(-3.0, -2.5, -4.0))
    assert failed([("logprob", {"min_logprob": -1.0})], unsure) == ["logprob"]
    assert failed([("logprob", {"min_logprob": -1.0})], answer(logprobs=(-0.1, -0.2))) == []
    assert failed(["logprob"], answer()) == []  # no logprobs: neutral


def test_quality_is_the_lowest_score_and_failures_name_the_check() -> None:
    report = build_checks(["non_empty", "finish_reason"]).run(answer("", finish_reason="length"))
    assert report.quality == 0.0
    assert [f.check for f in report.failures] == ["non_empty", "finish_reason"]
    assert "length" in report.failures[1].reason


def test_custom_callable_check() -> None:
    def mentions_four(r: LLMResponse) -> float:
        return 1.0 if "4" in r.content else 0.0

    assert failed([mentions_four], answer("five")) == ["mentions_four"]


def test_stream_checker_fails_a_refusal_early() -> None:
    checker = build_checks().stream_checker()
    failure = None
    for piece in ["I'm ", "sorry, ", "but I ", "can't help ", "with that ", "at all."]:
        failure = failure or checker.feed(piece)
    assert failure is not None and failure.check == "refusal"


def test_stream_checker_lets_a_good_stream_through() -> None:
    checker = build_checks().stream_checker()
    assert all(checker.feed(p) is None for p in ["The ", "answer ", "is ", "4, ", "clearly."])
    assert checker.finish(answer(checker.text)).passed


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        (["non_empty", "nonempty"], ValueError, "unknown check 'nonempty'"),
        ([("json", {"schema": {"type": "nope"}})], Exception, "nope"),
        ([("json_schema", {})], ValueError, "needs a schema"),
        ([("tool_args", {"schemas": {"f": {"type": 12}}})], ValueError, "malformed JSON Schema"),
        ([("min_tokens", {"n": 0})], ValueError, "min_tokens n"),
        ([("logprob", {"min_logprob": 0.5})], ValueError, "min_logprob"),
        ([("repetition", {"min_score": 2})], ValueError, "min_score"),
        ([("finish_reason", {"bad": "length"})], TypeError, "single string"),
        ([("refusal", {"oops": 1})], TypeError, "bad arguments for check 'refusal'"),
        ([42], TypeError, "a check is a name"),
    ],
)
def test_bad_check_specs_fail_at_construction(spec: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        build_checks(spec)


def test_every_documented_name_builds() -> None:
    for name in CHECKS:
        kwargs = {"schema": {"type": "object"}} if name == "json_schema" else {}
        assert build_checks([(name, kwargs)]).checks[0].name in (name, "json")


def test_stream_checker_catches_a_loop_mid_stream() -> None:
    checker = build_checks(["repetition"]).stream_checker()
    failure = None
    for _ in range(200):
        failure = failure or checker.feed("and again ")
    assert failure is not None and failure.check == "repetition"


def test_stream_checker_state_is_per_stream() -> None:
    suite = build_checks(["refusal", "repetition"])
    long_good = [f"word{i} " for i in range(300)]
    first = suite.stream_checker()
    assert all(first.feed(p) is None for p in long_good)
    second = suite.stream_checker()  # a fresh stream is checked from its start again
    pieces = ["I'm ", "sorry, ", "but I ", "can't help ", "with that."]
    assert any(second.feed(p) is not None for p in pieces)


def test_refusal_is_only_looked_for_at_the_start_of_a_stream() -> None:
    checker = build_checks(["refusal"]).stream_checker()
    for i in range(100):
        assert checker.feed(f"fine text {i} ") is None
    assert checker.feed("I'm sorry, but I can't help with that.") is None  # quoted late: fine
