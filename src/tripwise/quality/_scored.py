"""The shape every quality condition shares: it learns from scores only, late ones included."""

from __future__ import annotations

from tripwise.core.conditions import Condition


class ScoredCondition(Condition):
    """A condition fed by quality scores alone.

    Unscored calls are neutral, so plain successes need not be reported (``lean``), and a
    score that arrives after its call (``record_late_quality``) counts like any other.
    Subclasses implement ``_score(quality, now)``: take one score, say whether to trip.
    """

    uses_quality = True
    lean = True

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
        return self._score(quality, now)

    def observe_late(self, quality: float, now: float) -> bool:
        return self._score(quality, now)

    def _score(self, quality: float, now: float) -> bool:
        raise NotImplementedError
