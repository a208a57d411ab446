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
  needs it; so the wrapper sets nothing. A sync call cannot be interleaved with other code of
  its thread, so its frame on the stack identifies it: :func:`find_slot` walks up from the
  reporter. A context slot whose owner it meets first (a ``with`` block, a stream, a scoped
  call inside the inline one) is the inner one; else the first inline call it meets is,
  unless the walk crossed an event loop on the way and the context slot's owner is not below
  the inline call (then the reporter is a task of a loop run inside the call, and the slot
  was set in there, by the async guarded call the task belongs to). A report found this way
  lands in a slot kept by frame (``unscoped``, popped by the wrapper when its function returns
  or raises) and switches the breaker to scoped calls: only its first report pays for the
  walk's frame inspection.
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


def _claim(
    frame: FrameType, ctx: list[Any] | None, crossed_loop: bool
) -> tuple[bool, list[Any] | None]:
    """Whether ``frame`` (an inline wrapper's) decides where a report goes, and the slot.

    ``ctx`` is the context slot; its owner is not between the reporter and ``frame``.
    ``crossed_loop``: an event loop lies between them (the reporter runs in a task)."""
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
    if ctx is not None and crossed_loop and not _owner_below(frame, ctx):
        # A task of a loop run inside this call, in a context whose slot was set in there
        # (by an async guarded call it belongs to): that call is the inner one.
        return True, ctx
    slot = unscoped.get(frame)
    if slot is None:
        owner = local["breaker"]
        slot = unscoped.setdefault(frame, [None, owner, path.gen, None, 0])
        owner._scope_reports()
    return True, slot


def _owner_below(frame: FrameType, ctx: list[Any]) -> bool:
    """Whether the frame that set ``ctx`` is below ``frame`` (ctx is then the outer slot)."""
    frame_id = ctx[4]
    f = frame.f_back
    while f is not None:
        if id(f) == frame_id or (
            _codes.get(id(f.f_code)) == _OWNER and f.f_locals.get("slot") is ctx
        ):
            return True
        f = f.f_back
    return False


def _loop_codes() -> set[int]:
    """Ids of the code objects that run asyncio tasks (a task's frames sit above them)."""
    import asyncio.base_events
    import asyncio.events
    import asyncio.runners

    found = [
        asyncio.events.Handle._run,
        asyncio.base_events.BaseEventLoop.run_forever,
        asyncio.base_events.BaseEventLoop.run_until_complete,
        asyncio.runners.run,
    ]
    runner = getattr(asyncio.runners, "Runner", None)  # 3.11+
    if runner is not None:
        found.append(runner.run)
    codes = set()
    for fn in found:
        _keep.append(fn.__code__)
        codes.add(id(fn.__code__))
    return codes


_loops: set[int] | None = None


inline_seen = False
"""Whether any breaker using quality was built (its calls may have run inline)."""


def find_slot() -> list[Any] | None:
    """The slot of the innermost guarded call using quality around the caller's caller.

    Without a context slot the stack is walked (for inline calls, even of a breaker that was
    just switched to scoped calls while they ran); with one, only while some breaker's calls
    still run inline. Not covered: a call of such a breaker that started inline before the
    switch, nested in a scoped call, reporting after the switch (its report lands on the
    scoped call); a task of a loop run (by asyncio.run) in a worker thread inside an inline
    call, reporting in a context inherited from outside the thread. A report outside any
    guarded call walks the whole stack to find nothing.
    """
    global _loops
    ctx = current_slot.get()
    if ctx is None:
        if not inline_seen:
            return None
    elif not inline_breakers and not unscoped:
        return ctx
    loops = _loops
    if loops is None:
        loops = _loops = _loop_codes()
    frame_id = ctx[4] if ctx is not None else 0
    codes = _codes
    crossed_loop = False
    f: FrameType | None = sys._getframe(2)
    while f is not None:
        if id(f) == frame_id:
            return ctx
        code = id(f.f_code)
        kind = codes.get(code)
        if kind is not None:
            if kind == _OWNER:
                return ctx  # ctx is this frame's slot, or one set inside it
            decided, slot = _claim(f, ctx, crossed_loop)
            if decided:
                return slot
        elif code in loops:
            crossed_loop = True
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
