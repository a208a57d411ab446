"""The per-generation fast path: what a guarded call may do without the breaker's lock.

A :class:`Path` is built by the breaker (under its lock) for every generation, and again when a
setting that shapes the lock-free paths changes (a listener added, ``configure(...)``, the
conditions warmed up). Guarded calls read ``breaker.path`` once, at admission, and carry that
object to the end of the call: its decisions never change under them, and a success completed
lock-free counts on *its own* generation's counter. A call that started before a trip and a
reset can therefore never be counted in the new generation's windows.

:class:`Tally` is the lock-free counter behind it: ``next(tally)`` is one C call, atomic under
the GIL; ``tally.value()`` reads it exactly without parsing ``repr``.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from tripwise.core.states import Mode, State

_read_lock = threading.Lock()

if TYPE_CHECKING:
    from tripwise.core.condition_base import QuickStep

    _Count = itertools.count[int]
else:
    _Count = itertools.count  # not subscriptable at runtime


class Tally(_Count):
    """A counter that threads bump without a lock (``next(tally)``) and readers read exactly.

    ``itertools.count`` has no public getter; ``value()`` takes a number itself and remembers
    how many it took, so its reads are never counted. ``take()`` is ``next()`` for a caller that
    needs the number of its own event (1-based); it must not race with ``value()`` (the breaker
    calls both under its lock).
    """

    __slots__ = ("_reads", "path", "settled")

    _reads: int
    settled: int
    path: Path  # the newest Path of the generation this tally counts (set by the breaker)

    def __new__(cls) -> Tally:
        self = cast(Tally, super().__new__(cls, 0))
        self._reads = 0
        self.settled = 0  # how much of this tally its owner already added elsewhere
        return self

    def value(self) -> int:
        """How many times ``next()``/``take()`` were called."""
        with _read_lock:
            n: int = next(self) - self._reads
            self._reads += 1
            return n

    def take(self) -> int:
        """Count one event and return its number (1, 2, ...)."""
        n: int = next(self)
        return n - self._reads + 1  # (lean successes bump the count in between: gaps)

    def __repr__(self) -> str:
        return f"Tally({self.value()})"


class Path:
    """One generation's lock-free decisions. Immutable once built (only the breaker builds it).

    - ``gen``: the generation (every transition starts a new one).
    - ``admit``: calls are admitted without the slow path (CLOSED, or the breaker is disabled).
    - ``lean``: a plain success is just ``next(calls)`` (no lock, no clock, no quality context).
    - ``timed``: the clock is read around calls (latency conditions, time windows, listeners,
      ``track_latency``).
    - ``quality``: calls get a quality slot (``report_quality``), a score_fn runs on results.
    - ``quick``: admitted (CLOSED, normal or metrics-only mode), not lean, no listeners, and
      a returned call's outcome is its latency and score alone (``plain`` or ``scored``): it
      completes through ``breaker._complete`` (the timed and quality rules' hot path).
    - ``scoped``: quick with quality, and reports reached this breaker's calls before: a
      decorated sync call sets a context slot even where none is set (otherwise it may run
      inline, see :mod:`tripwise.core.signals`).
    - ``plain``: no quality and no result predicate: a returned call needs no judging.
    - ``scored``: quality, but no result predicate and no required signal: a returned call's
      outcome is its score (reported, or from the score_fn).
    - ``step``, ``step_low``, ``step_high``: on a quick path with quality, the root
      condition's :meth:`~tripwise.core.condition_base.Condition.quick_step` (or ``None``):
      ``step(quality, now)`` takes a returned call's score in ``[step_low, step_high]``.
    - ``open_until``: while not ``None``, a call before that time on the breaker's clock is
      rejected without the lock (OPEN in normal mode, or ``math.inf`` when forced open).
    - ``calls``: this generation's call counter; completed calls of the generation take their
      sequence number from it, lean successes just bump it.
    """

    __slots__ = (
        "admit",
        "calls",
        "gen",
        "lean",
        "mode",
        "open_until",
        "plain",
        "quality",
        "quick",
        "scoped",
        "scored",
        "state",
        "step",
        "step_high",
        "step_low",
        "timed",
    )

    gen: int
    state: State
    mode: Mode
    admit: bool
    lean: bool
    timed: bool
    quality: bool
    quick: bool
    plain: bool
    scored: bool
    scoped: bool
    open_until: float | None
    calls: Tally
    step: Callable[[float, float], bool] | None
    step_low: float
    step_high: float

    def __init__(
        self,
        *,
        gen: int,
        state: State,
        mode: Mode,
        admit: bool,
        lean: bool,
        timed: bool,
        quality: bool,
        quick: bool,
        scoped: bool,
        plain: bool,
        scored: bool,
        open_until: float | None,
        calls: Tally,
        step: QuickStep | None = None,
    ) -> None:
        setter = object.__setattr__
        setter(self, "gen", gen)
        setter(self, "state", state)
        setter(self, "mode", mode)
        setter(self, "admit", admit)
        setter(self, "lean", lean)
        setter(self, "timed", timed)
        setter(self, "quality", quality)
        setter(self, "quick", quick)
        setter(self, "scoped", scoped)
        setter(self, "plain", plain)
        setter(self, "scored", scored)
        setter(self, "open_until", open_until)
        setter(self, "calls", calls)
        fn, low, high = (None, math.inf, -math.inf) if step is None else step
        setter(self, "step", fn)
        setter(self, "step_low", low)
        setter(self, "step_high", high)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a breaker's Path is immutable (tried to set {name!r})")

    def __repr__(self) -> str:
        return (
            f"Path(gen={self.gen}, state={self.state.value}, mode={self.mode.value}, "
            f"admit={self.admit}, lean={self.lean}, timed={self.timed}, "
            f"quality={self.quality}, open_until={self.open_until!r})"
        )
