"""The quality side-channel: ``report_quality(score)`` inside a guarded call.

A guarded call whose breaker uses quality gets a fresh slot in a context variable; the
function (or anything it calls, in the same thread or asyncio task, or a task it spawns)
writes its score there. Context variables keep interleaved asyncio tasks and threads apart.
"""

from __future__ import annotations

from contextvars import ContextVar

from tripwise.core.records import check_score


class QualitySlot:
    """Where the current call's score lands."""

    __slots__ = ("score",)

    def __init__(self) -> None:
        self.score: float | None = None


current_slot: ContextVar[QualitySlot | None] = ContextVar("tripwise_quality_slot", default=None)


def report_quality(score: float) -> bool:
    """Report the quality (in [0, 1], higher is better) of the current guarded call.

    Returns True when a guarded call that uses quality was there to receive it, False when
    there is none (the score is then dropped). A score outside [0, 1] or NaN raises ValueError.
    The last report of a call wins, and it wins over the breaker's ``score_fn``.
    """
    value = check_score(score)
    slot = current_slot.get()
    if slot is None:
        return False
    slot.score = value
    return True
