"""Properties: every scorer returns a score in [0, 1] and never raises on finite input of the
right shape (magnitudes bounded at 1e100 where squares or sums of the values are taken)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tripwise.quality import (
    CentroidSimilarity,
    DriftScore,
    TextQuality,
    embedding_health,
    entropy_score,
    margin,
    max_probability,
    min_of,
    non_empty,
    not_refused,
    not_truncated,
    repetition_score,
    valid_json,
    weighted_mean,
)

SCORERS = (max_probability, margin, entropy_score)
finite = st.floats(allow_nan=False, allow_infinity=False)
bounded = st.floats(min_value=-1e100, max_value=1e100, allow_nan=False)


def in_unit(x: float) -> bool:
    return isinstance(x, float) and 0.0 <= x <= 1.0


@st.composite
def prob_rows(draw, rows: int | None = None):
    k = draw(st.integers(1, 12))
    n = rows if rows is not None else draw(st.integers(1, 5))
    out = []
    for _ in range(n):
        raw = draw(
            st.lists(st.floats(0.0, 1e6), min_size=k, max_size=k).filter(lambda r: sum(r) > 0)
        )
        total = sum(raw)
        out.append([x / total for x in raw])
    return out


@settings(max_examples=200, deadline=None)
@given(prob_rows(), st.sampled_from(["mean", "min"]))
def test_probability_scores_stay_in_unit_interval(batch, reduce) -> None:
    for scorer in SCORERS:
        assert in_unit(scorer(batch, reduce=reduce))
        assert in_unit(scorer(batch[0]))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda k: st.lists(st.lists(finite, min_size=k, max_size=k), min_size=1, max_size=4)
    )
)
def test_any_finite_logits_score_in_unit_interval(batch) -> None:
    for scorer in SCORERS:
        assert in_unit(scorer(batch, logits=True))


@settings(max_examples=200, deadline=None)
@given(prob_rows(rows=1))
def test_margin_never_exceeds_max_probability(batch) -> None:
    assert margin(batch) <= max_probability(batch) + 1e-12


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda d: st.tuples(
            st.lists(st.lists(bounded, min_size=d, max_size=d), min_size=2, max_size=6).filter(
                lambda rows: any(any(x != 0 for x in r) for r in rows)
            ),
            st.lists(bounded, min_size=d, max_size=d),
            st.lists(st.lists(bounded, min_size=d, max_size=d), min_size=1, max_size=6),
        )
    )
)
def test_embedding_scores_stay_in_unit_interval(data) -> None:
    reference, vector, batch = data
    assert in_unit(embedding_health(vector))
    try:
        centroid = CentroidSimilarity(reference)
    except ValueError:
        pass  # references that cancel out or hold a zero row are rejected by design
    else:
        assert in_unit(centroid(vector))
    assert in_unit(DriftScore(reference)(batch))


texts = st.text(max_size=300)


@settings(max_examples=200, deadline=None)
@given(
    texts,
    st.sampled_from([None, "stop", "length", "content_filter"]),
    st.lists(st.floats(-50, 0), max_size=5),
)
def test_text_scores_stay_in_unit_interval(text, finish, logprobs) -> None:
    choice = {"message": {"content": text}, "finish_reason": finish}
    if logprobs:
        choice["logprobs"] = {"content": [{"logprob": lp} for lp in logprobs]}
    response = {"choices": [choice]}
    for scorer in (
        non_empty,
        not_truncated,
        not_refused,
        valid_json,
        repetition_score,
        TextQuality(),
        TextQuality(json=True),
    ):
        assert in_unit(scorer(response))
        assert in_unit(scorer(text))


@settings(max_examples=100, deadline=None)
@given(prob_rows(rows=1), st.floats(0.01, 100), st.floats(0.01, 100))
def test_compositions_stay_in_unit_interval(batch, w1, w2) -> None:
    assert in_unit(min_of(max_probability, margin, entropy_score)(batch))
    assert in_unit(weighted_mean([(max_probability, w1), (entropy_score, w2)])(batch))
