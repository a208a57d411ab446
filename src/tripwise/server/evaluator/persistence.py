"""Writes evaluator output (state rows, events) to the database off the evaluation path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from tripwise.server.storage.models import Breaker, Event

log = logging.getLogger("tripwise.server.evaluator")


class StatePersister:
    """A single writer task: batches queued state updates and events into one transaction.

    Evaluation only enqueues, so a slow database never delays a tick; ``flush`` gives readers
    (the events endpoint) read-your-writes.
    """

    def __init__(self, sessions: async_sessionmaker[Any]) -> None:
        self._sessions = sessions
        self._states: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._done = asyncio.Condition()
        self._queued = 0
        self._written = 0
        self._task: asyncio.Task[None] | None = None

    def save_state(self, breaker_id: str, state: dict[str, Any]) -> None:
        self._states[breaker_id] = state
        self._queued += 1
        self._wake.set()

    def add_event(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        self._queued += 1
        self._wake.set()

    def forget(self, breaker_id: str) -> None:
        self._states.pop(breaker_id, None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tripwise-persister")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._write_pending()

    async def _write_pending(self) -> None:
        states, self._states = self._states, {}
        events, self._events = self._events, []
        target = self._queued
        if states or events:
            try:
                async with self._sessions.begin() as session:
                    for bid, values in states.items():
                        await session.execute(
                            update(Breaker).where(Breaker.id == bid).values(values)
                        )
                    if events:
                        await session.execute(insert(Event), events)
            except Exception:
                log.exception("could not persist %d states / %d events", len(states), len(events))
        async with self._done:
            self._written = target
            self._done.notify_all()

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued before this call is written."""
        target = self._queued
        if self._written >= target:
            return
        self._wake.set()
        async with self._done:
            try:
                await asyncio.wait_for(
                    self._done.wait_for(lambda: self._written >= target), timeout
                )
            except asyncio.TimeoutError:
                log.warning("persistence flush timed out after %.1f s", timeout)

    async def stop(self) -> None:
        """Write what is left, then stop the writer task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._write_pending()
