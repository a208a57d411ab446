"""The quality side-channel: ``report_quality(score)`` inside a guarded call.

A guarded call whose breaker uses quality has a slot where its score lands; the function (or
anything it calls, in the same thread or asyncio task, or a task it spawns) writes its score
there. Two kinds of calls hold slots:

- **Scoped calls** (async calls, ``breaker.call()``, ``with`` blocks, streams, and decorated
  sync calls that start inside another scoped call, or of a breaker whose calls were reported
  to before) put their slot in a context variable, which keeps interleaved asyncio tasks and
  threads apart.
- **Inline calls**: the decorator's sync wrapper on the quick path (CLOSED, outcome = latency
  and score) of a breaker whose calls were never reported to, started where no context slot
  is set. Setting and resetting a context variable is ~220 ns, more than the breaker's lock
  and stats together, and a breaker with a ``score_fn`` never needs it; so the wrapper sets
  nothing. A sync call cannot be interleaved with other code of its thread, so its frame on
  the stack identifies it: with no context slot set, :func:`find_slot` walks up from the
  reporter to the first inline call in progress. (A context slot set, the innermost guarded
  call is the slot's: an inline call never starts inside one.) A report found this way lands
  in a slot kept by frame (``unscoped``, popped by the wrapper when its function returns or
  raises) and switches the breaker to scoped calls: only its first report pays for looking at
  frames.

A report that finds no slot at all (no context slot, no inline call on its thread's stack)
may come from another thread working for an inline call: a worker started with
``contextvars.copy_context().run`` or ``asyncio.to_thread`` inside a decorated sync function
copies the context, and an inline call put nothing there. That report is lost (it returns
False), and it switches **every** breaker that uses quality to scoped calls from then on
(:func:`scope_everything`), so the next reports from such workers land. The price is only
speed (~220 ns per quality call), paid once anything reported outside a guarded call.
"""

from __future__ import annotations

import math
import sys
import weakref
from contextvars import ContextVar
from numbers import Real
from types import CodeType, FrameType
from typing import Any, Protocol

from tripwise.core.histogram import VALUE_LIMIT


class LateScoreOwner(Protocol):
    """What a slot needs from its breaker: call ids for late scores, and the switch to scoped
    calls once a report reached one of its inline calls."""

    def _register_late_call(self, gen: int) -> str: ...

    def _scope_reports(self) -> None: ...


QualitySlot = list  # [score, owner, generation, call id]
"""Where the current call's score lands (``slot[SCORE]``), and who to ask for a call id for a
late score (``slot[OWNER]``, a :class:`LateScoreOwner`, for the call's ``slot[GEN]``). A plain
list: building one is a literal (~30 ns) where a slotted class costs ~150 ns per guarded call."""

SCORE, OWNER, GEN, CALL_ID = 0, 1, 2, 3


def new_slot(owner: LateScoreOwner | None = None, gen: int = -1) -> list[Any]:
    """A fresh slot (the hot paths write the literal ``[None, owner, gen, None]``)."""
    return [None, owner, gen, None]


current_slot: ContextVar[list[Any] | None] = ContextVar("tripwise_quality_slot", default=None)

unscoped: dict[FrameType, list[Any]] = {}
"""The slots of inline calls that a report found by walking the stack, by the wrapper's frame
(the wrapper pops its own when its function returns or raises)."""

inline_seen = False
"""Whether a breaker that uses quality was built (its calls may run inline): until then a
report outside a context slot has no call to look for."""

inline_off = False
"""Set once a report found no slot (see the module docstring): every breaker's quality calls
are scoped from then on."""

_quality_breakers: weakref.WeakSet[Any] = weakref.WeakSet()  # (their calls may run inline)


def may_run_inline(breaker: LateScoreOwner) -> None:
    """``breaker`` uses quality: its calls may run inline until :func:`scope_everything`."""
    global inline_seen
    inline_seen = True
    _quality_breakers.add(breaker)


def scope_everything() -> None:
    """A report found no slot: scope the quality calls of every breaker, now and later."""
    global inline_off
    if inline_off:
        return
    inline_off = True
    for breaker in list(_quality_breakers):
        breaker._scope_reports()


