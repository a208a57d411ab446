"""Guarded streams: generator and async generator functions under a breaker.

``@breaker`` on a generator function (or async generator function), ``breaker.stream(fn, ...)``
and ``breaker.call(genfn, ...)`` return a :class:`GuardedStream` (an iterator) or an
:class:`AsyncGuardedStream` (an async iterator). One stream is one guarded call:

- **Admission** happens when iteration starts (the first ``next()`` / ``__anext__()``), not when
  the stream object is created. A rejected stream answers with the fallback: ``fallback(*args,
  **kwargs)`` or the static value; an iterator (a generator, ``iter(...)``) or, for async streams,
  an async iterator has its items streamed, an awaitable is awaited first, and any other value
  is streamed as one single item. Without a fallback (or with ``fallback="raise"``) the first
  ``next()`` raises :class:`~tripwise.CircuitBreakerOpen`.
- **The outcome** is recorded once: when the stream is exhausted (a success), when it raises
  (classified like any call: ignored exceptions, predicates...), or when it is closed early
  (``close()``/``aclose()``, ``break`` out of a ``for``, garbage collection): closed early counts
  as a success, unless quality says otherwise.
- If the stream raises *before its first item* and that failure opened the breaker, the
  caller gets the fallback's items (or CircuitBreakerOpen without one), as for a plain call.
  After items have been delivered the original exception propagates.
- **Latency**: latency conditions and the stats see the time to the first item (what a
  streaming client waits for); listeners get a :class:`StreamRecord` that also carries the
  total duration and the number of items.
- **Quality**: ``report_quality(x)`` inside the generator body works (the quality slot is set
  around each resume), and so does ``stream.report_quality(x)`` from the consumer side; the
  last report wins. ``score_fn`` and ``result_predicate`` do not apply to streams (there is no
  single result to judge).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import Token
from typing import TYPE_CHECKING, Any, TypeVar, cast

from tripwise.core.errors import CircuitBreakerOpen, QualitySignalMissing
from tripwise.core.guard import NO_FALLBACK, check_fallback_for
from tripwise.core.records import CallRecord
from tripwise.core.signals import check_reported_score, current_slot, new_slot

if TYPE_CHECKING:
    from tripwise.core.breaker import CircuitBreaker
    from tripwise.core.path import Path

F = TypeVar("F", bound=Callable[..., Any])

_NEW, _RUNNING, _FALLBACK, _DONE = 0, 1, 2, 3


class StreamRecord(CallRecord):
    """The record of a guarded stream: ``latency_ms`` is the time to the first item (the whole
    duration if there was none), ``total_ms`` the whole duration, ``items`` how many were
    delivered."""

    __slots__ = ("first_item_ms", "items", "total_ms")

    def __init__(
        self,
        latency_ms: float,
        error: BaseException | None,
        quality: float | None,
        timestamp: float,
        *,
        first_item_ms: float | None,
        total_ms: float,
        items: int,
    ) -> None:
        super().__init__(latency_ms, error, quality, timestamp)
        self.first_item_ms = first_item_ms
        self.total_ms = total_ms
        self.items = items

    def __repr__(self) -> str:
        return (
            f"StreamRecord(first_item_ms={self.first_item_ms!r}, total_ms={self.total_ms!r}, "
            f"items={self.items}, error={self.error!r}, quality={self.quality!r})"
        )


def _single(value: Any) -> Iterator[Any]:
    yield value


def _fallback_items(b: CircuitBreaker, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    fb = b._fallback
    value = fb(*args, **kwargs) if callable(fb) else fb
    return value


class _StreamBase:
    __slots__ = (
        "__weakref__",
        "_args",
        "_b",
        "_fallback",
        "_first_ms",
        "_fn",
        "_gen",
        "_items",
        "_kwargs",
        "_permit",
        "_phase",
        "_slot",
        "_start",
    )

    def __init__(
        self,
        b: CircuitBreaker,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        gen: Any = None,
    ) -> None:
        self._b = b
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._gen = gen
        self._permit: Path | None = None
        self._phase = _NEW
        self._slot: list[Any] | None = None
        self._start = 0.0
        self._first_ms: float | None = None
        self._items = 0
        self._fallback: Any = None

    def _enter(self) -> Token[list[Any] | None] | None:
        """Scope ``report_quality`` to this stream while its generator runs."""
        slot = self._slot
        return current_slot.set(slot) if slot is not None else None

    def _stopped(self, token: Token[list[Any] | None] | None) -> None:
        """The generator is exhausted: the stream succeeded."""
        if token is not None:
            current_slot.reset(token)
        self._success(closing=False)

    def _raised(self, token: Token[list[Any] | None] | None, exc: BaseException) -> bool:
        """The generator raised ``exc``; True: answer the rest of the stream from the fallback."""
        if token is not None:
            current_slot.reset(token)
        return self._failure(exc)

    def _yielded(self, token: Token[list[Any] | None] | None, item: Any) -> Any:
        """The generator produced ``item``."""
        if token is not None:
            current_slot.reset(token)
        if self._items == 0:
            self._first_ms = self._now_ms()
        self._items += 1
        return item

    @property
    def breaker(self) -> CircuitBreaker:
        return self._b

    def report_quality(self, score: float) -> bool:
        """Report the quality of this stream (from the consumer's side); the last report wins.
        Returns False when the breaker does not use quality or the stream is not running."""
        value = check_reported_score(score)
        slot = self._slot
        if slot is None or self._phase != _RUNNING:
            return False
        slot[0] = value
        return True

    def _admit(self) -> bool:
        """Admission at the first item: True to run the stream, False to stream the fallback
        (``self._fallback`` is set); raises CircuitBreakerOpen without a fallback."""
        b = self._b
        try:
            permit = b._admit()
        except CircuitBreakerOpen:
            self._close_unstarted()
            if b._fallback is NO_FALLBACK:
                self._phase = _DONE
                raise
            self._use_fallback()
            return False
        self._permit = permit
        if permit.quality:
            self._slot = new_slot(b, permit.gen)
        self._start = b._clock()
        self._phase = _RUNNING
        return True

    def _now_ms(self) -> float:
        return (self._b._clock() - self._start) * 1000.0

    def _record(self, error: BaseException | None) -> bool:
        """Record the stream's outcome; returns True when it opened the breaker."""
        b = self._b
        permit = self._permit
        assert permit is not None
        self._phase = _DONE
        total = self._now_ms()
        first = self._first_ms
        quality = self._slot[0] if self._slot is not None else None
        latency = first if first is not None else total
        record = StreamRecord(
            latency,
            error,
            quality,
            b._clock(),
            first_item_ms=first,
            total_ms=total,
            items=self._items,
        )
        return b._record(permit, None, error, quality, latency_ms=latency, record=record)

    def _success(self, *, closing: bool) -> None:
        b = self._b
        permit = self._permit
        assert permit is not None
        if (
            permit.quality
            and b._config.require_quality_signal
            and (self._slot is None or self._slot[0] is None)
        ):
            self._phase = _DONE
            b._release(permit)
            if not closing:
                raise QualitySignalMissing(b.name)
            return
        self._record(None)

    def _failure(self, exc: BaseException) -> bool:
        """The stream raised ``exc``: True to stream the fallback instead; otherwise the caller
        re-raises ``exc``. Raises CircuitBreakerOpen (from ``exc``) when this failure tripped
        the breaker before any item and there is no fallback."""
        b = self._b
        permit = self._permit
        assert permit is not None
        self._phase = _DONE
        if not b._counts_as_failure(exc):
            b._release(permit)
            return False
        tripped = self._record(exc) and b._mode.value != "metrics_only"
        if not tripped or self._items:
            return False
        if b._fallback is NO_FALLBACK:
            raise b.rejection() from exc
        self._use_fallback()
        return True

    def _close_unstarted(self) -> None:
        raise NotImplementedError

    def _use_fallback(self) -> None:
        raise NotImplementedError

    def _abandon(self) -> None:
        """Closed early (or collected): a success unless quality says otherwise."""
        if self._phase == _RUNNING:
            self._success(closing=True)
        self._phase = _DONE

    def __repr__(self) -> str:
        phase = ("new", "running", "fallback", "done")[self._phase]
        return f"<{type(self).__name__} of breaker {self._b.name!r}: {phase}, {self._items} items>"


class GuardedStream(_StreamBase):
    """A sync stream under a breaker (see the module docstring). Iterate it once."""

    __slots__ = ()

    def __iter__(self) -> GuardedStream:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def _close_unstarted(self) -> None:
        gen = self._gen
        if gen is not None and hasattr(gen, "close"):
            gen.close()

    def _use_fallback(self) -> None:
        value = _fallback_items(self._b, self._args, self._kwargs)
        if inspect.iscoroutine(value):
            value.close()
            raise TypeError(
                f"the fallback of breaker {self._b.name!r} is async but the stream is sync"
            )
        self._fallback = value if isinstance(value, Iterator) else _single(value)
        self._phase = _FALLBACK

    def send(self, value: Any) -> Any:
        phase = self._phase
        if phase == _FALLBACK:
            return self._fallback_send(value)
        if phase == _DONE:
            raise StopIteration
        if phase == _NEW:
            if not self._admit():
                return self._fallback_send(value)
            if self._gen is None:
                assert self._fn is not None
                token = self._enter()
                try:
                    self._gen = iter(self._fn(*self._args, **self._kwargs))
                except BaseException as exc:
                    if self._raised(token, exc):
                        return self._fallback_send(value)
                    raise
                if token is not None:
                    current_slot.reset(token)
            value = None  # a generator that has not started only accepts None
        return self._resume(value)

    def _resume(self, value: Any, thrown: BaseException | None = None) -> Any:
        token = self._enter()
        gen = self._gen
        try:
            if thrown is not None:
                item = gen.throw(thrown)
            elif value is not None:
                item = gen.send(value)
            else:
                item = next(gen)
        except StopIteration:
            self._stopped(token)
            raise
        except BaseException as exc:
            if self._raised(token, exc):
                return self._fallback_send(None)
            raise
        return self._yielded(token, item)

    def _fallback_send(self, value: Any) -> Any:
        try:
            return next(self._fallback)
        except StopIteration:
            self._phase = _DONE
            raise

    def throw(self, exc: BaseException) -> Any:
        """Throw ``exc`` into the running stream (generator protocol)."""
        if self._phase == _RUNNING:
            return self._resume(None, exc)
        raise exc

    def close(self) -> None:
        """Close the stream early: the inner generator is closed, the call counts as a success
        unless quality says otherwise. Closing a stream that never started records nothing."""
        phase = self._phase
        if phase == _RUNNING:
            gen = self._gen
            token = self._enter()
            try:
                if hasattr(gen, "close"):
                    gen.close()
            except BaseException as exc:
                if token is not None:
                    current_slot.reset(token)
                if not self._failure(exc):
                    raise
                return
            if token is not None:
                current_slot.reset(token)
            self._abandon()
        elif phase == _NEW:
            self._close_unstarted()
        elif phase == _FALLBACK and hasattr(self._fallback, "close"):
            self._fallback.close()
        self._phase = _DONE

    def __enter__(self) -> GuardedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if self._phase == _RUNNING:
            with contextlib.suppress(Exception):  # never raise from a finalizer
                self._abandon()


class AsyncGuardedStream(_StreamBase):
    """An async stream under a breaker (see the module docstring). Iterate it once."""

    __slots__ = ()

    def __aiter__(self) -> AsyncGuardedStream:
        return self

    async def __anext__(self) -> Any:
        return await self.asend(None)

    def _close_unstarted(self) -> None:
        self._gen = None  # an un-started async generator needs no closing

    def _use_fallback(self) -> None:
        self._fallback = _fallback_items(self._b, self._args, self._kwargs)
        self._phase = _FALLBACK

    async def _fallback_next(self) -> Any:
        fb = self._fallback
        if inspect.isawaitable(fb):
            fb = await fb
        if not hasattr(fb, "__anext__"):
            fb = _aiter_sync(fb if isinstance(fb, Iterator) else _single(fb))
        self._fallback = fb
        try:
            return await fb.__anext__()
        except StopAsyncIteration:
            self._phase = _DONE
            raise

    async def asend(self, value: Any) -> Any:
        phase = self._phase
        if phase == _FALLBACK:
            return await self._fallback_next()
        if phase == _DONE:
            raise StopAsyncIteration
        if phase == _NEW:
            if not self._admit():
                return await self._fallback_next()
            if self._gen is None:
                assert self._fn is not None
                try:
                    gen = self._fn(*self._args, **self._kwargs)
                    self._gen = gen if hasattr(gen, "__anext__") else gen.__aiter__()
                except BaseException as exc:
                    if self._failure(exc):
                        return await self._fallback_next()
                    raise
            value = None
        return await self._resume(value)

    async def _resume(self, value: Any, thrown: BaseException | None = None) -> Any:
        token = self._enter()
        gen = self._gen
        try:
            if thrown is not None:
                item = await gen.athrow(thrown)
            elif value is not None:
                item = await gen.asend(value)
            else:
                item = await gen.__anext__()
        except StopAsyncIteration:
            self._stopped(token)
            raise
        except BaseException as exc:
            if self._raised(token, exc):
                return await self._fallback_next()
            raise
        return self._yielded(token, item)

    async def athrow(self, exc: BaseException) -> Any:
        if self._phase == _RUNNING:
            return await self._resume(None, exc)
        raise exc

    async def aclose(self) -> None:
        """Close the stream early (see :meth:`GuardedStream.close`)."""
        phase = self._phase
        if phase == _RUNNING:
            gen = self._gen
            token = self._enter()
            try:
                if hasattr(gen, "aclose"):
                    await gen.aclose()
            except BaseException as exc:
                if token is not None:
                    current_slot.reset(token)
                if not self._failure(exc):
                    raise
                return
            if token is not None:
                current_slot.reset(token)
            self._abandon()
        elif phase == _FALLBACK and hasattr(self._fallback, "aclose"):
            await self._fallback.aclose()
        self._phase = _DONE

    async def __aenter__(self) -> AsyncGuardedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if self._phase == _RUNNING:
            with contextlib.suppress(Exception):  # never raise from a finalizer
                self._abandon()


async def _aiter_sync(items: Iterator[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def open_stream(
    b: CircuitBreaker, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> GuardedStream | AsyncGuardedStream:
    """``breaker.stream(fn, ...)``: an async stream for an async generator function, else a
    sync one (``fn``'s result must then be iterable)."""
    if not callable(fn):
        raise TypeError(f"breaker.stream() needs a generator function, got {fn!r}")
    if inspect.isasyncgenfunction(fn):
        return AsyncGuardedStream(b, fn, args, kwargs)
    return GuardedStream(b, fn, args, kwargs)


def guard_created(
    b: CircuitBreaker, gen: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> GuardedStream | AsyncGuardedStream:
    """Guard a generator (or async generator) object that has not started yet."""
    if inspect.isasyncgen(gen):
        return AsyncGuardedStream(b, None, args, kwargs, gen=gen)
    return GuardedStream(b, None, args, kwargs, gen=gen)


def decorate_stream(b: CircuitBreaker, fn: F) -> F:
    """The decorator for generator and async generator functions: calling the wrapper returns
    a guarded stream; ``wrapper.breaker`` is the breaker."""
    is_async = inspect.isasyncgenfunction(fn)
    check_fallback_for(fn, b._fallback, "astream" if is_async else "stream")
    cls = AsyncGuardedStream if is_async else GuardedStream

    @functools.wraps(fn)
    def stream_wrapper(*args: Any, **kwargs: Any) -> Any:
        return cls(b, fn, args, kwargs)

    stream_wrapper.breaker = b  # type: ignore[attr-defined]
    return cast(F, stream_wrapper)


# Re-exported for type checkers: iterating a GuardedStream yields the generator's items.
__all__ = ["AsyncGuardedStream", "GuardedStream", "StreamRecord"]
