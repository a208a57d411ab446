"""Replica mode: several ``tripwise serve`` processes on one PostgreSQL database and one Redis.

What lives where:

- PostgreSQL: definitions, keys, breaker states, events, idempotency records (as in one
  process; the idempotency reservation already works across processes).
- Redis (every key and channel under ``<prefix>:``):
  * ``lease:<project>``: the replica evaluating the project (``SET NX PX``, renewed every
    second by its holder, expiring 3 s after the holder stops renewing). Only the holder
    evaluates, persists state changes and events, and sends notifications.
  * the ``bus`` pub/sub channel, carrying
    - ``samples``: a replica that is not the project's evaluator forwards the batch it
      validated (grouped columns) to the evaluator;
    - ``state``: every state event (trips, ramp steps, overrides, breakers created or
      removed), with the breaker's state; every replica, the sender included, pushes it to
      its own SSE clients exactly once and updates its copy of the breaker;
    - ``config``: an admin write happened; every other replica reloads its in-memory
      projection from PostgreSQL;
    - ``revoke``: a key or project is gone; every replica ends its streams.
  * ``rate:<bucket>``: shared token buckets (per key, per project ingest, per client for
    failed authentication); ``replay:<project>:<digest>``: applied ingest signatures, kept
    for the signature window.

Samples are not persisted (as in one process): a batch forwarded while no replica holds the
project's lease, or held in the windows of a replica that dies, is lost; the new evaluator
starts with empty windows and the persisted states.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import math
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from tripwise.server.control import ControlPlane
    from tripwise.server.evaluator.breaker import BreakerRuntime

log = logging.getLogger("tripwise.server.replica")

LEASE_MS = 3_000
RENEW_S = 1.0
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""
_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local v = redis.call('hmget', KEYS[1], 't', 'ts')
local tokens = tonumber(v[1]) or burst
local ts = tonumber(v[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('hset', KEYS[1], 't', tokens, 'ts', now)
redis.call('pexpire', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


def _unavailable(exc: Exception) -> Exception:
    from tripwise.server.errors import ApiError

    log.warning("the shared Redis is unavailable: %s", exc)
    return ApiError(503, "the shared Redis is unavailable; retry", "unavailable")


class ReplicaBus:
    """This replica's side of the shared Redis: leases, the bus, shared limits."""

    def __init__(self, plane: ControlPlane, url: str, prefix: str) -> None:
        import redis.asyncio as aioredis

        self.plane = plane
        self.id = uuid.uuid4().hex[:12]
        self.prefix = prefix.rstrip(":")
        self.channel = f"{self.prefix}:bus"
        self.redis = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._sub_conn = aioredis.Redis.from_url(url, socket_connect_timeout=2)
        self.led: set[str] = set()
        self._out: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._reload = asyncio.Event()
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)
        self._bucket = self.redis.register_script(_BUCKET)
        self.ready = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.redis.ping()
        pubsub = self._sub_conn.pubsub()
        await pubsub.subscribe(self.channel)
        self._tasks = [
            asyncio.create_task(self._listen(pubsub), name="tripwise-bus-listen"),
            asyncio.create_task(self._publish_loop(), name="tripwise-bus-publish"),
            asyncio.create_task(self._lease_loop(), name="tripwise-leases"),
            asyncio.create_task(self._reload_loop(), name="tripwise-reload"),
        ]

    async def stop(self) -> None:
        """Hand every lease back at once (another replica takes over without waiting)."""
        for _ in range(50):  # let queued messages out first
            if self._out.empty():
                break
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for pid in list(self.led):
            with contextlib.suppress(Exception):
                await self._release(keys=[self._lease(pid)], args=[self.id])
        self.led.clear()
        for conn in (self.redis, self._sub_conn):
            close = getattr(conn, "aclose", None) or conn.close  # aclose from redis 5.0.1
            with contextlib.suppress(Exception):
                await close()

    def _lease(self, pid: str) -> str:
        return f"{self.prefix}:lease:{pid}"

    # -- sending -----------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        message["from"] = self.id
        self._out.put_nowait(orjson.dumps(message))

    def send_state(self, pid: str, data: bytes, breaker: BreakerRuntime | None) -> None:
        msg: dict[str, Any] = {"t": "state", "p": pid, "d": base64.b64encode(data).decode()}
        if breaker is not None:
            msg["b"] = breaker.id
            msg["s"] = breaker.persisted_state()
        self._send(msg)

    def send_samples(self, pid: str, groups: list[Any]) -> None:
        self._send({"t": "samples", "p": pid, "g": groups})

    def send_config(self) -> None:
        self._send({"t": "config"})

    def send_revocation(self, key_id: str | None, project_id: str | None) -> None:
        self._send({"t": "revoke", "k": key_id, "p": project_id})

    async def _publish_loop(self) -> None:
        while True:
            first = await self._out.get()
            batch = [first]
            while not self._out.empty() and len(batch) < 100:
                batch.append(self._out.get_nowait())
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for raw in batch:
                        pipe.publish(self.channel, raw)
                    await pipe.execute()
            except Exception as exc:
                log.warning("could not publish %d bus messages: %s", len(batch), exc)
                await asyncio.sleep(0.2)

    # -- receiving ---------------------------------------------------------------------------

    async def _listen(self, pubsub: Any) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except Exception as exc:
                log.warning("bus connection failed (%s); resubscribing", exc)
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    await pubsub.subscribe(self.channel)
                continue
            if message is None:
                continue
            try:
                self._handle(orjson.loads(message["data"]))
            except Exception:
                log.exception("could not handle a bus message")

    def _handle(self, msg: dict[str, Any]) -> None:
        plane = self.plane
        kind = msg["t"]
        mine = msg.get("from") == self.id
        if kind == "state":
            project = plane.projects.get(msg["p"])
            if not mine and project is not None and "b" in msg:
                b = project.breakers.get(msg["b"])
                if b is not None:
                    b.adopt_state(msg["s"])
            plane.hub.publish(msg["p"], base64.b64decode(msg["d"]))
        elif kind == "samples":
            project = plane.projects.get(msg["p"])
            if project is not None and msg["p"] in self.led:
                project.apply_groups(msg["g"])
        elif kind == "config" and not mine:
            self._reload.set()
        elif kind == "revoke":
            plane.forget_keys()
            if not mine:
                plane.hub.close_where(key_id=msg.get("k"), project_id=msg.get("p"))

    async def _reload_loop(self) -> None:
        while True:
            await self._reload.wait()
            self._reload.clear()
            try:
                await self.plane.reload()
                self.plane.forget_keys()
            except Exception:
                log.exception("could not reload the definitions")

    # -- leases ------------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        while True:
            try:
                await self._leases_once()
            except Exception as exc:
                if self.led:
                    log.warning("lease round failed (%s): evaluation paused here", exc)
                self.led.clear()  # without Redis we cannot know we still lead: stop
            self.ready.set()
            await asyncio.sleep(RENEW_S)

    async def _leases_once(self) -> None:
        pids = list(self.plane.projects)
        for pid in pids:
            key = self._lease(pid)
            if pid in self.led:
                if not await self._renew(keys=[key], args=[self.id, LEASE_MS]):
                    self.led.discard(pid)
                    log.warning("lost the evaluation lease of project %s", pid)
            elif await self.redis.set(key, self.id, nx=True, px=LEASE_MS):
                self.led.add(pid)
                log.info("evaluating project %s (lease taken)", pid)
        for pid in self.led - set(pids):
            self.led.discard(pid)

    # -- shared limits ---------------------------------------------------------------------

    async def acquire(self, bucket: str, rate: float, burst: int) -> float:
        """Take a token from a bucket shared by every replica; 0.0 or seconds to wait."""
        try:
            wait = await self._bucket(
                keys=[f"{self.prefix}:rate:{bucket}"], args=[rate, burst, time.time()]
            )
        except Exception as exc:
            raise _unavailable(exc) from exc
        value = float(wait)
        return 0.0 if value <= 0 or math.isnan(value) else value

    async def claim_batch(self, pid: str, token: str, window_ms: int) -> bool:
        """Reserve an ingest signature for the project; False when already applied."""
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        key = f"{self.prefix}:replay:{pid}:{digest}"
        try:
            return bool(await self.redis.set(key, b"1", nx=True, px=2 * window_ms))
        except Exception as exc:
            raise _unavailable(exc) from exc

    async def release_batch(self, pid: str, token: str) -> None:
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        await self.redis.delete(f"{self.prefix}:replay:{pid}:{digest}")

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False
