"""The quality side-channel: ``report_quality(score)`` inside a guarded call.

A guarded call whose breaker uses quality gets a fresh slot in a context variable; the
function (or anything it calls, in the same thread or asyncio task, or a task it spawns)
writes its score there. Context variables keep interleaved asyncio tasks and threads apart.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from numbers import Real
from typing import Any, Protocol


class LateScoreOwner(Protocol):
    """What a slot needs from its breaker to hand out call ids for late scores."""

    def _register_late_call(self, gen: int) -> str: ...


QualitySlot = list  # [score, owner, generation, call id]
"""Where the current call's score lands (``slot[SCORE]``), and who to ask for a call id for a
late score (``slot[OWNER]``, a :class:`LateScoreOwner`, for the call's ``slot[GEN]``). A plain
list: building one is a literal (~30 ns) where a slotted class costs ~150 ns per guarded call."""

SCORE, OWNER, GEN, CALL_ID = 0, 1, 2, 3


def new_slot(owner: LateScoreOwner | None = None, gen: int = -1) -> list[Any]:
    """A fresh slot (the hot paths write the literal ``[None, owner, gen, None]``)."""
    return [None, owner, gen, None]


current_slot: ContextVar[list[Any] | None] = ContextVar("tripwise_quality_slot", default=None)


def check_reported_score(score: Any, what: str = "quality score") -> float:
    """A reported score as a float: any finite real number (int, float, numpy scalar...).

    Scores are not clamped or refused for being outside [0, 1]: cosine similarities,
    log-probabilities and 0-100 ratings are recorded as they are, and each quality condition
    decides what a value outside the range it assumes means. A string, a bool or None is a
    TypeError (as in ml-breaker); NaN and infinities are a ValueError.
    """
    if type(score) is float:
        if math.isfinite(score):
            return score
    elif isinstance(score, (bool, str)) or (
        not isinstance(score, Real) and not hasattr(score, "__float__")
    ):
        raise TypeError(
            f"{what} must be a real number (int or float), not {type(score).__name__}: {score!r}"
        )
    value = float(score)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {score!r}")
    return value


def report_quality(score: float) -> bool:
    """Report the quality (higher is better) of the current guarded call.

    Returns True when a guarded call that uses quality was there to receive it, False when
    there is none (the score is then dropped). Any finite real number is accepted and recorded
    as it is (see :func:`check_reported_score`): it never turns the call into a failure. A
    non-number raises TypeError, NaN or an infinity ValueError. The last report of a call
    wins, and it wins over the breaker's ``score_fn``.
    """
    value = check_reported_score(score)
    slot = current_slot.get()
    if slot is None:
        return False
    slot[0] = value
    return True


def current_call_id() -> str:
    """An id for the current guarded call, to attach a quality score that arrives later
    (user feedback, an offline judge) with ``breaker.record_late_quality(call_id, score)``.

    Works inside a call guarded by a breaker that uses quality (the innermost such breaker,
    when they are nested); raises LookupError anywhere else. Calling it twice in one call
    returns the same id. Only ids that are asked for are remembered, so calls that never need
    a late score cost nothing.
    """
    slot = current_slot.get()
    if slot is None or slot[1] is None:
        raise LookupError(
            "current_call_id() must run inside a call guarded by a breaker that uses quality "
            "(a quality condition in trip_on, or a score_fn)"
        )
    if slot[3] is None:
        slot[3] = slot[1]._register_late_call(slot[2])
    call_id: str = slot[3]
    return call_id
