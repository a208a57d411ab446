"""How a call is guarded: the entry points around the user's call.

Every entry reads the breaker's current :class:`~tripwise.core.path.Path` once and carries it
to the end of the call (see :mod:`tripwise.core.breaker` for the three steps):

- the lean path (``path.lean``): the function runs, a success is ``next(path.calls)``;
- the lock-free rejection (``path.open_until``): an open breaker with a fallback answers
  without its lock;
- :func:`run_full` / :func:`arun_full`: everything else (admission under the lock, the clock
  around the call, the quality slot, the outcome under the lock).

The decorator's wrappers inline the first two (a Python call costs ~30 ns, a third of the whole
lean path) and hand everything else to the one sync and the one async full path; ``call()`` and
``acall()`` run the same three steps. The sync wrapper also inlines the ``quick`` path (CLOSED,
outcome = latency and score: the latency and quality rules), which completes through
``breaker._complete``, as :func:`finish` does for the full paths (sync and async).
Generators and async generators are guarded by :mod:`tripwise.core.streaming`.
"""

from __future__ import annotations

import functools
import inspect
import sys
import time as _time
from collections.abc import Awaitable, Callable
from contextvars import Token
from types import AsyncGeneratorType, GeneratorType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from tripwise.core.errors import CircuitBreakerOpen
from tripwise.core.signals import current_slot, register_inline, unscoped

if TYPE_CHECKING:
    from tripwise.core.breaker import CircuitBreaker
    from tripwise.core.path import Path

F = TypeVar("F", bound=Callable[..., Any])


class _NoFallback:
    def __repr__(self) -> str:
        return "NO_FALLBACK"


NO_FALLBACK: Any = _NoFallback()
"""The breaker has no fallback: a rejected call raises CircuitBreakerOpen."""

RAISE = "raise"
"""``fallback="raise"`` (ml-breaker's default): a rejected call raises CircuitBreakerOpen."""


# ---------------------------------------------------------------------------- fallbacks


def check_fallback(fallback: Any) -> Any:
    """The breaker's fallback as stored (``NO_FALLBACK`` for ``None``/``"raise"``), or a
    TypeError for a fallback that can only be a mistake."""
    if fallback is None or (isinstance(fallback, str) and fallback == RAISE):
        return NO_FALLBACK
    if inspect.iscoroutine(fallback) or inspect.isawaitable(fallback):
        raise TypeError(
            "fallback must be a callable, a static value or None; got an awaitable "
            f"({fallback!r}): pass the async function itself, not a call of it"
        )
    if inspect.isgenerator(fallback) or inspect.isasyncgen(fallback):
        raise TypeError(
            f"fallback must be a callable, a static value or None, got the generator {fallback!r}"
            " (it could answer only once): pass the generator function itself"
        )
    if isinstance(fallback, type) and issubclass(fallback, BaseException):
        raise TypeError(
            f"fallback={fallback.__name__} would return the exception class as the answer; "
            "to raise CircuitBreakerOpen on a rejected call use fallback='raise' (or None)"
        )
    if isinstance(fallback, BaseException):
        raise TypeError(
            f"fallback={fallback!r} would return the exception as the answer; to raise "
            "CircuitBreakerOpen on a rejected call use fallback='raise' (or None)"
        )
    return fallback


