"""The quality side-channel: ``report_quality(score)`` inside a guarded call.

A guarded call whose breaker uses quality has a slot where its score lands; the function (or
anything it calls, in the same thread or asyncio task, or a task it spawns) writes its score
there. Two kinds of calls hold slots:

- **Scoped calls** (async calls, ``breaker.call()``, ``with`` blocks, streams, and decorated
  sync calls of a breaker whose calls were reported to before) put their slot in a context
  variable, which keeps interleaved asyncio tasks and threads apart. The slot remembers the
  id of the frame that set it (``slot[FRAME]``).
- **Inline calls**: the decorator's sync wrapper on the quick path (CLOSED, outcome = latency
  and score) of a breaker whose calls were never reported to. Setting and resetting a context
  variable is ~220 ns, most of what such a call costs, and a breaker with a ``score_fn`` never
  needs it; so the wrapper sets nothing, and only notes the context slot at its start in a
  local (``outer``). A sync call cannot be interleaved with other code of its thread, so its
  frame on the stack identifies it: :func:`find_slot` walks up from the reporter; the first
  inline call it meets is the innermost guarded call unless the context slot is not the one
  the inline call started under (then that slot was set inside it: a ``with`` block, a stream,
  a task of a loop run inside the call). A report found this way lands in a slot kept by
  frame (``unscoped``, popped by the wrapper when its function returns) and switches the
  breaker to scoped calls: only its first report pays for the walk's frame inspection.
"""

from __future__ import annotations

import math
import sys
from contextvars import ContextVar
from numbers import Real
from types import CodeType, FrameType
from typing import Any, Protocol


class LateScoreOwner(Protocol):
    """What a slot needs from its breaker: call ids for late scores, and the switch to scoped
    calls once a report reached one of its inline calls."""

    def _register_late_call(self, gen: int) -> str: ...

    def _scope_reports(self) -> None: ...


QualitySlot = list  # [score, owner, generation, call id, frame id]
"""Where the current call's score lands (``slot[SCORE]``), who to ask for a call id for a
late score (``slot[OWNER]``, a :class:`LateScoreOwner`, for the call's ``slot[GEN]``), and
the id of the frame that set it as the context slot (``slot[FRAME]``, 0 for none). A plain
list: building one is a literal (~30 ns) where a slotted class costs ~150 ns per guarded call."""

SCORE, OWNER, GEN, CALL_ID, FRAME = 0, 1, 2, 3, 4


def new_slot(owner: LateScoreOwner | None = None, gen: int = -1, frame: int = 0) -> list[Any]:
    """A fresh slot (the hot paths write the literal ``[None, owner, gen, None, frame]``)."""
    return [None, owner, gen, None, frame]


current_slot: ContextVar[list[Any] | None] = ContextVar("tripwise_quality_slot", default=None)

unscoped: dict[FrameType, list[Any]] = {}
"""The slots of inline calls that a report found by walking the stack, by the wrapper's frame
(the wrapper pops its own when its function returns or raises)."""

inline_breakers: set[int] = set()
"""Ids of the live breakers whose quality calls run inline now. While there are none (every
breaker using quality was reported to, or none uses quality), a report just reads the
context slot: no walk."""

_OWNER, _INLINE = 1, 2
_codes: dict[int, int] = {}  # id(code) -> _OWNER (its frames own a context slot) or _INLINE
_keep: list[CodeType] = []  # (the registered code objects, kept alive so ids stay theirs)


def _register(code: CodeType, kind: int) -> None:
    if id(code) not in _codes:
        _keep.append(code)
        _codes[id(code)] = kind


def register_owner(code: CodeType) -> None:
    """Declare ``code`` a function whose every frame sets the context slot while it runs."""
    _register(code, _OWNER)


def register_inline(code: CodeType) -> None:
    """Declare ``code`` an inline wrapper: a frame of it with ``path`` (quality, inline),
    ``breaker`` and ``outer`` locals, and no ``result``/``exc`` yet, is an inline call in
    progress (see the module docstring)."""
    _register(code, _INLINE)


def _claim(frame: FrameType, ctx: list[Any] | None) -> tuple[bool, list[Any] | None]:
    """Whether ``frame`` (an inline wrapper's) decides where a report goes, and the slot."""
    local = frame.f_locals  # (a copy before 3.13: ~1 us, paid once per breaker, see above)
    path = local.get("path")
    if (
        path is None
        or not path.inline
        or not path.quality
        or "result" in local
        or "exc" in local
        or "breaker" not in local
    ):
        return False, None  # not (or no longer) inside an inline quality call's function
    if ctx is not None and ctx is not local.get("outer"):
        return True, ctx  # the context slot was set inside this call: it is the inner one
    slot = unscoped.get(frame)
    if slot is None:
        owner = local["breaker"]
        slot = unscoped.setdefault(frame, [None, owner, path.gen, None, 0])
        owner._scope_reports()
    return True, slot


def find_slot() -> list[Any] | None:
    """The slot of the innermost guarded call using quality around the caller's caller."""
    ctx = current_slot.get()
    if not inline_breakers:
        return ctx
    frame_id = ctx[4] if ctx is not None else 0
    codes = _codes
    f: FrameType | None = sys._getframe(2)
    while f is not None:
        if id(f) == frame_id:
            return ctx
        kind = codes.get(id(f.f_code))
        if kind is not None:
            if kind == _OWNER:
                return ctx  # ctx is this frame's slot, or one set inside it
            decided, slot = _claim(f, ctx)
            if decided:
                return slot
        f = f.f_back
    return ctx


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
    slot = find_slot()
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
    slot = find_slot()
    if slot is None or slot[1] is None:
        raise LookupError(
            "current_call_id() must run inside a call guarded by a breaker that uses quality "
            "(a quality condition in trip_on, or a score_fn)"
        )
    if slot[3] is None:
        slot[3] = slot[1]._register_late_call(slot[2])
    call_id: str = slot[3]
    return call_id
