"""Combining scorers into one score per call."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tripwise.core.records import check_score
from tripwise.quality._inputs import clip01

Scorer = Callable[[Any], float]
logger = logging.getLogger("tripwise.quality")


def _check_scorers(scorers: Iterable[Any], what: str) -> tuple[Scorer, ...]:
    out = tuple(scorers)
    if not out:
        raise ValueError(f"{what} needs at least one scorer")
    for s in out:
        if not callable(s):
            raise TypeError(f"{what}: every scorer must be callable, got {s!r}")
    return out


class MinOf:
    """The lowest score of its scorers: the call is as good as its worst aspect.

    Use it when any one failed check (empty answer, invalid JSON) should sink the score.
    """

    def __init__(self, *scorers: Scorer) -> None:
        self.scorers = _check_scorers(scorers, "min_of()")

    def __call__(self, result: Any) -> float:
        return min(check_score(s(result), f"score of {s!r}") for s in self.scorers)

    def __repr__(self) -> str:
        return f"min_of({', '.join(repr(s) for s in self.scorers)})"


class WeightedMean:
    """The weighted mean of its scorers' scores (weights are normalised to sum to 1).

    Use it when aspects trade off (a slightly unsure but well-formed answer is still fine).
    """

    def __init__(self, weighted: Mapping[Scorer, float] | Iterable[tuple[Scorer, float]]) -> None:
        pairs = list(weighted.items()) if isinstance(weighted, Mapping) else list(weighted)
        scorers = _check_scorers((p[0] for p in pairs), "weighted_mean()")
        weights = []
        for s, w in pairs:
            if (
                isinstance(w, bool)
                or not isinstance(w, (int, float))
                or not (math.isfinite(w) and w > 0)
            ):
                raise ValueError(
                    f"weighted_mean(): weight of {s!r} must be a finite number > 0, got {w!r}"
                )
            weights.append(float(w))
        total = math.fsum(weights)
        self.scorers = scorers
        self.weights = tuple(w / total for w in weights)

    def __call__(self, result: Any) -> float:
        return clip01(
            math.fsum(
                w * check_score(s(result), f"score of {s!r}")
                for s, w in zip(self.scorers, self.weights, strict=True)
            )
        )

    def __repr__(self) -> str:
        parts = ", ".join(
            f"({s!r}, {w:.3g})" for s, w in zip(self.scorers, self.weights, strict=True)
        )
        return f"weighted_mean([{parts}])"


def min_of(*scorers: Scorer) -> MinOf:
    """Combine scorers by taking the minimum score."""
    return MinOf(*scorers)


def weighted_mean(
    weighted: Mapping[Scorer, float] | Iterable[tuple[Scorer, float]],
) -> WeightedMean:
    """Combine scorers by a weighted mean: ``weighted_mean({max_probability: 2, margin: 1})``."""
    return WeightedMean(weighted)


_ON_ERROR = ("neutral", "bad")


class GuardedScore:
    """A ``score_fn`` whose failures are counted the way you choose.

    A breaker counts a call whose ``score_fn`` raised as unscored (neutral) and logs the
    exception: right when the scorer has a bug, wrong when the scorer raises *because* the
    output is broken (a parser of your own on truncated output). ``on_error="bad"`` scores
    such a call 0.0 instead (logged at debug level with the reason); ``"neutral"`` re-raises,
    which keeps the breaker's behaviour. A number in [0, 1] is used as the score.
    """

    def __init__(self, scorer: Scorer, on_error: str | float = "bad") -> None:
        if not callable(scorer):
            raise TypeError(f"scorer must be callable, got {scorer!r}")
        if isinstance(on_error, str):
            if on_error not in _ON_ERROR:
                raise ValueError(
                    f"on_error must be one of {_ON_ERROR} or a score in [0, 1], got {on_error!r}"
                )
            self.fallback: float | None = 0.0 if on_error == "bad" else None
        else:
            self.fallback = check_score(on_error, "on_error")
        self.scorer = scorer
        self.on_error = on_error

    def __call__(self, result: Any) -> float:
        if self.fallback is None:
            return self.scorer(result)
        try:
            return check_score(self.scorer(result), f"score of {self.scorer!r}")
        except Exception as exc:
            logger.debug(
                "scorer %r failed (%s: %s); scored %s",
                self.scorer,
                type(exc).__name__,
                exc,
                self.fallback,
            )
            return self.fallback

    def __repr__(self) -> str:
        return f"guarded_score({self.scorer!r}, on_error={self.on_error!r})"


def guarded_score(scorer: Scorer, on_error: str | float = "bad") -> GuardedScore:
    """Wrap a ``score_fn`` so that it raising scores the call as bad (0.0), as a given
    score, or (``"neutral"``) leaves it unscored, as a bare ``score_fn`` would."""
    return GuardedScore(scorer, on_error)
