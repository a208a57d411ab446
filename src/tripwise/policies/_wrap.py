"""The decorator form shared by the policies: one wrapper, sync or async like the function."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


def wrap_calls(
    fn: F,
    call: Callable[..., Any],
    acall: Callable[..., Awaitable[Any]],
) -> F:
    """``fn`` wrapped so every call runs as ``call(fn, *args, **kwargs)``, or as
    ``await acall(fn, *args, **kwargs)`` when ``fn`` is a coroutine function."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await acall(fn, *args, **kwargs)

        return cast(F, async_wrapper)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return call(fn, *args, **kwargs)

    return cast(F, wrapper)