_inline_codes: set[int] = set()  # ids of the code objects of inline wrappers
_inline_keep: list[CodeType] = []  # (kept alive, so their ids stay theirs)


def register_inline(code: CodeType) -> None:
    """Declare ``code`` an inline wrapper: a frame of it with locals ``path`` (quality, inline)
    and ``breaker``, no ``token`` set and no ``result``/``exc`` yet, is an inline call whose
    function is running (see the module docstring)."""
    if id(code) not in _inline_codes:
        _inline_keep.append(code)
        _inline_codes.add(id(code))


def _claim(frame: FrameType) -> list[Any] | None:
    """The slot of the inline call running in ``frame`` (an inline wrapper's), if one is."""
    local = frame.f_locals  # (a copy before 3.13: ~1 us, paid once per breaker, see above)
    path = local.get("path")
    if (
        path is None
        or not path.quality
        or not path.quick  # (an open breaker's wrapper calling its fallback, say)
        or "result" in local
        or "exc" in local
        or "breaker" not in local
    ):
        return None  # not (or no longer) inside a quality call's function
    if local.get("token") is not None:  # a scoped call, reported to from another context
        scoped: list[Any] | None = local.get("slot")
        return scoped
    slot = unscoped.get(frame)
    if slot is None:
        owner = local["breaker"]
        slot = unscoped.setdefault(frame, [None, owner, path.gen, None])
        owner._scope_reports()
    return slot


def find_slot() -> list[Any] | None:
    """The slot of the innermost guarded call using quality around the caller's caller: the
    context slot, else the inline call found on the stack (a report outside any guarded call
    walks the whole stack to find nothing: microseconds, once a breaker uses quality)."""
    ctx = current_slot.get()
    if ctx is not None or not inline_seen:
        return ctx
    inline = _inline_codes
    f: FrameType | None = sys._getframe(2)
    while f is not None:
        if id(f.f_code) in inline:
            slot = _claim(f)
            if slot is not None:
                return slot
        f = f.f_back
    return None


def check_reported_score(score: Any, what: str = "quality score") -> float:
    """A reported score as a float: any finite real number (int, float, numpy scalar...).

    Scores are not clamped or refused for being outside [0, 1]: cosine similarities,
    log-probabilities and 0-100 ratings are recorded as they are, and each quality condition
    decides what a value outside the range it assumes means. A finite number too large for a
    float (``10**400``) or beyond ``±VALUE_LIMIT`` (1e140) is recorded as ``±VALUE_LIMIT``,
    as windows hold it. A string, a bool (numpy's too) or None is a TypeError (as in
    ml-breaker); NaN and infinities are a ValueError.
    """
    if type(score) is float:
        if -VALUE_LIMIT <= score <= VALUE_LIMIT:
            return score
    elif (
        isinstance(score, (bool, str))
        or type(score).__name__ in ("bool", "bool_")  # numpy.bool_: no bool, has __float__
        or (not isinstance(score, Real) and not hasattr(score, "__float__"))
    ):
        raise TypeError(
            f"{what} must be a real number (int or float), not {type(score).__name__}: {score!r}"
        )
    try:
        value = float(score)
    except OverflowError:  # a finite int or fraction beyond float: as large as windows hold
        return VALUE_LIMIT if score > 0 else -VALUE_LIMIT
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {score!r}")
    return max(-VALUE_LIMIT, min(VALUE_LIMIT, value))


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
        if inline_seen and not inline_off:
            scope_everything()  # (perhaps a worker thread of an inline call: see above)
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
    if slot is None and inline_seen and not inline_off:
        scope_everything()  # (as in report_quality)
    if slot is None or slot[1] is None:
        raise LookupError(
            "current_call_id() must run inside a call guarded by a breaker that uses quality "
            "(a quality condition in trip_on, or a score_fn)"
        )
    if slot[3] is None:
        slot[3] = slot[1]._register_late_call(slot[2])
    call_id: str = slot[3]
    return call_id