def _is_async_callable(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def check_fallback_for(fn: Callable[..., Any], fallback: Any, kind: str) -> None:
    """Refuse, at decoration, a callable fallback that cannot answer for ``fn``: an async
    fallback for a sync function or generator, or one that does not accept ``fn``'s arguments.

    ``kind`` is ``"sync"``, ``"async"``, ``"stream"`` or ``"astream"``.
    """
    if fallback is NO_FALLBACK or not callable(fallback):
        return
    name = getattr(fn, "__qualname__", repr(fn))
    if kind in ("sync", "stream") and (
        _is_async_callable(fallback) or inspect.isasyncgenfunction(fallback)
    ):
        raise TypeError(
            f"fallback {fallback!r} is async but {name} is not: it would return an un-awaited "
            "coroutine; give a sync fallback (or make the function async)"
        )
    try:
        fn_sig = inspect.signature(fn)
        fb_sig = inspect.signature(fallback)
    except (TypeError, ValueError):  # builtins and C callables without a signature
        return
    params = list(fn_sig.parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return  # (*args / **kwargs: the calls it will get cannot be known here)
    # Refused only when no call of fn would fit: neither one with every argument nor one with
    # just the required ones (ml-breaker code often gives a fallback the required ones only).
    error: TypeError | None = None
    for required_only in (False, True):
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        for p in params:
            if required_only and p.default is not p.empty:
                continue
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                positional.append(None)
            elif p.kind is p.KEYWORD_ONLY:
                keywords[p.name] = None
        try:
            fb_sig.bind(*positional, **keywords)
            return
        except TypeError as exc:
            error = error or exc
    raise TypeError(
        f"fallback {fallback!r} is called with the arguments of {name}{fn_sig} but its "
        f"signature is {fb_sig}: {error}"
    ) from None


def _call_fallback(
    b: CircuitBreaker, fb: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``fb(*args, **kwargs)``; a TypeError because ``fb`` cannot take these arguments (a
    ``breaker.call()`` fallback is not checked at construction) names the fallback."""
    try:
        return fb(*args, **kwargs)
    except TypeError as exc:
        try:
            inspect.signature(fb).bind(*args, **kwargs)
        except TypeError:
            raise TypeError(
                f"the fallback {fb!r} of breaker {b.name!r} cannot take the call's arguments "
                f"({len(args)} positional, keywords {sorted(kwargs)}): {exc}"
            ) from exc
        except ValueError:  # no signature to check against
            pass
        raise


def fallback_value(b: CircuitBreaker, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The fallback's answer for a sync call."""
    fb = b._fallback
    if not callable(fb):
        return fb
    value = _call_fallback(b, fb, args, kwargs)
    if inspect.iscoroutine(value):
        value.close()
        raise TypeError(
            f"the fallback {fb!r} of breaker {b.name!r} is async but the call is sync; "
            "use acall() or a sync fallback"
        )
    return value


async def afallback_value(b: CircuitBreaker, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The fallback's answer for an async call (a sync or async fallback)."""
    fb = b._fallback
    if not callable(fb):
        return fb
    value = _call_fallback(b, fb, args, kwargs)
    if inspect.isawaitable(value):
        value = await value
    return value


# ---------------------------------------------------------------------------- sync


def run(
    b: CircuitBreaker, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``breaker.call(fn, ...)``: the lean path, else :func:`run_full`."""
    path = b._path
    if path.lean:
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if b._on_exception(path, None, exc):
                return fallback_value(b, args, kwargs)
            raise
        if type(result) in _STREAM_TYPES and _is_stream_function(fn):
            return _late_stream(b, fn, result, args, kwargs)  # guard the stream, as below
        next(path.calls)
        if b._path is not path:
            b._late_success(path.calls)
        return result
    if _is_stream_function(fn):
        from tripwise.core import streaming

        return streaming.open_stream(b, fn, args, kwargs)
    return run_full(b, path, fn, args, kwargs)


def _is_stream_function(fn: Callable[..., Any]) -> bool:
    """A generator function (sync or async): ``call()`` guards its stream. A plain function
    that returns a generator is a plain call on every path (as with the decorator)."""
    code = getattr(fn, "__code__", None)
    return code is not None and bool(code.co_flags & _GENERATOR_FLAGS)


def run_full(
    b: CircuitBreaker,
    path: Path,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """The full decision path of a sync call that started on ``path``."""
    if not path.admit:
        if path.open_until is not None and b._reject_fast(path):
            return fallback_value(b, args, kwargs)
        try:
            path = b._admit_slow()
        except CircuitBreakerOpen:
            if b._fallback is NO_FALLBACK:
                raise
            return fallback_value(b, args, kwargs)
    slot = token = None
    if path.quality:
        slot = [None, b, path.gen, None]  # a quality slot (signals.new_slot)
        token = current_slot.set(slot)
    if path.timed:
        clock = b._clock_fn
        start: float | None = _time.monotonic() if clock is None else clock()
    else:
        start = None
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        if token is not None:
            current_slot.reset(token)
        if b._on_exception(path, start, exc):
            return fallback_value(b, args, kwargs)
        raise
    if token is not None:
        current_slot.reset(token)
    if finish(b, path, start, result, slot):
        return fallback_value(b, args, kwargs)
    return result


def finish(
    b: CircuitBreaker, path: Path, start: float | None, result: Any, slot: list[Any] | None
) -> bool:
    """The outcome of a call that returned (``run_full``, ``arun_full``); True when the
    caller gets the fallback instead of ``result``."""
    if not path.quick:
        return b._finish(path, start, result, slot)
    # CLOSED, outcome = latency and score: the short locked step
    score = b._quality_of(result, slot) if slot is not None else None
    if start is None:
        tripped = b._complete(path, None, score, 0.0)
    else:
        clock = b._clock_fn
        now = _time.monotonic() if clock is None else clock()
        tripped = b._complete(path, (now - start) * 1000.0, score, now)
    return tripped and b._substitutes()


def _late_stream(
    b: CircuitBreaker,
    fn: Callable[..., Any],
    gen: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """``call(fn)`` on the lean path returned a generator (``fn`` is a generator function, or
    returns one): guard the stream, admitted at its first item (a lean permit needs no
    returning)."""
    from tripwise.core import streaming

    return streaming.guard_created(b, gen, args, kwargs)


# ---------------------------------------------------------------------------- async


async def arun(
    b: CircuitBreaker,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """``await breaker.acall(fn, ...)``: the lean path, else :func:`arun_full`."""
    path = b._path
    if path.lean:
        try:
            aw = fn(*args, **kwargs)
            if type(aw) in _STREAM_TYPES:
                _refuse_stream(fn, aw)
            result = await aw
        except BaseException as exc:
            if type(exc) is _StreamMisuse:
                raise
            if b._on_exception(path, None, exc):
                return await afallback_value(b, args, kwargs)
            raise
        next(path.calls)
        if b._path is not path:
            b._late_success(path.calls)
        return result
    return await arun_full(b, path, fn, args, kwargs)


class _StreamMisuse(TypeError):
    """acall() of a generator function: a usage error, never a failure of the service."""


def _awaitable(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    aw = fn(*args, **kwargs)
    if type(aw) in _STREAM_TYPES:
        _refuse_stream(fn, aw)
    return aw


def _refuse_stream(fn: Callable[..., Any], aw: Any) -> None:
    if type(aw) is GeneratorType:
        aw.close()
    raise _StreamMisuse(
        f"acall() awaits a coroutine function, but {fn!r} is a generator function: "
        "iterate breaker.stream(fn, ...) (or decorate it) to guard a stream"
    )


async def arun_full(
    b: CircuitBreaker,
    path: Path,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """The full decision path of an async call that started on ``path``."""
    if not path.admit:
        if path.open_until is not None and b._reject_fast(path):
            return await afallback_value(b, args, kwargs)
        try:
            path = b._admit_slow()
        except CircuitBreakerOpen:
            if b._fallback is NO_FALLBACK:
                raise
            return await afallback_value(b, args, kwargs)
    if path.timed:
        clock = b._clock_fn
        start: float | None = _time.monotonic() if clock is None else clock()
    else:
        start = None
    slot = token = None
    if path.quality:
        slot = [None, b, path.gen, None]  # a quality slot (signals.new_slot)
        token = current_slot.set(slot)
    try:
        result = await _awaitable(fn, args, kwargs)
    except BaseException as exc:
        if token is not None:
            current_slot.reset(token)
        if type(exc) is _StreamMisuse:
            b._release(path)
            raise
        if b._on_exception(path, start, exc):
            return await afallback_value(b, args, kwargs)
        raise
    if token is not None:
        current_slot.reset(token)
    if finish(b, path, start, result, slot):
        return await afallback_value(b, args, kwargs)
    return result


# ---------------------------------------------------------------------------- the decorator


def decorate(b: CircuitBreaker, fn: F) -> F:
    """Wrap ``fn`` (sync or async, or a generator function). The wrapper exposes the breaker
    as ``.breaker``.

    The wrappers inline the lean path and the lock-free rejection; everything else goes through
    :func:`run_full` / :func:`arun_full`.
    """
    if not callable(fn):
        raise TypeError(f"a circuit breaker decorates a callable, got {fn!r}")
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        from tripwise.core import streaming

        return streaming.decorate_stream(b, fn)
    is_async = inspect.iscoroutinefunction(fn)
    check_fallback_for(fn, b._fallback, "async" if is_async else "sync")
    breaker = b
    on_exception = b._on_exception
    late_success = b._late_success
    complete = b._complete
    quality_of = b._quality_of
    get_slot = current_slot.get
    set_slot = current_slot.set
    reset_slot = current_slot.reset
    reported = unscoped
    _getframe = sys._getframe
    clock = b._clock_fn
    rejections = b._rejections
    fallback = b._fallback
    has_fallback = fallback is not NO_FALLBACK
    fallback_is_callable = callable(fallback)

    if is_async:

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            calls = breaker._lean  # the current generation's counter, when its path is lean
            if calls is not None:
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    if on_exception(calls.path, None, exc):
                        return await afallback_value(breaker, args, kwargs)
                    raise
                next(calls)
                if breaker._lean is not calls:
                    late_success(calls)  # the path changed meanwhile
                return result
            path = breaker._path
            if has_fallback:  # open: answer without the lock
                until = path.open_until
                if until is not None and (_time.monotonic() if clock is None else clock()) < until:
                    next(rejections)
                    return await afallback_value(breaker, args, kwargs)
            return await arun_full(breaker, path, fn, args, kwargs)

        async_wrapper.breaker = b  # type: ignore[attr-defined]
        return cast(F, async_wrapper)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls = breaker._lean  # the current generation's counter, when its path is lean
        if calls is not None:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                if on_exception(calls.path, None, exc):
                    return fallback(*args, **kwargs) if fallback_is_callable else fallback
                raise
            next(calls)
            if breaker._lean is not calls:
                late_success(calls)  # the path changed meanwhile (a transition, or a setting)
            return result
        path = breaker._path
        if not path.quick:
            until = path.open_until
            if (  # open: answer without the lock
                until is not None
                and has_fallback
                and (_time.monotonic() if clock is None else clock()) < until
            ):
                next(rejections)
                return fallback(*args, **kwargs) if fallback_is_callable else fallback
            return run_full(breaker, path, fn, args, kwargs)
        # CLOSED, not lean, outcome = latency and score: the latency and quality rules' path.
        token = None
        quality = path.quality
        if quality and (path.scoped or get_slot() is not None):
            # A context slot: reports reached this breaker's calls before, or this call runs
            # inside another guarded call's slot. Else none (an inline call: signals explains
            # how report_quality finds it by its frame).
            slot: list[Any] | None = [None, breaker, path.gen, None]  # (signals.new_slot)
            token = set_slot(slot)
        start = (_time.monotonic() if clock is None else clock()) if path.timed else None
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if token is not None:
                reset_slot(token)
            elif reported:
                reported.pop(_getframe(), None)
            if on_exception(path, start, exc):
                return fallback(*args, **kwargs) if fallback_is_callable else fallback
            raise
        score: float | None = None
        if token is not None:
            reset_slot(token)
            score = quality_of(result, slot)
        elif quality:  # an inline call: its slot, if a report found it by its frame
            score = quality_of(result, reported.pop(_getframe(), None) if reported else None)
        if start is None:
            tripped = complete(path, None, score, 0.0)
        else:
            now = _time.monotonic() if clock is None else clock()
            tripped = complete(path, (now - start) * 1000.0, score, now)
        if tripped and breaker._substitutes():
            return fallback(*args, **kwargs) if fallback_is_callable else fallback
        return result

    wrapper.breaker = b  # type: ignore[attr-defined]
    return cast(F, wrapper)


def _inline_wrapper_code() -> Any:
    """The code object of :func:`decorate`'s sync wrapper (one for every decorated function)."""
    for const in decorate.__code__.co_consts:
        if getattr(const, "co_name", None) == "wrapper":
            return const
    raise RuntimeError("decorate() has no sync wrapper")  # pragma: no cover


register_inline(_inline_wrapper_code())


_STREAM_TYPES = frozenset({GeneratorType, AsyncGeneratorType})
_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR


# ---------------------------------------------------------------------------- with blocks


class Frame:
    """One ``with breaker:`` block in progress (kept in a context variable, so nesting and
    concurrent threads/tasks each see their own)."""

    __slots__ = ("path", "prev", "slot", "start", "token")

    def __init__(
        self,
        path: Path,
        start: float | None,
        slot: list[Any] | None,
        token: Token[list[Any] | None] | None,
        prev: Frame | None,
    ) -> None:
        self.path = path
        self.start = start
        self.slot = slot
        self.token = token
        self.prev = prev


def enter(b: CircuitBreaker) -> None:
    """Start a ``with b:`` block: a permit (or CircuitBreakerOpen), kept in a context variable.

    A rejected block raises CircuitBreakerOpen even when the breaker has a fallback: a block
    has no value the fallback could replace."""
    path = b._admit()
    slot = token = None
    if path.quality:  # a quality slot (signals.new_slot)
        slot = [None, b, path.gen, None]
        token = current_slot.set(slot)
    start = b._clock() if path.timed else None
    b._frames.set(Frame(path, start, slot, token, b._frames.get()))


def exit_block(b: CircuitBreaker, exc: BaseException | None) -> None:
    """End a ``with b:`` block with its outcome; raises CircuitBreakerOpen if it tripped."""
    frame = b._frames.get()
    if frame is None:
        raise RuntimeError(f"__exit__ of breaker {b.name!r} without a matching __enter__")
    b._frames.set(frame.prev)
    if frame.token is not None:
        current_slot.reset(frame.token)
    if exc is None:
        b._finish(frame.path, frame.start, None, frame.slot, has_result=False)
        return
    if b._on_exception(frame.path, frame.start, exc):
        raise b.rejection() from exc
