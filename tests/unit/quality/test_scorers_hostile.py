"""Scorers never raise on what a model returns: hostile and malformed outputs score 0.0 (or a
valid score), with a reason where the scorer explains itself."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwise import CircuitBreaker, FakeClock
from tripwise.quality import (
    DEFAULT_REFUSALS,
    JsonScorer,
    RefusalScorer,
    StandardizedDistance,
    TextQuality,
    guarded_score,
    mean_token_probability,
    non_empty,
    not_refused,
    not_truncated,
    quality_drift,
    repetition_score,
    valid_json,
)

TEXT_SCORERS = (
    non_empty,
    not_truncated,
    not_refused,
    valid_json,
    repetition_score,
    TextQuality(),
    TextQuality(json=True),
)

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "choices",
        "message",
        "content",
        "text",
        "delta",
        "finish_reason",
        "logprobs",
        "token_logprobs",
        "logprob",
        "response",
        "done_reason",
        "stop_reason",
        "role",
    ]
)
response_like = st.recursive(
    json_like,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)


def score_ok(value: float) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


@settings(max_examples=300, deadline=None)
@given(response_like)
def test_text_scorers_never_raise_on_response_shaped_garbage(response) -> None:
    for scorer in TEXT_SCORERS:
        assert score_ok(scorer(response))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5000), st.sampled_from(["[", '{"a":', "[{", '{"a":[']))
def test_deeply_nested_json_scores_zero(depth: int, opener: str) -> None:
    text = opener * depth
    assert valid_json(text) == 0.0
    assert TextQuality(json=True)(text) == 0.0


def test_deep_but_complete_json_nesting_is_invalid_or_valid_never_an_error() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    score, why = valid_json.explain(deep)
    assert score == 0.0 and "nested too deeply" in why
    assert valid_json("[" * 50 + "]" * 50) == 1.0


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=0, max_size=50), st.integers(10_000, 300_000))
def test_huge_strings_are_scored(chunk: str, size: int) -> None:
    text = (chunk or "x") * (size // max(1, len(chunk or "x")))
    for scorer in TEXT_SCORERS:
        assert score_ok(scorer(text))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats() | st.none() | st.text(max_size=3) | st.booleans(), max_size=8))
def test_nan_and_junk_logprobs_score_zero_or_a_probability(values) -> None:
    response = {
        "choices": [
            {
                "message": {"content": "An answer."},
                "finish_reason": "stop",
                "logprobs": {"content": [{"logprob": v} for v in values]},
            }
        ]
    }
    assert score_ok(TextQuality()(response))
    try:
        score = mean_token_probability(response)
    except ValueError as exc:  # no usable logprobs at all: a setup mistake, said plainly
        assert "no token logprobs" in str(exc)
    else:
        assert score_ok(score)
        if any(isinstance(v, float) and math.isnan(v) for v in values):
            assert score == 0.0


@pytest.mark.parametrize(
    "response",
    [
        {"choices": []},
        {"choices": [None]},
        {"choices": [{"message": {"content": 42}}]},
        {"choices": [{"message": {"content": [{"type": "text", "text": 5}]}}]},
        {"choices": [{"message": {}, "finish_reason": ["length"]}]},
        {"id": "x"},
        42,
        None,
        b"bytes",
        [1, 2, 3],
    ],
)
def test_malformed_responses_score_zero_with_a_reason(response) -> None:
    score, why = TextQuality().explain(response)
    assert score == 0.0
    assert why.startswith(("malformed response", "empty answer"))
    assert non_empty(response) == 0.0


def test_reasons_name_the_failed_check() -> None:
    tq = TextQuality(json=True)
    assert tq.explain("") == (0.0, "empty answer")
    assert tq.explain({"choices": [{"text": "{", "finish_reason": "length"}]})[1].startswith(
        "truncated"
    )
    assert tq.explain("I cannot comply with this request.") == (0.0, "refusal")
    assert tq.explain("not json")[1].startswith("invalid JSON")
    assert tq.explain('{"answer": 1}') == (1.0, "ok")


@pytest.mark.parametrize(
    "text",
    [
        "I apologize, but I'm not able to help with this request.",
        "I cannot comply with this request.",
        "I\u2019m sorry, but I can\u2019t help with that.",
        "Sorry, I can't help with that.",
        "I must decline to answer.",
        "I'm not able to assist with that request.",
        "As an AI, I cannot share that.",
        "I won't comply with that.",
    ],
)
def test_default_refusals_cover_common_phrasings(text: str) -> None:
    assert not_refused(text) == 0.0


def test_answers_are_not_refusals_and_the_list_is_configurable() -> None:
    assert not_refused("Sure! Here is the summary you asked for.") == 1.0
    assert not_refused("The cannot-fail path is covered in chapter 2.") == 1.0
    custom = RefusalScorer([*DEFAULT_REFUSALS, "computer says no"])
    assert custom("Computer says no.") == 0.0
    assert RefusalScorer(["nope"])("I cannot comply with this request.") == 1.0


def test_json_schema_scorer_survives_deep_nesting() -> None:
    pytest.importorskip("jsonschema")
    scorer = JsonScorer({"type": "array"})
    assert scorer("[" * 3000 + "]" * 3000) == 0.0


def test_json_depth_limit_is_the_same_on_every_python() -> None:
    # 3.11's parser accepts 600 levels and 3.13's accepts 3,000: the limit is ours, not theirs
    from tripwise.quality.text import MAX_JSON_DEPTH, JsonScorer

    scorer = JsonScorer()
    assert scorer("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) == 1.0
    deeper = MAX_JSON_DEPTH + 100
    assert scorer.explain("[" * deeper + "]" * deeper) == (0.0, "JSON nested too deeply to parse")
    assert scorer('{"a": ' * 50 + "1" + "}" * 50) == 1.0


# ---------------------------------------------------------------- embeddings


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats() | st.integers(-10, 10), max_size=12) | json_like)
def test_standardized_distance_never_raises_on_the_embedding(embedding) -> None:
    ref = [[math.sin(i * 0.7 + j) for j in range(8)] for i in range(60)]
    assert score_ok(StandardizedDistance(ref)(embedding))


def test_standardized_distance_works_on_mean_centred_embeddings() -> None:
    import random

    rng = random.Random(1)
    ref = [[rng.gauss(0.0, 1.0) for _ in range(16)] for _ in range(800)]
    scorer = StandardizedDistance(ref)
    live = [scorer([rng.gauss(0.0, 1.0) for _ in range(16)]) for _ in range(400)]
    assert 0.42 < sum(live) / len(live) < 0.58  # calibrated: uniform on healthy traffic
    assert sum(s == 0.0 for s in live) == 0  # no pile of zeros (CentroidSimilarity's defect)
    noisy = [scorer([rng.gauss(0.0, 2.0) for _ in range(16)]) for _ in range(100)]
    assert sum(noisy) / len(noisy) < 0.05
    assert scorer([0.0] * 16) < 0.01  # an all-zero vector is too close to the centre
    assert scorer([0.0] * 15) == 0.0  # another model's dimension
    assert StandardizedDistance(ref, two_sided=False)([0.0] * 16) > 0.9
    with pytest.raises(ValueError, match="at least 20"):
        StandardizedDistance(ref[:10])
    with pytest.raises(RuntimeError, match="not fitted"):
        StandardizedDistance()([0.0])


# ---------------------------------------------------------------- user score_fn that raises


def _breaker(score_fn) -> CircuitBreaker:
    return CircuitBreaker(
        quality_drift(mean=0.9, std=0.05),
        score_fn=score_fn,
        fallback="fallback",
        clock=FakeClock(),
        registry=None,
    )


def broken_parser(result: str) -> float:
    return json.loads(result)["confidence"]


def test_a_raising_score_fn_is_neutral_by_default_and_bad_when_asked() -> None:
    neutral = _breaker(broken_parser)
    bad = _breaker(guarded_score(broken_parser, on_error="bad"))
    for _ in range(200):
        neutral.call(lambda: "{truncated")
        bad.call(lambda: "{truncated")
    assert neutral.state.value == "closed" and neutral.stats().quality_count == 0
    assert bad.state.value == "open"


def test_guarded_score_options() -> None:
    assert guarded_score(broken_parser)("{") == 0.0
    assert guarded_score(broken_parser, on_error=0.25)("{") == 0.25
    assert guarded_score(broken_parser)('{"confidence": 0.75}') == 0.75
    with pytest.raises(json.JSONDecodeError):
        guarded_score(broken_parser, on_error="neutral")("{")
    assert guarded_score(lambda r: 2.0)("x") == 0.0  # out of range is a failure too
    with pytest.raises(ValueError, match="on_error must be one of"):
        guarded_score(broken_parser, on_error="ignore")
    with pytest.raises(ValueError, match="on_error"):
        guarded_score(broken_parser, on_error=1.5)
    with pytest.raises(TypeError, match="callable"):
        guarded_score(42)  # type: ignore[arg-type]


def test_centroid_similarity_warns_on_mean_centred_references(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import random

    from tripwise.quality import CentroidSimilarity

    rng = random.Random(2)
    centred = [[rng.gauss(0.0, 1.0) for _ in range(8)] for _ in range(200)]
    with caplog.at_level("WARNING", logger="tripwise.quality"):
        CentroidSimilarity(centred)
    assert "StandardizedDistance" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tripwise.quality"):
        CentroidSimilarity([[1.0 + 0.1 * rng.random(), 0.5, 0.2] for _ in range(50)])
    assert not caplog.records
