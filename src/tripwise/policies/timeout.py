"""Timeouts: give a call a deadline and treat missing it as a failure.

Async calls are cancelled at the deadline (``asyncio.timeout`` on 3.11+, ``asyncio.wait_for``
before). A running sync call cannot be interrupted safely in Python, so sync timeouts offer two
honest mechanisms, chosen with ``sync_mode``:

- ``"thread"`` (default): the call runs in a fresh daemon worker thread; at the deadline the
  caller stops waiting and gets :class:`CallTimeout`. The abandoned call keeps running in its
  thread until it returns on its own, and its result is dropped. Use it for calls you cannot
  make cooperative; give the callee its own I/O timeout too, or hung threads pile up
  (``Timeout.abandoned`` counts the ones still running).
- ``"deadline"``: the call runs in the caller's thread and can read :func:`remaining_time`
  (for example to set its HTTP client's timeout). If it returns after the deadline anyway, the
  late result is dropped and :class:`CallTimeout` is raised, so a late answer still counts as a
  failure.

Both modes (and async calls) publish the deadline through :func:`remaining_time`, nested
timeouts keep the earlier deadline.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from tripwise.core.clock import Clock, monotonic
from tripwise.core.validation import check_positive
from tripwise.policies._checks import check_callable
from tripwise.policies._wrap import wrap_calls
from tripwise.policies.errors import CallTimeout

logger = logging.getLogger("tripwise.policies.timeout")

F = TypeVar("F", bound=Callable[..., Any])
SyncMode = Literal["thread", "deadline"]

_deadline: contextvars.ContextVar[tuple[float, Clock] | None] = contextvars.ContextVar(
    "tripwise_deadline", default=None
)


def remaining_time() -> float | None:
    """Seconds left before the innermost enclosing :class:`Timeout` expires (never negative),
    or ``None`` when the current call has no deadline."""
    current = _deadline.get()
    if current is None:
        return None
    deadline, clock = current
    return max(0.0, deadline - clock())


class Timeout:
    """A deadline for each call: ``Timeout(2.0).call(fn, ...)``, ``await t.acall(fn, ...)``
    or ``@Timeout(2.0)``. A missed deadline raises :class:`CallTimeout`."""

    def __init__(
        self, seconds: float, *, sync_mode: SyncMode = "thread", clock: Clock | None = None
    ) -> None:
        self.seconds = check_positive("timeout seconds", seconds)
        if not isinstance(sync_mode, str) or sync_mode not in ("thread", "deadline"):
            raise ValueError(f"sync_mode must be 'thread' or 'deadline', got {sync_mode!r}")
        self.sync_mode: SyncMode = sync_mode
        check_callable("clock", clock, "a callable returning seconds")
        self._clock: Clock = clock if clock is not None else monotonic
        self._lock = threading.Lock()
        self._timeouts = 0
        self._abandoned = 0

    @property
    def timeouts(self) -> int:
        """How many calls missed their deadline so far."""
        return self._timeouts

    @property
    def abandoned(self) -> int:
        """Worker threads of timed-out sync calls that are still running."""
        return self._abandoned

    def _set_deadline(self) -> contextvars.Token[tuple[float, Clock] | None]:
        now = self._clock()
        deadline = now + self.seconds
        outer = _deadline.get()
        if outer is not None:
            outer_left = outer[0] - outer[1]()
            deadline = min(deadline, now + outer_left)
        return _deadline.set((deadline, self._clock))

    def _count_timeout(self) -> None:
        with self._lock:
            self._timeouts += 1

    # ------------------------------------------------------------------ sync

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` with this deadline (see ``sync_mode``)."""
        if self.sync_mode == "deadline":
            return self._call_cooperative(fn, args, kwargs)
        return self._call_in_thread(fn, args, kwargs)

    def _call_cooperative(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        token = self._set_deadline()
        try:
            deadline = _deadline.get()[0]  # type: ignore[index]
            result = fn(*args, **kwargs)
        finally:
            _deadline.reset(token)
        if self._clock() > deadline:
            self._count_timeout()
            raise CallTimeout(self.seconds)
        return result

    def _call_in_thread(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        token = self._set_deadline()
        try:
            ctx = contextvars.copy_context()  # report_quality / remaining_time work in the worker
        finally:
            _deadline.reset(token)
        done = threading.Event()
        outcome: list[Any] = []  # [True, result] or [False, exception]
        state = {"abandoned": False}

        def work() -> None:
            try:
                outcome.extend((True, ctx.run(fn, *args, **kwargs)))
            except BaseException as exc:
                outcome.extend((False, exc))
            finally:
                with self._lock:
                    done.set()
                    if state["abandoned"]:
                        self._abandoned -= 1

        worker = threading.Thread(target=work, name="tripwise-timeout", daemon=True)
        worker.start()
        if not done.wait(self.seconds):
            with self._lock:
                if not done.is_set():
                    state["abandoned"] = True
                    self._abandoned += 1
                    self._timeouts += 1
                    logger.debug("abandoned a sync call after %ss: %r", self.seconds, fn)
                    raise CallTimeout(self.seconds, abandoned=True)
        ok, value = outcome
        if ok:
            return value
        raise value

    # ------------------------------------------------------------------ async

    async def acall(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)``; cancel it at the deadline."""
        token = self._set_deadline()
        try:
            return await _await_with_timeout(fn(*args, **kwargs), self.seconds)
        except _OurTimeout:
            self._count_timeout()
            raise CallTimeout(self.seconds) from None
        finally:
            _deadline.reset(token)

    # ------------------------------------------------------------------ decorator

    def __call__(self, fn: F) -> F:
        return self.wrap(fn)

    def wrap(self, fn: F) -> F:
        """Wrap a sync or async function so every call gets this deadline."""
        return wrap_calls(fn, self.call, self.acall)

    def __repr__(self) -> str:
        return f"Timeout({self.seconds:g}, sync_mode={self.sync_mode!r})"


class _OurTimeout(Exception):
    """The deadline of this policy (not a TimeoutError raised by the callee) expired."""


if sys.version_info >= (3, 11):

    async def _await_with_timeout(awaitable: Awaitable[Any], seconds: float) -> Any:
        cm = asyncio.timeout(seconds)
        try:
            async with cm:
                return await awaitable
        except TimeoutError:
            if cm.expired():
                raise _OurTimeout from None
            raise

else:  # pragma: no cover - exercised on 3.10 only
    # Not asyncio.wait_for: on 3.10 it swallows a cancellation that arrives in the same loop
    # iteration as the callee's result (bpo-42130), so a cancelled caller (a health checker's
    # probe loop being stopped) keeps running; and its asyncio.TimeoutError is not the
    # builtin TimeoutError there, so a callee's own timeout would pass for ours.

    async def _await_with_timeout(awaitable: Awaitable[Any], seconds: float) -> Any:
        task = asyncio.ensure_future(awaitable)
        try:
            done, _ = await asyncio.wait((task,), timeout=seconds)
        except BaseException:  # the caller was cancelled: so is its call, and it waits for it
            task.cancel()
            try:
                await asyncio.wait((task,))
            finally:
                _drop_outcome(task)
            raise
        if task in done:
            return task.result()
        task.cancel()
        try:
            await asyncio.wait((task,))  # raises CancelledError only if the caller is cancelled
        finally:
            _drop_outcome(task)
        raise _OurTimeout

    def _drop_outcome(task: asyncio.Future[Any]) -> None:
        """Retrieve the outcome of an abandoned call, so asyncio logs nothing about it."""
        if task.done() and not task.cancelled():
            task.exception()
