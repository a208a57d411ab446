"""The control plane's live core: in-memory projects, evaluation loop, stream, notifications."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tripwise.server.evaluator.breaker import BreakerRuntime, Change
from tripwise.server.evaluator.persistence import StatePersister
from tripwise.server.evaluator.projects import ProjectRuntime, RouterRuntime
from tripwise.server.metrics import ServerMetrics
from tripwise.server.notify.dispatcher import Notifier
from tripwise.server.ratelimit import RateLimiter
from tripwise.server.settings import Settings
from tripwise.server.storage import models as m
from tripwise.server.storage.database import session_factory
from tripwise.server.stream import StreamHub, encode_state
from tripwise.server.timefmt import iso, now_ms, now_us

if TYPE_CHECKING:
    from tripwise.server.replica import ReplicaBus

log = logging.getLogger("tripwise.server.evaluator")
SYNC_MARKER = {"breaker": "", "state": "closed", "allow_rate": 1.0}


class ControlPlane:
    """Everything the request handlers share; one per server process."""

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = session_factory(engine)
        self.projects: dict[str, ProjectRuntime] = {}
        self.hub = StreamHub()
        self.metrics = ServerMetrics(lambda: self.hub.count, self._unmatched_rows)
        self.persister = StatePersister(self.sessions)
        self.notifier = Notifier(settings, self.metrics)
        self.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        self.ingest_limiter = RateLimiter(
            settings.ingest_rate_limit_per_s, settings.ingest_rate_limit_burst
        )
        # Requests that fail authentication (unknown bearer key, bad ingest signature) spend
        # this budget, per client address, never a project's or a key's own.
        self.unauth_limiter = RateLimiter(
            settings.unauth_rate_limit_per_s, settings.unauth_rate_limit_burst
        )
        self.key_cache: dict[str, Any] = {}
        # Bumped by forget_keys(): a lookup that raced a revocation must not re-cache the key.
        self.key_cache_epoch = 0
        self._loop_task: asyncio.Task[None] | None = None
        self.last_tick_ms: int | None = None
        self.bus: ReplicaBus | None = None

    def _unmatched_rows(self) -> list[tuple[str, str, str, str, int]]:
        return [
            (p.id, r.id, r.name, metric, n)
            for p in list(self.projects.values())
            for r in list(p.routers.values())
            for metric, n in list(r.unmatched.items())
        ]

    # -- keys ----------------------------------------------------------------------------

    def forget_keys(self) -> None:
        """Drop every cached key (after a key or project is revoked or deleted)."""
        self.key_cache.clear()
        self.key_cache_epoch += 1

    # -- loading -------------------------------------------------------------------------

    async def load(self) -> None:
        """Build the in-memory projection from the database (startup, after migrations)."""
        await self.reload()
        log.info(
            "loaded %d projects, %d breakers",
            len(self.projects),
            sum(len(p.breakers) for p in self.projects.values()),
        )

    async def reload(self) -> None:
        """Bring the in-memory projection in line with the database, keeping what it knows
        that the database does not: the windows of unchanged breakers, router counters (and,
        in replica mode, breaker states, which follow the evaluator's messages)."""
        now = now_ms()
        async with self.sessions() as s:
            projects = (await s.scalars(select(m.Project))).all()
            breakers = (await s.scalars(select(m.Breaker))).all()
            routers = (await s.scalars(select(m.Router))).all()
            links = (await s.scalars(select(m.RouterBreaker))).all()
            channels: dict[str, list[dict[str, Any]]] = {}
            for ch in (await s.scalars(select(m.Channel))).all():
                channels.setdefault(ch.project_id, []).append(channel_dict(ch))
        seen = {p.id for p in projects}
        for pid in [pid for pid in self.projects if pid not in seen]:
            del self.projects[pid]
            self.hub.close_where(project_id=pid)
            self.notifier.drop_project(pid)
        for row in projects:
            runtime = self.projects.get(row.id)
            if runtime is None:
                self.projects[row.id] = ProjectRuntime(row)
            else:
                runtime.update(row)
        by_project: dict[str, dict[str, Any]] = {pid: {} for pid in seen}
        for b in breakers:
            by_project[b.project_id][b.id] = b
        for pid, rows in by_project.items():
            project = self.projects[pid]
            for bid in [bid for bid in project.breakers if bid not in rows]:
                del project.breakers[bid]
            for bid, row in rows.items():
                existing = project.breakers.get(bid)
                if existing is None:
                    project.breakers[bid] = BreakerRuntime(row, now_ms=now)
                else:
                    existing.configure(row)
        router_project: dict[str, str] = {}
        router_ids: dict[str, set[str]] = {}
        for r in routers:
            router_project[r.id] = r.project_id
            router_ids[r.id] = set()
        for link in links:
            if link.router_id in router_ids:
                router_ids[link.router_id].add(link.breaker_id)
        for project in self.projects.values():
            for rid in [rid for rid in project.routers if router_project.get(rid) != project.id]:
                del project.routers[rid]
        for r in routers:
            project = self.projects[r.project_id]
            existing_router = project.routers.get(r.id)
            if existing_router is None:
                project.routers[r.id] = RouterRuntime(r.id, r.name, r.enabled, router_ids[r.id])
            else:
                existing_router.name, existing_router.enabled = r.name, r.enabled
                existing_router.breaker_ids = router_ids[r.id]
        for project in self.projects.values():
            project.invalidate()
            self.notifier.set_channels(project.id, channels.get(project.id, []))

    # -- evaluation ------------------------------------------------------------------------

    def tick(self, now: int | None = None) -> list[Change]:
        """Evaluate every due breaker once and dispatch what changed."""
        now = now_ms() if now is None else now
        started = time.perf_counter()
        changes: list[Change] = []
        for p in list(self.projects.values()):
            if not self.leads(p.id):
                continue
            # Each project's changes are dispatched on their own: whatever goes wrong in one
            # project (or one breaker, see ProjectRuntime.evaluate) cannot drop the others'.
            mine: list[Change] = []
            failures = p.failures
            try:
                p.evaluate(now, mine)
            except Exception:
                p.failures += 1
                log.exception("evaluation of project %s failed", p.id)
            if p.failures != failures:
                self.metrics.evaluation_errors.inc(p.failures - failures)
            if mine:
                self.dispatch(mine)
                changes.extend(mine)
        self.last_tick_ms = now
        self.metrics.evaluation.observe(time.perf_counter() - started)
        return changes

    def dispatch(self, changes: list[Change]) -> None:
        """Push each change on the stream, queue it for the database and notifications."""
        for c in changes:
            self._dispatch_one(c)

    def _dispatch_one(self, c: Change) -> None:
        try:
            self._publish_change(c)
        except Exception:
            self.metrics.evaluation_errors.inc()
            log.exception("could not dispatch the change of breaker %s", c.breaker.name)

    def _publish_change(self, c: Change) -> None:
        b = c.breaker
        self.publish(b.project_id, encode_state(b.sse_payload()), b)
        self.persister.save_state(b.id, b.persisted_state())
        if c.is_transition:
            event = {
                "id": str(uuid.uuid4()),
                "project_id": b.project_id,
                "breaker_id": b.id,
                "breaker_name": b.name,
                "from_state": c.from_state,
                "to_state": c.to_state,
                "reason": c.reason,
                "ts_us": c.at_ms * 1000 + (now_us() % 1000),
            }
            self.persister.add_event(event)
            self.metrics.transitions.labels(to_state=c.to_state).inc()
            self.notifier.notify(b.project_id, event_payload(event))
            log.info("breaker %s: %s -> %s (%s)", b.name, c.from_state, c.to_state, c.reason)

    async def _run(self) -> None:
        interval = self.settings.tick_interval_s
        while True:
            try:
                self.tick()
            except Exception:
                log.exception("evaluation tick failed")
            await asyncio.sleep(interval)

    @property
    def evaluator_running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    def start(self) -> None:
        self.persister.start()
        self.notifier.start()
        self.hub.start(self.settings.keepalive_s)
        self._loop_task = asyncio.create_task(self._run(), name="tripwise-evaluator")

    async def stop(self) -> None:
        """Stop evaluating, persist every breaker's state, drain notifications."""
        await self.hub.stop()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for p in self.projects.values():
            if not self.leads(p.id):
                continue  # another replica evaluates it; our copy must not overwrite its rows
            for b in p.breakers.values():
                self.persister.save_state(b.id, b.persisted_state())
        await self.persister.stop()
        await self.notifier.stop(min(2.0, self.settings.shutdown_grace_s))

    # -- helpers for the API -------------------------------------------------------------

    def project(self, project_id: str) -> ProjectRuntime | None:
        return self.projects.get(project_id)

    def snapshot(self, project_id: str) -> list[bytes]:
        """One ``state`` event per breaker; for a project without breakers, one sync marker
        (breaker ``""``, closed) so a client waiting for its initial sync (tripswitch-py's
        ``connect()``) completes: an empty snapshot is a complete sync. No real breaker can be
        called ``""`` (names are 1..200 characters)."""
        p = self.projects.get(project_id)
        if p is None or not p.breakers:
            return [encode_state(SYNC_MARKER)]
        return [encode_state(b.sse_payload()) for b in p.breakers.values()]

    def publish_farewell(self, project_id: str, name: str) -> None:
        """Tell connected clients a breaker name is gone: a final closed/1.0 event."""
        self.publish(
            project_id, encode_state({"breaker": name, "state": "closed", "allow_rate": 1.0})
        )

    def publish(self, project_id: str, data: bytes, breaker: BreakerRuntime | None = None) -> None:
        """Send an encoded state event to the project's streams: this process's own, or, in
        replica mode, every replica's (with the breaker's state, so every replica's copy
        follows the evaluator)."""
        if self.bus is not None:
            self.bus.send_state(project_id, data, breaker)
        else:
            self.hub.publish(project_id, data)

    def revoke(self, *, key_id: str | None = None, project_id: str | None = None) -> None:
        """A key or project is gone: drop cached keys and end its streams (on every replica)."""
        self.forget_keys()
        self.hub.close_where(key_id=key_id, project_id=project_id)
        if self.bus is not None:
            self.bus.send_revocation(key_id, project_id)

    def leads(self, project_id: str) -> bool:
        """Does this process evaluate the project? (Always, unless replicas share the work.)"""
        return self.bus is None or project_id in self.bus.led


def channel_dict(ch: m.Channel) -> dict[str, Any]:
    return {
        "id": ch.id,
        "project_id": ch.project_id,
        "name": ch.name,
        "channel": ch.channel,
        "config": dict(ch.config or {}),
        "events": list(ch.events or []),
        "enabled": ch.enabled,
    }


def event_payload(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event["id"],
        "project_id": event["project_id"],
        "breaker_id": event["breaker_id"],
        "breaker_name": event["breaker_name"],
        "from_state": event["from_state"],
        "to_state": event["to_state"],
        "reason": event["reason"],
        "timestamp": iso(event["ts_us"]),
    }
