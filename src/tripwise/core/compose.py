"""Compositions (``any_of``, ``all_of``, ``|``, ``&``) and user-defined conditions.

Each condition in a composition keeps its own window and sees every record: compositions never
short-circuit, so no condition starves. A user object with ml-breaker's protocol
(``__call__(record)``, ``reset()``) is adapted by :func:`as_condition`; mocks and proxies are
fine, since nothing is read from them with a plain ``getattr``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from tripwise.core.condition_base import Condition, ConditionProtocol
from tripwise.core.records import CallRecord


def _own_attr(obj: Any, name: str, default: Any) -> Any:
    """``obj.name`` if the object really has it (its class or instance defines it), else
    ``default``: a ``MagicMock`` answers every ``getattr`` with a new mock."""
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return default
    return getattr(obj, name, default)


class _CustomCondition(Condition):
    """Adapts a user object with ml-breaker's protocol (``__call__(record)``, ``reset()``)."""

    def claimables(self) -> tuple[Any, ...]:
        return (self, self.inner)  # (ownership is held outside the objects: mocks are fine)

    uses_clock = True  # a user condition may look at latency and timestamps

    def __init__(self, inner: ConditionProtocol) -> None:
        self.inner = inner  # (claimed by its breaker with this adapter: see claimables)
        self.uses_quality = bool(_own_attr(inner, "uses_quality", True))
        score_fn = _own_attr(inner, "score_fn", None)
        self.score_fn = score_fn if callable(score_fn) else None

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        return bool(self.inner(CallRecord(latency_ms, error, quality, now)))

    def reset(self) -> None:
        self.inner.reset()

    def __repr__(self) -> str:
        return repr(self.inner)


def as_condition(obj: Any) -> Condition:
    """Turn whatever ``trip_on`` was given into a :class:`Condition`, or raise TypeError.

    A subclass of :class:`Condition` that implements only ml-breaker's ``__call__(record)``
    (not ``observe``) is adapted like any user condition.
    """
    if isinstance(obj, Condition):
        cls = type(obj)
        if cls.observe is not Condition.observe:
            return obj
        if cls.__call__ is Condition.__call__:
            raise TypeError(
                f"{cls.__name__} subclasses Condition but implements neither "
                "__call__(record) -> bool nor observe(error, latency_ms, quality, now, seq)"
            )
        return _CustomCondition(obj)
    if callable(obj) and callable(getattr(obj, "reset", None)):
        return _CustomCondition(obj)
    raise TypeError(
        "trip_on must be a condition (e.g. error_rate_above(0.5)) or an object with "
        f"__call__(record) -> bool and reset(), got {obj!r}"
    )


class _Composite(Condition):
    _name = ""

    def __init__(self, *conditions: Any) -> None:
        if not conditions:
            raise ValueError(f"{self._name}() needs at least one condition")
        flat: list[Condition] = []
        for c in conditions:
            cond = as_condition(c)
            if type(cond) is type(self):
                flat.extend(cond.conditions)
            else:
                flat.append(cond)
        self.conditions: tuple[Condition, ...] = tuple(flat)
        self.uses_quality = any(c.uses_quality for c in flat)
        self.uses_clock = any(c.uses_clock for c in flat)
        self.lean = all(c.lean for c in flat)

    def judge(self, error: BaseException | None, latency_ms: float, quality: float | None) -> bool:
        # A probe has to look healthy to every condition, whatever the composition.
        return any(c.judge(error, latency_ms, quality) for c in self.conditions)

    def reset(self) -> None:
        for c in self.conditions:
            c.restart(self._own_seq)

    def observe_late(self, quality: float, now: float) -> bool:
        tripped = False
        for c in self.conditions:  # every quality condition gets the score
            if c.observe_late(quality, now):
                tripped = True
        return tripped

    def restart(self, seq: int) -> None:
        self._own_seq = seq
        for c in self.conditions:
            c.restart(seq)

    def warm(self, seq: int) -> bool:
        return all(c.warm(seq) for c in self.conditions)

    def follow_calls(self, calls: Callable[[], int] | None) -> None:
        for c in self.conditions:
            c.follow_calls(calls)

    def walk(self) -> Iterator[Condition]:
        yield self
        for c in self.conditions:
            yield from c.walk()

    def __repr__(self) -> str:
        return f"{self._name}({', '.join(repr(c) for c in self.conditions)})"


class AnyOf(_Composite):
    """Trip when any of the conditions trips; each keeps its own window."""

    _name = "any_of"

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        tripped = False
        for c in self.conditions:  # every condition sees every record: no short-circuit
            if c.observe(error, latency_ms, quality, now, seq):
                tripped = True
        return tripped


class AllOf(_Composite):
    """Trip when all of the conditions hold at once; each keeps its own window."""

    _name = "all_of"

    def observe_late(self, quality: float, now: float) -> bool:
        # The other conditions have no fresh verdict to combine with a late score, so it
        # updates their windows but never trips an all_of on its own.
        super().observe_late(quality, now)
        return False

    def observe(
        self,
        error: BaseException | None,
        latency_ms: float,
        quality: float | None,
        now: float,
        seq: int,
    ) -> bool:
        tripped = True
        for c in self.conditions:
            if not c.observe(error, latency_ms, quality, now, seq):
                tripped = False
        return tripped
