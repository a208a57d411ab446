"""Scorers against hand-computed values, and the errors users get for bad input."""

from __future__ import annotations

import math

import pytest

from tripwise.quality import (
    CentroidSimilarity,
    DriftScore,
    JsonScorer,
    RefusalScorer,
    SoftmaxScorer,
    TextQuality,
    drift_score,
    embedding_health,
    entropy_score,
    margin,
    max_probability,
    mean_token_probability,
    min_of,
    non_empty,
    not_refused,
    not_truncated,
    parse_completion,
    repetition_score,
    valid_json,
    weighted_mean,
)

try:  # NumPy is optional: the scorers' pure-Python path is what most tests exercise
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

needs_numpy = pytest.mark.skipif(np is None, reason="NumPy inputs need numpy (the ml extra)")


class FakeTensor:
    """Duck-typed stand-in for a torch tensor (tripwise never imports torch)."""

    def __init__(self, data: list) -> None:
        self.data = data
        self.calls: list[str] = []

    def detach(self) -> FakeTensor:
        self.calls.append("detach")
        return self

    def cpu(self) -> FakeTensor:
        self.calls.append("cpu")
        return self

    def tolist(self) -> list:
        return self.data


# ---------------------------------------------------------------- classification


def test_softmax_scores_match_hand_computed_values() -> None:
    probs = [0.7, 0.2, 0.1]
    assert max_probability(probs) == pytest.approx(0.7)
    assert margin(probs) == pytest.approx(0.5)
    h = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    assert entropy_score(probs) == pytest.approx(1 - h / math.log(3))
    assert entropy_score([0.5, 0.5]) == pytest.approx(0.0)
    assert entropy_score([1.0, 0.0, 0.0]) == pytest.approx(1.0)


def test_logits_flag_applies_softmax() -> None:
    # softmax([2, 1]) = [e/(e+1), 1/(e+1)]
    assert max_probability([2.0, 1.0], logits=True) == pytest.approx(math.e / (math.e + 1))
    assert margin([0.0, 0.0, 0.0], logits=True) == pytest.approx(0.0)
    assert max_probability([5.0, -math.inf], logits=True) == pytest.approx(1.0)


@needs_numpy
def test_batches_reduce_by_mean_or_min_and_accept_numpy_and_tensors() -> None:
    batch = [[0.9, 0.1], [0.6, 0.4]]
    assert max_probability(batch) == pytest.approx(0.75)
    assert max_probability(np.array(batch), reduce="min") == pytest.approx(0.6)
    t = FakeTensor(batch)
    assert margin(t) == pytest.approx((0.8 + 0.2) / 2)
    assert t.calls == ["detach", "cpu"]
    assert max_probability(np.array([0.25, 0.75], dtype=np.float32)) == pytest.approx(0.75)


def test_single_class_is_certain() -> None:
    assert margin([1.0]) == 1.0
    assert entropy_score([1.0]) == 1.0


@pytest.mark.parametrize(
    ("values", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, "empty"),
        ([[]], {}, ValueError, "empty"),
        ([0.5, float("nan"), 0.5], {}, ValueError, "non-finite"),
        ([1.0, float("nan")], {"logits": True}, ValueError, "non-finite"),
        ([[0.5, 0.5], [1.0]], {}, ValueError, "different lengths"),
        ([0.5, 0.7], {}, ValueError, "sums to 1.2.*logits=True"),
        ([1.5, -0.5], {}, ValueError, "negative"),
        ("0.5", {}, TypeError, "sequence of numbers"),
        (0.5, {}, TypeError, "sequence of numbers"),
        ([0.5, "x"], {}, TypeError, "str"),
        ([-math.inf, -math.inf], {"logits": True}, ValueError, "all -inf"),
        ([0.5, 0.5], {"reduce": "max"}, ValueError, "reduce"),
    ],
)
def test_bad_probabilities_raise_clear_errors(values, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        max_probability(values, **kwargs)


def test_softmax_scorer_extracts_and_validates() -> None:
    scorer = SoftmaxScorer("margin", extract=lambda r: r["probs"])
    assert scorer({"probs": [0.6, 0.3, 0.1]}) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="kind must be one of"):
        SoftmaxScorer("confidence")
    with pytest.raises(TypeError, match="extract must be callable"):
        SoftmaxScorer(extract="probs")  # type: ignore[arg-type]


# ---------------------------------------------------------------- embeddings


