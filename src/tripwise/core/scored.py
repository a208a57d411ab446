"""Quality conditions: fed by quality scores alone, on a declared score range.

:class:`ScoredCondition` is the shape every quality condition shares (the ones here and those
of :mod:`tripwise.quality`): unscored calls are neutral, late scores count like any other, and
a score outside the condition's ``score_range`` is clamped into it with one WARNING per
condition, never raised into the guarded call.
"""

from __future__ import annotations

import logging
from typing import Any

from tripwise.core.condition_base import (
    DEFAULT_WINDOW,
    Condition,
    QuickStep,
    ScoreFn,
    WindowRule,
)
from tripwise.core.histogram import VALUE_LIMIT, exact_ratio
from tripwise.core.validation import (
    check_exceedable_rate,
    check_score_fn,
    is_finite,
    is_real,
    shown,
)
from tripwise.core.windows import ValueWindow

logger = logging.getLogger("tripwise.conditions")

SCORE_TOLERANCE = 1e-9
"""Means of quality scores are compared with this tolerance (relative to the width of the
score range): 0.1 and 0.7 average 0.4 even though their float sum is 0.7999999999999999."""

DEFAULT_SCORE_RANGE = (0.0, 1.0)

_exact = exact_ratio


def _check_score_range(score_range: Any) -> tuple[float, float]:
    try:
        lo, hi = score_range
    except (TypeError, ValueError):
        raise TypeError(
            f"score_range must be a pair (low, high) such as (0, 100), got {shown(score_range)}"
        ) from None
    for end in (lo, hi):
        if not is_real(end):
            raise TypeError(f"score_range must hold two numbers, got {shown(score_range)}")
        if not (is_finite(end) and abs(float(end)) <= VALUE_LIMIT):
            raise ValueError(f"score_range must hold two finite numbers, got {shown(score_range)}")
    if not lo < hi:
        raise ValueError(
            f"score_range must be (low, high) with low < high, got {shown(score_range)}"
        )
    return float(lo), float(hi)


class ScoredCondition(Condition):
    """A condition fed by quality scores alone, on a declared ``score_range``.

    Unscored calls are neutral, so plain successes need not be reported (``lean``), and a
    score that arrives after its call (``record_late_quality``) counts like any other.
    Subclasses implement ``_score(quality, now)``: take one score, say whether to trip.

    Scores outside ``score_range`` (default ``(0.0, 1.0)``) are clamped into it: a cosine
    similarity of -0.2 counts as 0.0 for a [0, 1] condition. The first such score logs a WARNING
    (once per condition) and ``clamped_scores`` counts them; a NaN score counts as no score.
    Nothing is raised into the guarded call. Declare the scale your scores use
    (``score_range=(0, 100)`` for ratings, ``(-1, 1)`` for cosine similarity).
    """

    uses_quality = True
    lean = True
    score_range: tuple[float, float] = DEFAULT_SCORE_RANGE
    clamped_scores = 0
    # The bounds are instance attributes only (set in __new__): an instance attribute that
    # shadows a class attribute is not specialized by CPython 3.11, and observe reads both.
    _lo: float
    _hi: float

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        self._lo, self._hi = DEFAULT_SCORE_RANGE
        return self

    def _unit_scores_only(self, score_range: Any) -> None:
        """For conditions whose statistics and defaults assume scores in [0, 1] (those of
        :mod:`tripwise.quality`): any other ``score_range`` is refused, saying how to map."""
        if _check_score_range(score_range) != DEFAULT_SCORE_RANGE:
            raise ValueError(
                f"{type(self).__name__} works on scores in [0, 1] (its bounds and defaults are "
                f"calibrated there), got score_range={shown(score_range)}: map your scores into "
                "[0, 1] in the score_fn or before report_quality (math.exp(logprob) for a "
                "log-probability, rating / 100, (cosine + 1) / 2), or use quality_below / "
                "low_quality_rate_above, which take any score_range"
            )

    def _set_score_range(self, score_range: Any) -> None:
        self.score_range = _check_score_range(score_range)
        self._lo, self._hi = self.score_range

    def _check_bar(self, name: str, value: Any) -> float:
        """A score threshold a "below" test can fire on: in (low, high] of the score range."""
        lo, hi = self.score_range
        if not is_real(value):
            raise TypeError(f"{name} must be a number in ({lo:g}, {hi:g}], got {shown(value)}")
        if not is_finite(value) or not lo <= float(value) <= hi:  # (NaN too)
            raise ValueError(
                f"{name} must be in the score range ({lo:g}, {hi:g}], got {shown(value)} "
                "(pass score_range=(low, high) for another scale)"
            )
        if value == lo:
            raise ValueError(
                f"{name}={value!r} can never trip: no score is below the bottom of the score "
                f"range ({lo:g}, {hi:g}]"
            )
        return float(value)

    def _range_repr(self) -> str:
        if self.score_range == DEFAULT_SCORE_RANGE:
            return ""
        lo, hi = self.score_range
        return f", score_range=({lo!r}, {hi!r})"

    def _in_range(self, quality: float) -> float | None:
        """``quality`` (outside the score range) as the condition counts it; None for NaN."""
        if quality != quality:
            clamped: float | None = None
        else:
            clamped = self._lo if quality < self._lo else self._hi
        self.clamped_scores += 1
        if self.clamped_scores == 1:
            logger.warning(
                "%r: quality score %r is outside its score range [%g, %g]; it counts as %s. "
                "Pass score_range=(low, high) if your scores use another scale (logged once "
                "per condition; see clamped_scores)",
                self,
                quality,
                self._lo,
                self._hi,
                "no score" if clamped is None else repr(clamped),
            )
        return clamped

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        if quality is None:
            return False
        if not quality >= self._lo or not quality <= self._hi:  # (NaN too)
            quality = self._in_range(quality)
            if quality is None:
                return False
        return self._score(quality, now)

    def observe_late(self, quality: float, now: float) -> bool:
        return self.observe(None, 0.0, quality, now, 0)

    def quick_step(self) -> QuickStep | None:
        """``_score`` for scores within the range (``observe`` minus its checks), unless a
        subclass replaced ``observe`` itself."""
        if type(self).observe is not ScoredCondition.observe:
            return None
        return self._score, self._lo, self._hi

    def _score(self, quality: float, now: float) -> bool:
        raise NotImplementedError


