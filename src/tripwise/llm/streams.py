"""Streamed answers: the iterators callers get, and how a stream becomes one guarded call."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

from tripwise.core.breaker import CircuitBreaker
from tripwise.llm.response import LLMResponse, StreamEvent


def guard_stream(breaker: CircuitBreaker | None, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` (a generator function, sync or async) as one guarded call of ``breaker``:
    admitted at the first item, its outcome recorded when it ends (the core's guarded streams;
    a ``with`` block spanning the stream on a core without them)."""
    if breaker is None:
        return fn(*args)
    stream = getattr(breaker, "stream", None)
    if stream is not None:
        return stream(fn, *args)
    if inspect.isasyncgenfunction(fn):
        return _awith_breaker(breaker, fn(*args))
    return _with_breaker(breaker, fn(*args))


def _with_breaker(breaker: CircuitBreaker, gen: Iterator[Any]) -> Iterator[Any]:
    with breaker:  # one permit for the whole stream: admitted at the first next()
        yield from gen


async def _awith_breaker(breaker: CircuitBreaker, gen: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async with breaker:
        async for item in gen:
            yield item


class ChatStream:
    """A streamed answer: iterate for :class:`StreamEvent` items; ``response`` is the checked
    :class:`LLMResponse` once the stream is exhausted. ``close()`` ends it early."""

    def __init__(self, events: Iterator[StreamEvent], holder: dict[str, Any]) -> None:
        self._events = events
        self._holder = holder

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> StreamEvent:
        return next(self._events)

    @property
    def response(self) -> LLMResponse | None:
        return self._holder.get("response")

    def text(self) -> str:
        """Consume the rest of the stream; the whole answer's text."""
        for _ in self:
            pass
        r = self.response
        return r.content if r is not None else ""

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncChatStream:
    """The async twin of :class:`ChatStream` (``async for``)."""

    def __init__(self, events: AsyncIterator[StreamEvent], holder: dict[str, Any]) -> None:
        self._events = events
        self._holder = holder

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self._events.__anext__()

    @property
    def response(self) -> LLMResponse | None:
        return self._holder.get("response")

    async def text(self) -> str:
        async for _ in self:
            pass
        r = self.response
        return r.content if r is not None else ""

    async def aclose(self) -> None:
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()
