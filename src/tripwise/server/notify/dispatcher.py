"""Queues notifications and delivers them in the background with retries.

The queue is bounded: when receivers are slow or dead and it fills up, new notifications are
dropped (and counted) instead of slowing down evaluation.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from tripwise.server.metrics import ServerMetrics
from tripwise.server.notify.senders import DeliveryError, deliver
from tripwise.server.settings import Settings

log = logging.getLogger("tripwise.server.notify")


def event_type(to_state: str) -> str | None:
    """``trip`` for transitions to open, ``recover`` for transitions to closed."""
    return {"open": "trip", "closed": "recover"}.get(to_state)


class Notifier:
    def __init__(self, settings: Settings, metrics: ServerMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._channels: dict[str, list[dict[str, Any]]] = {}
        self._queue: asyncio.Queue[tuple[dict[str, Any], dict[str, Any]]] = asyncio.Queue(
            settings.notify_queue_size
        )
        self._client = httpx.AsyncClient(timeout=settings.notify_timeout_s)
        self._workers: list[asyncio.Task[None]] = []

    def set_channels(self, project_id: str, channels: list[dict[str, Any]]) -> None:
        """Replace the cached channels of a project (called after every channel change)."""
        self._channels[project_id] = channels

    def drop_project(self, project_id: str) -> None:
        self._channels.pop(project_id, None)

    def notify(self, project_id: str, event: dict[str, Any]) -> None:
        kind = event_type(event["to_state"])
        if kind is None or event["from_state"] == event["to_state"]:
            return
        for ch in self._channels.get(project_id, ()):
            if ch["enabled"] and kind in (ch["events"] or ()):
                try:
                    self._queue.put_nowait((ch, {**event, "event": kind}))
                except asyncio.QueueFull:
                    self._metrics.notifications.labels(result="dropped").inc()
                    log.warning("notification queue full; dropped one for %s", ch["id"])

    async def send_test(self, channel: dict[str, Any], event: dict[str, Any]) -> None:
        """Deliver one test message now (raises DeliveryError)."""
        await deliver(self._client, self._settings, channel["channel"], channel["config"], event)

    def start(self) -> None:
        for i in range(self._settings.notify_workers):
            self._workers.append(asyncio.create_task(self._work(), name=f"tripwise-notify-{i}"))

    async def _work(self) -> None:
        while True:
            channel, event = await self._queue.get()
            await self._deliver_with_retries(channel, event)
            self._queue.task_done()

    async def _deliver_with_retries(self, channel: dict[str, Any], event: dict[str, Any]) -> None:
        attempts = self._settings.notify_retries + 1
        for attempt in range(attempts):
            try:
                await deliver(
                    self._client, self._settings, channel["channel"], channel["config"], event
                )
            except DeliveryError as exc:  # noqa: PERF203 - retries are the point
                if not exc.retryable or attempt == attempts - 1:
                    self._metrics.notifications.labels(result="failed").inc()
                    log.warning("notification to channel %s failed: %s", channel["id"], exc)
                    return
                await asyncio.sleep(self._settings.notify_backoff_s * 2**attempt)
            except Exception:
                self._metrics.notifications.labels(result="failed").inc()
                log.exception("notification to channel %s crashed", channel["id"])
                return
            else:
                self._metrics.notifications.labels(result="delivered").inc()
                return

    async def stop(self, grace_s: float) -> None:
        """Give queued notifications ``grace_s`` to go out, then stop the workers."""
        try:
            await asyncio.wait_for(self._queue.join(), grace_s)
        except asyncio.TimeoutError:
            log.warning("%d notifications not delivered at shutdown", self._queue.qsize())
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await self._client.aclose()
