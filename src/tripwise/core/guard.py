"""How a call is guarded: the full decision path for sync and async calls, the decorator's
wrappers with their lean paths, and ``with``/``async with`` blocks.

Every way in runs the breaker's three steps: a permit (``_admit``), the user's function with
no lock held, and the outcome (``_record``). This module holds the code around the user's call;
the state machine it drives lives in :mod:`tripwise.core.breaker`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from contextvars import Token
from typing import TYPE_CHECKING, Any, TypeVar, cast

from tripwise.core.errors import CircuitBreakerOpen
from tripwise.core.signals import QualitySlot, current_slot

if TYPE_CHECKING:
    from tripwise.core.breaker import CircuitBreaker

F = TypeVar("F", bound=Callable[..., Any])


class _NoFallback:
    def __repr__(self) -> str:
        return "NO_FALLBACK"


NO_FALLBACK: Any = _NoFallback()
"""The breaker has no fallback: a rejected call raises CircuitBreakerOpen."""


class Frame:
    """One ``with breaker:`` block in progress (kept in a context variable, so nesting and
    concurrent threads/tasks each see their own)."""

    __slots__ = ("gen", "prev", "slot", "start", "token")

    def __init__(
        self,
        gen: int,
        start: float | None,
        slot: QualitySlot | None,
        token: Token[QualitySlot | None] | None,
        prev: Frame | None,
    ) -> None:
        self.gen = gen
        self.start = start
        self.slot = slot
        self.token = token
        self.prev = prev


def fallback_value(b: CircuitBreaker, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    fb = b._fallback
    return fb(*args, **kwargs) if callable(fb) else fb


async def afallback_value(b: CircuitBreaker, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    fb = b._fallback
    if not callable(fb):
        return fb
    value = fb(*args, **kwargs)
    if inspect.isawaitable(value):
        value = await value
    return value


def run(
    b: CircuitBreaker, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run ``fn(*args, **kwargs)`` under ``b``: the full decision path of a sync call."""
    gen = b._lean_gen
    if gen >= 0:  # the lean path, as in the decorator's wrapper
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if b._on_exception(gen, None, exc):
                return fallback_value(b, args, kwargs)
            raise
        if b._lean_gen == gen:
            next(b._seq)
        else:
            b._record(gen, None, None, None)
        return result
    if b._open_until is not None and b._reject_fast():
        return fallback_value(b, args, kwargs)
    fast, gen = b._epoch  # _admit(), inlined: this is the path of every timed call
    if not fast:
        try:
            gen = b._admit_slow()
        except CircuitBreakerOpen:
            if b._fallback is NO_FALLBACK:
                raise
            return fallback_value(b, args, kwargs)
    if not b._uses_quality:
        start = b._clock() if b._timed else None
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if b._on_exception(gen, start, exc):
                return fallback_value(b, args, kwargs)
            raise
        if b._result_predicate is None:
            b._record(gen, start, None, None)
        else:
            b._finish(gen, start, result, None)
        return result
    slot = QualitySlot(b, gen)
    token = current_slot.set(slot)
    start = b._clock() if b._timed else None
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        current_slot.reset(token)
        if b._on_exception(gen, start, exc):
            return fallback_value(b, args, kwargs)
        raise
    current_slot.reset(token)
    b._finish(gen, start, result, slot)
    return result