def test_embedding_health_flags_nan_zero_and_out_of_range_norms() -> None:
    assert embedding_health([0.6, 0.8]) == 1.0
    assert embedding_health([0.6, float("nan")]) == 0.0
    assert embedding_health([float("inf"), 0.0]) == 0.0
    assert embedding_health([0.0, 0.0]) == 0.0
    assert embedding_health([3.0, 4.0], max_norm=1.01) == 0.0
    assert embedding_health([0.3, 0.4], min_norm=0.99) == 0.0
    assert embedding_health((0.6, 0.8), min_norm=0.99, max_norm=1.01) == 1.0
    with pytest.raises(ValueError, match="max_norm"):
        embedding_health([1.0], min_norm=2.0, max_norm=1.0)
    with pytest.raises(ValueError, match="empty"):
        embedding_health([])


def test_centroid_similarity_is_cosine_to_the_normalised_mean() -> None:
    scorer = CentroidSimilarity([[1.0, 0.0], [0.0, 2.0]])  # unit directions average to 45°
    assert scorer([1.0, 1.0]) == pytest.approx(1.0)
    assert scorer([1.0, 0.0]) == pytest.approx(math.sqrt(0.5))
    assert scorer([-1.0, -1.0]) == 0.0  # pointing away scores 0
    assert scorer([float("nan"), 1.0]) == 0.0
    assert scorer([0.0, 0.0]) == 0.0
    with pytest.raises(ValueError, match="3 dimensions, the reference centroid has 2"):
        scorer([1.0, 0.0, 0.0])