class QualityBelow(ScoredCondition, WindowRule):
    """Trip when the rolling mean quality of the last ``window`` scored calls (default 20) is
    below ``threshold``, or of the last ``window_seconds`` once ``min_calls`` scores are in.

    Calls without a score are neutral: they neither enter the window nor count toward it.
    ``threshold`` must lie in ``(low, high]`` of ``score_range`` (default ``(0.0, 1.0)``).
    """

    def __init__(
        self,
        threshold: float,
        window: int | None = None,
        score_fn: ScoreFn | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
        score_range: tuple[float, float] = DEFAULT_SCORE_RANGE,
    ) -> None:
        self._set_score_range(score_range)
        self.threshold = self._check_bar("threshold", threshold)
        self._bar = self.threshold - SCORE_TOLERANCE * (self._hi - self._lo)
        self.score_fn = check_score_fn(score_fn)
        self._setup_window(
            window,
            window_seconds,
            min_calls,
            buckets,
            default_window=DEFAULT_WINDOW,
            count_window=ValueWindow,
        )
        if type(self.window) is ValueWindow:  # it tests its own mean: one call per score
            self.window.watch_mean(self._bar, self.min_calls)

    def _score(self, quality: float, now: float) -> bool:
        w = self.window
        if type(w) is ValueWindow:
            return w.push(quality)  # in the score range, so within the window's limits
        w.add(quality, False, now)
        n = w.valued
        return n >= self.min_calls and w.total < self._bar * n

    def quick_step(self) -> QuickStep | None:
        """A count window's ``push`` (it watches its mean): the breaker's quick path makes one
        call per score into this condition."""
        w, cls = self.window, type(self)
        if (
            type(w) is ValueWindow
            and cls._score is QualityBelow._score
            and cls.observe is ScoredCondition.observe
        ):
            return w.push, self._lo, self._hi
        return super().quick_step()

    def mean(self, now: float | None = None) -> float | None:
        """The current mean quality of the window (``None`` before any score)."""
        return self.window.aggregate(now).mean

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or (quality is not None and quality < self.threshold)

    def __repr__(self) -> str:
        fn = ", score_fn=..." if self.score_fn is not None else ""
        return (
            f"quality_below({self.threshold!r}, {self._window_repr}{fn}{self._min_repr}"
            f"{self._range_repr()})"
        )


class LowQualityRateAbove(ScoredCondition, WindowRule):
    """Trip when the share of scored calls below ``threshold`` strictly exceeds ``rate`` (in
    [0, 1)). The window holds a flag per scored call (low or not), not the scores."""

    def __init__(
        self,
        rate: float,
        threshold: float,
        window: int | None = None,
        score_fn: ScoreFn | None = None,
        *,
        window_seconds: float | None = None,
        min_calls: int | None = None,
        buckets: int = 10,
        score_range: tuple[float, float] = DEFAULT_SCORE_RANGE,
    ) -> None:
        self.rate = check_exceedable_rate("rate", rate)
        self._rate_num, self._rate_den = _exact(self.rate)
        self._set_score_range(score_range)
        self.threshold = self._check_bar("threshold", threshold)
        self.score_fn = check_score_fn(score_fn)
        self._setup_window(
            window, window_seconds, min_calls, buckets, default_window=DEFAULT_WINDOW
        )

    def _score(self, quality: float, now: float) -> bool:
        w = self.window
        w.add(None, quality < self.threshold, now)
        n = w.count
        return n >= self.min_calls and w.flagged * self._rate_den > self._rate_num * n

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        return error is not None or (quality is not None and quality < self.threshold)

    def __repr__(self) -> str:
        fn = ", score_fn=..." if self.score_fn is not None else ""
        return (
            f"low_quality_rate_above({self.rate!r}, {self.threshold!r}, "
            f"{self._window_repr}{fn}{self._min_repr}{self._range_repr()})"
        )