async def arun(
    b: CircuitBreaker,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Await ``fn(*args, **kwargs)`` under ``b``: the full decision path of an async call."""
    gen = b._lean_gen
    if gen >= 0:  # the lean path, as in the decorator's wrapper
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            if b._on_exception(gen, None, exc):
                return await afallback_value(b, args, kwargs)
            raise
        if b._lean_gen == gen:
            next(b._seq)
        else:
            b._record(gen, None, None, None)
        return result
    if b._open_until is not None and b._reject_fast():
        return await afallback_value(b, args, kwargs)
    try:
        gen = b._admit()
    except CircuitBreakerOpen:
        if b._fallback is NO_FALLBACK:
            raise
        return await afallback_value(b, args, kwargs)
    slot = token = None
    if b._uses_quality:
        slot = QualitySlot(b, gen)
        token = current_slot.set(slot)
    start = b._clock() if b._timed else None
    try:
        result = await fn(*args, **kwargs)
    except BaseException as exc:
        if token is not None:
            current_slot.reset(token)
        if b._on_exception(gen, start, exc):
            return await afallback_value(b, args, kwargs)
        raise
    if token is not None:
        current_slot.reset(token)
    b._finish(gen, start, result, slot)
    return result


def decorate(b: CircuitBreaker, fn: F) -> F:
    """Wrap ``fn`` (sync or async). The wrapper exposes the breaker as ``.breaker``.

    The wrappers inline the lean path: while ``_lean_gen`` says a plain success needs no
    lock, a success costs one atomic ``next()`` on the call sequence. Everything else goes
    through :func:`run` / :func:`arun`, the one full decision path.
    """
    if not callable(fn):
        raise TypeError(f"a circuit breaker decorates a callable, got {fn!r}")
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        raise TypeError(
            f"cannot guard generator function {fn!r}: a breaker needs one outcome per call"
        )
    breaker = b
    seq = b._seq
    on_exception = b._on_exception
    record = b._record
    clock = b._clock
    rejections = b._rejections
    fallback = b._fallback
    has_fallback = fallback is not NO_FALLBACK
    fallback_is_callable = callable(fallback)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            gen = breaker._lean_gen
            if gen < 0:
                if has_fallback:  # open: answer without the lock (see _reject_fast)
                    until = breaker._open_until
                    if until is not None and clock() < until:
                        next(rejections)
                        return await afallback_value(breaker, args, kwargs)
                return await arun(breaker, fn, args, kwargs)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                if on_exception(gen, None, exc):
                    return await afallback_value(breaker, args, kwargs)
                raise
            if breaker._lean_gen == gen:
                next(seq)
            else:
                record(gen, None, None, None)  # a transition happened meanwhile
            return result

        async_wrapper.breaker = b  # type: ignore[attr-defined]
        return cast(F, async_wrapper)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        gen = breaker._lean_gen
        if gen < 0:
            if has_fallback:  # open: answer without the lock (see _reject_fast)
                until = breaker._open_until
                if until is not None and clock() < until:
                    next(rejections)
                    return fallback(*args, **kwargs) if fallback_is_callable else fallback
            return run(breaker, fn, args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if on_exception(gen, None, exc):
                return fallback_value(breaker, args, kwargs)
            raise
        if breaker._lean_gen == gen:
            next(seq)
        else:
            record(gen, None, None, None)  # a transition happened meanwhile
        return result

    wrapper.breaker = b  # type: ignore[attr-defined]
    return cast(F, wrapper)


def enter(b: CircuitBreaker) -> None:
    """Start a ``with b:`` block: a permit (or CircuitBreakerOpen), kept in a context variable."""
    gen = b._admit()
    slot = token = None
    if b._uses_quality:
        slot = QualitySlot(b, gen)
        token = current_slot.set(slot)
    start = b._clock() if b._timed else None
    b._frames.set(Frame(gen, start, slot, token, b._frames.get()))


def exit_block(b: CircuitBreaker, exc: BaseException | None) -> None:
    """End a ``with b:`` block with its outcome; raises CircuitBreakerOpen if it tripped."""
    frame = b._frames.get()
    if frame is None:
        raise RuntimeError(f"__exit__ of breaker {b.name!r} without a matching __enter__")
    b._frames.set(frame.prev)
    if frame.token is not None:
        current_slot.reset(frame.token)
    if exc is None:
        b._finish(frame.gen, frame.start, None, frame.slot, has_result=False)
        return
    if b._on_exception(frame.gen, frame.start, exc):
        raise CircuitBreakerOpen(
            b.name, b._state, b._trip_count, b._retry_after_locked(b._clock())
        ) from exc