def test_centroid_similarity_rejects_bad_reference_samples() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        CentroidSimilarity()([1.0])
    with pytest.raises(ValueError, match="non-finite"):
        CentroidSimilarity([[1.0, float("nan")]])
    with pytest.raises(ValueError, match="all-zero"):
        CentroidSimilarity([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="cancel out"):
        CentroidSimilarity([[1.0, 0.0], [-1.0, 0.0]])
    with pytest.raises(ValueError, match="different lengths"):
        CentroidSimilarity([[1.0, 0.0], [1.0]])


def test_drift_score_hand_computed() -> None:
    reference = [[0.0], [2.0]]  # mean 1, population std 1
    # batch mean 3: z = 2, z^2 = 4, noise = 1/2 + 1/2 = 1 -> d = sqrt(3)
    assert drift_score([[2.0], [4.0]], reference) == pytest.approx(math.exp(-math.sqrt(3)))
    # a batch matching the reference mean scores 1
    assert drift_score([[0.0], [2.0]], reference) == pytest.approx(1.0)
    # flat 1-D batches are batches of scalars
    assert drift_score([2.0, 4.0], [0.0, 2.0]) == pytest.approx(math.exp(-math.sqrt(3)))


@needs_numpy
def test_drift_score_separates_shifted_from_same_distribution_batches() -> None:
    rng = np.random.default_rng(7)
    scorer = DriftScore(rng.normal(0.0, 1.0, size=(2000, 16)))
    same = scorer(rng.normal(0.0, 1.0, size=(200, 16)))
    shifted = scorer(rng.normal(0.5, 1.0, size=(200, 16)))
    assert same > 0.85
    assert shifted == pytest.approx(math.exp(-0.5), abs=0.05)
    assert scorer(np.full((4, 16), np.nan)) == 0.0
    with pytest.raises(ValueError, match="8 values, the reference has 16"):
        scorer(np.zeros((4, 8)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        DriftScore([[1.0, 2.0]])


# ---------------------------------------------------------------- text / LLM


def chat(content, finish="stop", logprobs=None):
    choice = {"index": 0, "message": {"role": "assistant", "content": content}}
    choice["finish_reason"] = finish
    if logprobs is not None:
        choice["logprobs"] = {"content": [{"token": "t", "logprob": lp} for lp in logprobs]}
    return {"id": "x", "object": "chat.completion", "choices": [choice]}


class SdkObject:
    def __init__(self, data: dict) -> None:
        self.data = data

    def model_dump(self) -> dict:
        return self.data


def test_parse_completion_understands_response_shapes() -> None:
    assert parse_completion("hi").text == "hi"
    c = parse_completion(chat("ok", "length", [-0.5, -1.5]))
    assert (c.text, c.finish_reason, c.logprobs) == ("ok", "length", (-0.5, -1.5))
    legacy = {
        "choices": [
            {"text": "yo", "finish_reason": "stop", "logprobs": {"token_logprobs": [None, -1.0]}}
        ]
    }
    assert parse_completion(legacy).logprobs == (-1.0,)
    assert parse_completion(SdkObject(chat("sdk"))).text == "sdk"
    assert (
        parse_completion({"message": {"content": "ollama"}, "done_reason": "length"}).finish_reason
        == "length"
    )
    anth = {
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        "stop_reason": "max_tokens",
    }
    assert parse_completion(anth).text == "ab"
    assert not_truncated(anth) == 0.0
    assert parse_completion(chat(None)).text == ""
    with pytest.raises(ValueError, match="empty 'choices'"):
        parse_completion({"choices": []})
    with pytest.raises(ValueError, match="keys were"):
        parse_completion({"foo": 1})
    with pytest.raises(TypeError, match="must be a string"):
        parse_completion(42)


def test_empty_truncated_and_refusal_checks() -> None:
    assert non_empty("  \n\t ") == 0.0
    assert non_empty(chat("")) == 0.0
    assert non_empty("fine") == 1.0
    assert not_truncated(chat("partial answ", "length")) == 0.0
    assert not_truncated(chat("done", "stop")) == 1.0
    assert not_truncated("plain strings carry no finish reason") == 1.0
    assert not_refused("I\u2019m sorry, but I can\u2019t help with that.") == 0.0
    assert not_refused("As an AI language model, I cannot") == 0.0
    assert not_refused("Paris is the capital of France.") == 1.0
    custom = RefusalScorer(["policy forbids"], within=None)
    assert custom("Sadly our POLICY  forbids this") == 0.0
    assert custom("I cannot help with that") == 1.0
    late = RefusalScorer(within=10)
    assert late("Here is the full story. At the end he said: I cannot provide more.") == 1.0
    with pytest.raises(TypeError, match="single string"):
        RefusalScorer("sorry")
    with pytest.raises(ValueError, match="non-blank"):
        RefusalScorer(["", "x"])


def test_json_scorer_parses_and_validates_schema() -> None:
    assert valid_json('{"a": 1}') == 1.0
    assert valid_json('```json\n{"a": 1}\n```') == 1.0
    assert valid_json('{"a": 1') == 0.0
    assert valid_json("Sure! Here it is: {}") == 0.0
    pytest.importorskip("jsonschema")
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    scorer = JsonScorer(schema)
    assert scorer(chat('{"a": 3}')) == 1.0
    assert scorer(chat('{"a": "three"}')) == 0.0
    assert scorer(chat('{"b": 3}')) == 0.0
    with pytest.raises(Exception, match=r"not valid under any of the given schemas|is not valid"):
        JsonScorer({"type": "no-such-type"})


def test_repetition_score() -> None:
    assert repetition_score("the cat sat on the mat") == 1.0
    # 8 words, 6 trigrams, only 1 distinct -> (1 - 1) / (6 - 1) = 0
    assert repetition_score("go go go go go go go go") == 0.0
    # "a b a b a b": trigrams aba, bab, aba, bab -> 2 distinct of 4 -> (2-1)/(4-1)
    assert repetition_score("a b a b a b") == pytest.approx(1 / 3)
    assert repetition_score("short") == 1.0
    with pytest.raises(ValueError, match="n must be"):
        repetition_score("x", n=0)


def test_mean_token_probability() -> None:
    assert mean_token_probability(chat("x", logprobs=[-0.2, -0.4])) == pytest.approx(math.exp(-0.3))
    with pytest.raises(ValueError, match="no token logprobs"):
        mean_token_probability("plain")
    # malformed logprobs are a broken answer, not a setup mistake: score 0
    assert mean_token_probability(chat("x", logprobs=[0.5])) == 0.0
    assert mean_token_probability(chat("x", logprobs=[float("nan")])) == 0.0
    assert mean_token_probability(chat("x", logprobs=[float("-inf")])) == 0.0


def test_text_quality_takes_the_worst_applicable_check() -> None:
    tq = TextQuality()
    assert tq(chat("A fine answer.", logprobs=[-0.1])) == pytest.approx(math.exp(-0.1))
    assert tq(chat("A fine answer.")) == 1.0
    assert tq(chat("   ")) == 0.0
    assert tq(chat("cut off mid", "length")) == 0.0
    assert tq(chat("I cannot help with that request.")) == 0.0
    assert TextQuality(json=True)(chat("not json")) == 0.0
    assert TextQuality(json=True)(chat("[1, 2]")) == 1.0


# ---------------------------------------------------------------- composition


def test_min_of_and_weighted_mean() -> None:
    both = min_of(max_probability, margin)
    assert both([0.7, 0.2, 0.1]) == pytest.approx(0.5)
    wm = weighted_mean({max_probability: 3, margin: 1})
    assert wm([0.7, 0.2, 0.1]) == pytest.approx(0.75 * 0.7 + 0.25 * 0.5)
    assert weighted_mean([(non_empty, 1.0), (valid_json, 1.0)])("hello") == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least one scorer"):
        min_of()
    with pytest.raises(TypeError, match="callable"):
        min_of(0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"weight of .* must be a finite number > 0"):
        weighted_mean({margin: 0})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        min_of(lambda r: 1.5)("x")
