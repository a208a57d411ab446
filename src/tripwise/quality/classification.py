"""Scorers for classifier outputs: how sure is the model of its answer?

A healthy classifier is usually confident on in-distribution inputs. Corrupted, shifted or
out-of-distribution inputs push its probabilities toward each other, which these scorers turn
into a falling score. Each accepts one probability vector or a batch (2-D, one row per input),
as a list, NumPy array or torch tensor; pass ``logits=True`` for raw pre-softmax scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tripwise.quality._inputs import check_reduce, clip01, reduce_scores, to_rows

PROB_TOLERANCE = 1e-3
"""How far a probability row may sum from 1 before it is rejected (float32 softmax rounding)."""


def softmax(logits: list[float]) -> list[float]:
    """Numerically stable softmax of one row (``-inf`` logits get probability 0)."""
    top = max(logits)
    if top == -math.inf:
        raise ValueError("logits are all -inf: no class has any probability")
    exps = [math.exp(v - top) for v in logits]
    total = math.fsum(exps)
    return [e / total for e in exps]


def _prob_rows(values: Any, logits: bool) -> list[list[float]]:
    if logits:
        return [softmax(row) for row in to_rows(values, "logits", allow_neg_inf=True)]
    rows = to_rows(values, "probabilities")
    for i, row in enumerate(rows):
        if min(row) < 0.0:
            raise ValueError(
                f"probabilities row {i} has a negative value ({min(row)!r}); "
                "pass logits=True for raw scores"
            )
        total = math.fsum(row)
        if abs(total - 1.0) > PROB_TOLERANCE:
            raise ValueError(
                f"probabilities row {i} sums to {total:.6g}, not 1; pass logits=True for raw "
                "scores, or normalise them"
            )
    return rows


def _row_max(row: list[float]) -> float:
    return max(row)


def _row_margin(row: list[float]) -> float:
    if len(row) == 1:
        return 1.0
    first = second = -math.inf
    for p in row:
        if p > first:
            first, second = p, first
        elif p > second:
            second = p
    return first - second


def _row_entropy_score(row: list[float]) -> float:
    k = len(row)
    if k == 1:
        return 1.0
    total = math.fsum(row)
    entropy = -math.fsum((p / total) * math.log(p / total) for p in row if p > 0.0)
    return 1.0 - entropy / math.log(k)


def _score(
    values: Any, logits: bool, reduce: str, per_row: Callable[[list[float]], float]
) -> float:
    check_reduce(reduce)
    rows = _prob_rows(values, logits)
    return clip01(reduce_scores([per_row(r) for r in rows], reduce))


def max_probability(values: Any, *, logits: bool = False, reduce: str = "mean") -> float:
    """The top class probability: 1.0 = certain, 1/K = no idea among K classes.

    Detects inputs the model cannot place (noise, out-of-distribution data). For a batch,
    ``reduce`` picks the ``"mean"`` or the ``"min"`` over rows.
    """
    return _score(values, logits, reduce, _row_max)


def margin(values: Any, *, logits: bool = False, reduce: str = "mean") -> float:
    """Top-1 minus top-2 probability: low when the model hesitates between two classes,
    which a max probability alone can hide (0.48 vs 0.47). A single class scores 1.0."""
    return _score(values, logits, reduce, _row_margin)


def entropy_score(values: Any, *, logits: bool = False, reduce: str = "mean") -> float:
    """1 minus the normalised entropy: 1.0 for a one-hot answer, 0.0 for a uniform one.

    Looks at the whole distribution, so it also falls when probability mass spreads over
    many classes while the top class stays put. A single class scores 1.0.
    """
    return _score(values, logits, reduce, _row_entropy_score)


_KINDS: dict[str, Callable[..., float]] = {
    "max_probability": max_probability,
    "margin": margin,
    "entropy": entropy_score,
}


class SoftmaxScorer:
    """A ``score_fn`` for classifier results: picks the probabilities out of the result with
    ``extract`` (the result itself by default) and scores them with ``kind``.

    >>> scorer = SoftmaxScorer("margin", extract=lambda r: r["probs"])
    >>> breaker = CircuitBreaker(quality_drift(), score_fn=scorer)
    """

    def __init__(
        self,
        kind: str = "max_probability",
        *,
        logits: bool = False,
        reduce: str = "mean",
        extract: Callable[[Any], Any] | None = None,
    ) -> None:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
        if extract is not None and not callable(extract):
            raise TypeError(f"extract must be callable, got {extract!r}")
        self.kind = kind
        self.logits = bool(logits)
        self.reduce = check_reduce(reduce)
        self.extract = extract
        self._fn = _KINDS[kind]

    def __call__(self, result: Any) -> float:
        values = self.extract(result) if self.extract is not None else result
        return self._fn(values, logits=self.logits, reduce=self.reduce)

    def __repr__(self) -> str:
        extra = ", logits=True" if self.logits else ""
        return f"SoftmaxScorer({self.kind!r}{extra}, reduce={self.reduce!r})"
