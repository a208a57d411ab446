"""The base of every condition: the ml-breaker protocol, :class:`Condition` and
:class:`WindowRule` (a rule over one count or time window).

A condition is callable with a :class:`CallRecord` and returns True when the breaker should
trip, and has ``reset()`` (ml-breaker's protocol; any object with it can be passed as
``trip_on``). Built-in conditions also implement ``observe(error, latency_ms, quality, now,
seq)``, the same decision without building a record (the breaker's fast path; ``seq`` numbers
the breaker's calls), and ``judge(...)``, which says whether one call looks bad to the
condition (used to judge half-open probes).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tripwise.core.records import CallRecord
from tripwise.core.validation import check_int
from tripwise.core.windows import Aggregate, CountWindow, TimeWindow, Window

if TYPE_CHECKING:
    from tripwise.core.compose import AllOf, AnyOf

ScoreFn = Callable[[Any], float]
QuickStep = tuple[Callable[[float, float], bool], float, float]
"""What :meth:`Condition.quick_step` returns: ``(step, low, high)``."""

DEFAULT_WINDOW = 20
"""Calls in a count window when neither ``window`` nor ``window_seconds`` is given."""

DEFAULT_TIME_MIN_CALLS = 10
"""Minimum calls before a time-window rule may trip, when ``min_calls`` is not given."""


_owners: dict[int, tuple[weakref.ref[Any], str]] = {}
"""Which breaker each condition object belongs to, by id (with a weak reference, so an entry
dies with its object). Kept outside the objects: reading an object's ``__dict__`` would turn
its attribute reads on the hot path into dict lookups (+~250 instructions each on CPython
3.11), and a mock answers any ``getattr``."""


def claim_condition(obj: Any, owner: str) -> None:
    """Mark ``obj`` (a condition, or a user object adapted as one) as ``owner``'s; a
    ValueError if another breaker already holds it (it would share that breaker's windows).
    An object that cannot be weakly referenced cannot be tracked and is trusted."""
    key = id(obj)
    entry = _owners.get(key)
    if entry is not None and entry[0]() is obj:
        raise ValueError(
            f"condition {obj!r} already belongs to breaker {entry[1]!r}; every breaker needs "
            "its own condition objects (they hold its windows)"
        )
    try:
        ref = weakref.ref(obj, lambda _ref, key=key: _owners.pop(key, None))  # type: ignore[misc]
    except TypeError:
        return
    _owners[key] = (ref, owner)


def release_condition(obj: Any) -> None:
    """Forget ``obj``'s owner (the breaker that claimed it was not built after all)."""
    entry = _owners.get(id(obj))
    if entry is not None and entry[0]() is obj:
        del _owners[id(obj)]


@runtime_checkable
class ConditionProtocol(Protocol):
    """What ``trip_on`` accepts: ml-breaker's condition protocol."""

    def __call__(self, record: CallRecord) -> bool: ...

    def reset(self) -> None: ...


class Condition:
    """Base class of the built-in conditions; ``|`` and ``&`` compose them.

    ``observe`` gets the call's sequence number ``seq`` (calls of one breaker are numbered 1, 2,
    ...). A condition with ``lean = True`` is only told about failures and scored calls: a plain
    success just takes a sequence number, and the condition learns of it from the gap. This is
    what lets the breaker complete a plain success without taking its lock.
    """

    uses_quality = False
    uses_clock = False  # needs latency or the time of each call
    lean = False
    score_fn: ScoreFn | None = None
    _own_seq = 0

    def __call__(self, record: CallRecord) -> bool:
        self._own_seq += 1
        return self.observe(
            record.error, record.latency_ms, record.quality, record.timestamp, self._own_seq
        )

    def restart(self, seq: int) -> None:
        """Empty the condition; calls numbered after ``seq`` are the new history."""
        self._own_seq = seq
        self.reset()

    def warm(self, seq: int) -> bool:
        """Whether, after call ``seq``, no plain success can make this condition trip any more
        (so a lean breaker may stop reporting successes). A rate rule is warm once it has seen
        ``min_calls`` calls: before that, the success that completes the window may trip it."""
        return True

    def follow_calls(self, calls: Callable[[], int] | None) -> None:
        """Give a lean condition the breaker's call counter (``calls()`` returns the newest
        sequence number handed out), so its accessors count the plain successes it was not
        told of. Without it they answer as of the newest call the condition saw."""

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        raise NotImplementedError

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        """Whether this one call looks bad to the condition (a failed half-open probe)."""
        return error is not None

    def claimables(self) -> tuple[Any, ...]:
        """The objects a breaker claims for itself when it takes this condition (this one, and
        a user object it adapts): none of them may serve a second breaker."""
        return (self,)

    def quick_step(self) -> QuickStep | None:
        """A shortcut for the breaker's hot path, or None (the default: always ``observe``).

        ``(step, low, high)``: for a returned call whose quality score lies in ``[low, high]``
        (a finite number), ``step(quality, now)`` does all that ``observe(None, latency,
        quality, now, seq)`` would and answers the same; the condition must not use the
        latency or ``seq`` of such a call. Other calls still go to ``observe``. The breaker
        asks again whenever it rebuilds its fast path (a transition, a setting changed).
        """
        return None

    def observe_late(self, quality: float, now: float) -> bool:
        """A quality score for a call that already completed (see ``record_late_quality``).

        Conditions that do not use quality ignore it: it is not a call outcome.
        """
        return False

    def reset(self) -> None:
        raise NotImplementedError

    def walk(self) -> Iterator[Condition]:
        """This condition and, for compositions, every condition inside it."""
        yield self

    def __or__(self, other: Any) -> AnyOf:
        from tripwise.core.compose import AnyOf

        return AnyOf(self, other)

    def __and__(self, other: Any) -> AllOf:
        from tripwise.core.compose import AllOf

        return AllOf(self, other)


class WindowRule(Condition):
    """A rule over a count window (``window`` calls) or a time window (``window_seconds``).

    Subclasses call ``_setup_window`` once in ``__init__`` and feed ``self.window``, their
    only data structure, with ``window.add(value, flag, now)`` (the
    :class:`~tripwise.core.windows.Window` protocol, so a store may swap in a shared window).
    """

    window: Window
    min_calls: int

    def _setup_window(
        self,
        window: int | None,
        window_seconds: float | None,
        min_calls: int | None,
        buckets: int,
        *,
        smallest: int = 1,
        default_window: int | None = None,
        count_window: Callable[[int], Window] = CountWindow,
    ) -> None:
        """Build the window; ``smallest`` is the least ``window`` and ``min_calls`` allowed.

        With ``default_window``, ``window=None`` means that many calls and giving both
        ``window`` and ``window_seconds`` is refused (it used to drop ``window`` silently).
        """
        if default_window is not None:
            if window is not None and window_seconds is not None:
                raise ValueError(
                    f"pass either window (calls) or window_seconds (time), not both; got "
                    f"window={window!r} and window_seconds={window_seconds!r}"
                )
            if window is None:
                window = default_window
        if window_seconds is not None:
            self.uses_clock = True
            self.window = TimeWindow(window_seconds, buckets)
            self.min_calls = (
                DEFAULT_TIME_MIN_CALLS
                if min_calls is None
                else check_int("min_calls", min_calls, smallest)
            )
            self._window_repr = f"window_seconds={window_seconds!r}"
            if buckets != 10:
                self._window_repr += f", buckets={buckets}"
        else:
            size = check_int("window", window, smallest)
            self.window = count_window(size)
            self.min_calls = (
                size if min_calls is None else check_int("min_calls", min_calls, smallest)
            )
            if self.min_calls > size:
                raise ValueError(
                    f"min_calls must be <= window ({size}) for a count window, got {min_calls!r}"
                )
            self._window_repr = f"window={size}"
        self._min_repr = f", min_calls={min_calls}" if min_calls is not None else ""

    def _add(self, value: float | None, flag: bool, now: float) -> None:
        """``self.window.add(value, flag, now)`` (kept for subclasses written before the
        :class:`~tripwise.core.windows.Window` protocol gave every window that signature)."""
        self.window.add(value, flag, now)

    def aggregate(self, now: float | None = None) -> Aggregate:
        """What the window holds (time windows: as of ``now``, or of the newest call)."""
        return self.window.aggregate(now)

    def reset(self) -> None:
        self.window.clear()
