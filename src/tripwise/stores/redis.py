"""Breaker state shared across processes and hosts, on Redis.

``RedisStore`` keeps each breaker's state, trip count, opened-at time, generation, manual mode
and half-open probe permits (leased tokens) in Redis and changes them only through Lua scripts
(atomic; see :mod:`tripwise.stores.redis_scripts`). Every process keeps a cached copy inside its
breakers, so a CLOSED call costs no round trip; processes learn about changes by pub/sub, with a
periodic refresh as a safety net. When Redis is unreachable, breakers follow ``on_unavailable``
and the store reconciles when Redis returns; a state Redis lost (FLUSHALL, eviction...) is
re-created from local state. On an event loop's thread the slow path never waits on Redis (it
uses the loop's asyncio client). Standalone, Sentinel and Cluster clients are supported.
The opt-in ``mode="shared_window"`` also aggregates the
outcomes of all processes in Redis time buckets (see :mod:`tripwise.stores.redis_window`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tripwise.core.shared import SharedState
from tripwise.core.states import State
from tripwise.stores import redis_scripts as lua
from tripwise.stores.base import UnavailablePolicy, check_policy
from tripwise.stores.redis_client import (
    check_namespace,
    check_seconds,
    is_cluster,
    make_async_client,
    make_client,
)
from tripwise.stores.redis_link import RedisLink, RedisState, parse_message, parse_reply

if TYPE_CHECKING:
    from tripwise.core.breaker import CircuitBreaker
    from tripwise.core.registry import Registry

logger = logging.getLogger("tripwise.stores.redis")

MODES = ("shared_state", "shared_window")
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_TIMEOUTS = (RedisTimeoutError, TimeoutError, asyncio.TimeoutError)
COUNTERS = (
    "redis_errors",
    "redis_timeouts",
    "outages",
    "resyncs",
    "refreshes",
    "pushes",
    "flushes",
    "degraded_decisions",
    "state_losses",
    "permits_reclaimed",
    "controls",
)
_live: weakref.WeakSet[RedisStore] = weakref.WeakSet()


def live_stores() -> list[RedisStore]:
    """Every RedisStore of this process that is not closed (for metrics exporters)."""
    return [store for store in list(_live) if not store.closed]


class RedisStore:
    """Share breaker state across processes through Redis.

    ``RedisStore("redis://host:6379/0", namespace="myapp")`` (or a ``redis.Redis``,
    ``redis.asyncio.Redis``, Sentinel ``master_for(...)`` or ``redis.cluster.RedisCluster``
    client), then ``CircuitBreaker(..., store=store, name=...)``.

    - ``mode``: ``"shared_state"`` (default) or ``"shared_window"`` (outcomes of all processes
      also feed the time-window conditions; see docs/redis.md for its staleness bound).
    - ``on_unavailable``: ``"local"`` (default), ``"fail_open"`` or ``"fail_closed"``.
    - ``timeout``: the longest a Redis command may hold a guarded call (seconds).
    - ``refresh_interval``: how often cached state is re-read (safety net under pub/sub).
    - ``retry_interval``: how often an unreachable Redis is tried again.
    - ``flush_interval``: shared-window mode: how often outcomes are flushed in a batch.
    - ``probe_lease``: a half-open probe permit whose holder stops renewing it (the process
      died or lost Redis) frees itself after this long; running probes are renewed on every
      refresh, so it must be at least ``2 * refresh_interval``.
    - ``key_ttl``: keys of a breaker no process uses expire after this long.
    """

    shared = True

    def __init__(
        self,
        url_or_client: Any = "redis://127.0.0.1:6379/0",
        *,
        namespace: str = "tripwise",
        mode: str = "shared_state",
        on_unavailable: str | UnavailablePolicy = UnavailablePolicy.LOCAL,
        timeout: float = 0.1,
        refresh_interval: float = 1.0,
        retry_interval: float = 0.5,
        flush_interval: float = 0.05,
        probe_lease: float | None = None,
        key_ttl: float = 86400.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.namespace = check_namespace(namespace)
        self.on_unavailable = check_policy(on_unavailable)
        self.timeout = check_seconds("timeout", timeout)
        self.refresh_interval = check_seconds("refresh_interval", refresh_interval)
        self.retry_interval = check_seconds("retry_interval", retry_interval)
        self.flush_interval = check_seconds("flush_interval", flush_interval)
        if probe_lease is None:
            probe_lease = 3 * self.refresh_interval + self.timeout
        lease = check_seconds("probe_lease", probe_lease)
        if lease < 2 * self.refresh_interval:
            raise ValueError(
                f"probe_lease ({lease!r} s) must be at least 2 * refresh_interval "
                f"({self.refresh_interval!r} s): running probes renew their permits on refresh"
            )
        self.probe_lease_ms = round(lease * 1000)
        self.key_ttl_ms = round(check_seconds("key_ttl", key_ttl) * 1000)
        self.client = make_client(url_or_client, self.timeout)
        self.cluster = is_cluster(self.client)
        self.channel = f"{self.namespace}:events"
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._scripts = {src: self.client.register_script(src) for src in lua.STATE_SCRIPTS}
        self._lock = threading.Lock()
        self._links: dict[str, weakref.WeakSet[Any]] = {}
        self._available = True
        self._policy_pending = False
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._subscribed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pid = -1
        self._window: Any = None
        # Event loops' own asyncio clients (slow paths on a loop thread never block it).
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._tasks: set[asyncio.Future[Any]] = set()
        if mode == "shared_window":
            from tripwise.stores.redis_window import WindowSync

            self._window = WindowSync(self)
        _live.add(self)

    # ------------------------------------------------------------------ public

    @property
    def available(self) -> bool:
        """False while Redis is unreachable (breakers then follow ``on_unavailable``)."""
        return self._available

    @property
    def closed(self) -> bool:
        return self._stopping.is_set()

    def stats(self) -> dict[str, Any]:
        """Health and counters for monitoring (exported to Prometheus by
        ``tripwise.observe.register_metrics``):

        - ``available``: False while Redis is unreachable; ``breakers``: breakers attached.
        - ``redis_errors``: failed Redis operations (``redis_timeouts`` of them timed out).
        - ``outages`` / ``resyncs``: times Redis went away / came back and state was re-read.
        - ``degraded_decisions``: slow-path decisions (trip, probe permit, recovery, reset)
          breakers made without Redis, by the ``on_unavailable`` policy.
        - ``refreshes``, ``pushes`` (changes applied from other processes), ``flushes``.
        - ``state_losses``: times a breaker's shared state was found lost (FLUSHALL, DEL,
          eviction, a Redis restart without persistence) and re-created from local state.
        - ``permits_reclaimed``: probe permits freed after their request or report failed.
        - ``controls``: manual actions (force_open, disable, reset, half_open) sent.
        """
        with self._lock:
            breakers = sum(len(s) for s in self._links.values())
            return {"available": self._available, "breakers": breakers, **self._counters}

    def serves(self, registry: Registry) -> bool:
        """Whether a breaker of ``registry`` uses this store (or it is the registry's default)."""
        if registry.default_store is self:
            return True
        for link in self.links():
            breaker = link.breaker
            if breaker is not None and breaker.registry is registry:
                return True
        return False

    def last_control(self, name: str) -> dict[str, Any] | None:
        """The last manual action on breaker ``name`` for the fleet: ``action``, ``by``,
        ``reason``, ``process`` and ``at`` (Unix time, Redis's clock), or None."""
        raw = self.client.hmget(self.state_keys(name)[0], "ca", "cb", "cr", "cp", "cat")
        if raw[0] is None:
            return None
        action, by, reason, process, at = (
            v.decode() if isinstance(v, bytes) else (v or "") for v in raw
        )
        return {
            "action": action,
            "by": by or None,
            "reason": reason or None,
            "process": process,
            "at": int(at) / 1000.0 if at else None,
        }

    def state_keys(self, name: str) -> list[str]:
        """The state hash and probe-permit keys of breaker ``name`` (one Cluster slot)."""
        base = f"{self.namespace}:{{{name}}}"
        return [f"{base}:state", f"{base}:probes"]

    def attach(self, breaker: CircuitBreaker) -> RedisLink:
        """Link ``breaker`` to the shared state (called by the breaker's constructor)."""
        self._start_threads()
        link = RedisLink(self, breaker)
        if self._window is not None:
            self._window.attach(link, breaker)
        with self._lock:
            self._links.setdefault(breaker.name, weakref.WeakSet()).add(link)
        return link

    def close(self) -> None:
        """Stop the background threads and close the connections."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)
        if self._window is not None:
            self._window.flush()
        self.client.close()

    async def aclose(self) -> None:
        """Close from async code: waits for this loop's Redis commands in flight, closes its
        asyncio client, and joins the threads off the loop."""
        loop = asyncio.get_running_loop()
        pending = [t for t in list(self._tasks) if t.get_loop() is loop]
        if pending:
            await asyncio.wait(pending, timeout=self.timeout * 4)
        entry = self._aclients.pop(loop, None)
        if entry is not None and entry[0] is not None:
            with contextlib.suppress(Exception):
                await entry[0].aclose()
        await asyncio.to_thread(self.close)

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"RedisStore(namespace={self.namespace!r}, mode={self.mode!r}, "
            f"on_unavailable={self.on_unavailable.value!r}, available={self._available})"
        )

    # ------------------------------------------------------------------ used by links

    def run_batch(self, calls: list[tuple[Any, list[str], list[Any]]]) -> list[Any]:
        """Run ``(script, keys, args)`` calls in one pipeline (Redis Cluster: one by one, as
        redis-py does not pipeline scripts there; each call goes to its key's node)."""
        if self.cluster:
            return [script(keys=keys, args=args) for script, keys, args in calls]
        pipe = self.client.pipeline(transaction=False)
        for script, keys, args in calls:
            script(keys=keys, args=args, client=pipe)
        return list(pipe.execute())

    def script_args(self, link: RedisLink, args: tuple[Any, ...]) -> list[Any]:
        """The common arguments (see redis_scripts) followed by the script's own."""
        return [self.channel, link.name, self.key_ttl_ms, uuid.uuid4().hex, *link.seed(), *args]

    def run_state_script(
        self, src: str, link: RedisLink, args: tuple[Any, ...]
    ) -> tuple[RedisState, bool, bool] | None:
        """Run one state script for ``link``; None when Redis is (or just became) unreachable."""
        if not self._available:
            self._count("degraded_decisions")
            return None
        try:
            reply = self._scripts[src](keys=link.keys, args=self.script_args(link, args))
        except _UNREACHABLE as exc:
            self.mark_unavailable(exc)
            self._count("degraded_decisions")
            return None
        except RedisError:
            self._count("redis_errors")
            self._count("degraded_decisions")
            logger.exception("Redis script failed for breaker %r; deciding locally", link.name)
            return None
        return parse_reply(reply)

    # ------------------------------------------------------------------ never block a loop

    @staticmethod
    def running_loop() -> asyncio.AbstractEventLoop | None:
        """The event loop running on this thread, if any (its slow paths must not block)."""
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def submit(
        self,
        loop: asyncio.AbstractEventLoop,
        src: str,
        link: RedisLink,
        args: tuple[Any, ...],
        then: Callable[[tuple[RedisState, bool, bool] | None], None],
    ) -> bool:
        """Run a state script without blocking ``loop``: on the loop's own asyncio client (or,
        for clients it cannot mirror, such as Redis Cluster, in a worker thread); ``then`` gets
        the answer (None: Redis failed) on the loop thread. False: Redis is unreachable, nothing
        was sent (decide by the policy, as the sync path does)."""
        if not self._available or self._stopping.is_set():
            self._count("degraded_decisions")
            return False
        entry = self._aclients.get(loop)
        if entry is None:
            client = make_async_client(self.client, self.timeout)
            scripts = (
                {src: client.register_script(src) for src in lua.STATE_SCRIPTS}
                if client is not None
                else None
            )
            entry = self._aclients[loop] = (client, scripts)
        task = loop.create_task(self._arun(entry, src, link, self.script_args(link, args), then))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _arun(
        self,
        entry: tuple[Any, Any],
        src: str,
        link: RedisLink,
        args: list[Any],
        then: Callable[[tuple[RedisState, bool, bool] | None], None],
    ) -> None:
        scripts = entry[1]
        answer = None
        try:
            if scripts is not None:
                call = scripts[src](keys=link.keys, args=args)
            else:
                call = asyncio.get_running_loop().run_in_executor(
                    None, lambda: self._scripts[src](keys=link.keys, args=args)
                )
            reply = await asyncio.wait_for(call, self.timeout * 2)
            answer = parse_reply(reply)
        except (*_UNREACHABLE, asyncio.TimeoutError) as exc:
            self.mark_unavailable(exc)
            self._count("degraded_decisions")
        except RedisError:
            self._count("redis_errors")
            self._count("degraded_decisions")
            logger.exception("Redis script failed for breaker %r; deciding locally", link.name)
        except asyncio.CancelledError:
            raise
        try:
            then(answer)
        except Exception:
            logger.exception("Redis store %r: applying an answer failed", self.namespace)

    def policy_state(self, breaker: CircuitBreaker | None, link: RedisLink) -> SharedState | None:
        """What a breaker adopts while Redis is unreachable (None: its own local state).

        The trip count stays the fleet's as last read: a breaker that "trips" while failing
        open does not change state, so it is not a trip (and resync would undo it anyway).
        """
        if breaker is None or self.on_unavailable is UnavailablePolicy.LOCAL:
            return None
        trips = link.known.trip_count if link.known is not None else breaker.trip_count
        if self.on_unavailable is UnavailablePolicy.FAIL_OPEN:
            return SharedState(State.CLOSED, trips, link.gen)
        return SharedState(State.OPEN, trips, link.gen, 0.0, self.retry_interval, 0)

    def state_lost(self, link: RedisLink, shared: RedisState) -> None:
        """``link`` found its breaker's shared state re-created (lost by Redis)."""
        self._count("state_losses")
        logger.warning(
            "Redis store %r: the shared state of breaker %r was lost (flushed, deleted, evicted "
            "or Redis restarted empty) and re-created as %s, generation %d",
            self.namespace,
            link.name,
            shared.state.value,
            shared.generation,
        )

    def log_control(
        self, name: str, action: str, by: str | None, reason: str | None, shared: bool
    ) -> None:
        self._count("controls")
        level = logging.WARNING if action in ("force_open", "disable") or by else logging.INFO
        logger.log(
            level,
            "breaker %r: %s by %s (%s) %s",
            name,
            action,
            by or "unknown",
            reason or "no reason given",
            "for the whole fleet" if shared else "locally only: Redis unreachable, sent on resync",
        )

    def mark_unavailable(self, exc: BaseException) -> None:
        """Record a failed Redis operation; the first one of an outage switches to the policy.

        May run under a breaker's lock, so the policy is applied by the maintenance thread.
        """
        with self._lock:
            self._counters["redis_errors"] += 1
            if isinstance(exc, _TIMEOUTS):
                self._counters["redis_timeouts"] += 1
            if not self._available:
                return
            self._available = False
            self._subscribed.clear()
            self._counters["outages"] += 1
            self._policy_pending = self.on_unavailable is not UnavailablePolicy.LOCAL
        logger.warning(
            "Redis store %r unreachable (%s: %s); breakers follow the %r policy until it returns",
            self.namespace,
            type(exc).__name__,
            exc,
            self.on_unavailable.value,
        )
        self._wake.set()

    def links(self, name: str | None = None) -> list[RedisLink]:
        with self._lock:
            if name is not None:
                return list(self._links.get(name, ()))
            return [link for group in self._links.values() for link in group]

    def _count(self, counter: str, n: int = 1) -> None:
        with self._lock:
            self._counters[counter] += n

    # ------------------------------------------------------------------ background threads

    def _start_threads(self) -> None:
        with self._lock:
            if self._pid == os.getpid() or self._stopping.is_set():
                return
            self._pid = os.getpid()  # (re)start after a fork: threads do not survive it
            self._threads = [
                threading.Thread(target=self._listen, name="tripwise-redis-pubsub", daemon=True),
                threading.Thread(target=self._maintain, name="tripwise-redis-sync", daemon=True),
            ]
            if self._window is not None:
                self._threads.append(
                    threading.Thread(
                        target=self._window.run, name="tripwise-redis-flush", daemon=True
                    )
                )
        for thread in self._threads:
            thread.start()
        # Listen before the first read, so no announcement falls between the two (not on an
        # event loop's thread: it must never block; the refresh catches anything missed).
        if self.running_loop() is None:
            self._subscribed.wait(self.timeout * 2)

    def _listen(self) -> None:
        """Apply announcements of other processes as they come (the pub/sub thread)."""
        resubscribe = False
        while not self._stopping.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                self._subscribed.set()
                if resubscribe:
                    self._wake.set()  # something may have been announced meanwhile: re-read
                resubscribe = True
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None and message.get("type") == "message":
                        self._on_message(message["data"])
            except _UNREACHABLE as exc:
                self.mark_unavailable(exc)
                self._stopping.wait(self.retry_interval)
            except Exception:
                logger.exception("Redis store %r: pub/sub listener failed", self.namespace)
                self._stopping.wait(self.retry_interval)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()

    def _on_message(self, data: Any) -> None:
        if not self._available:
            # Not resynchronised yet: the resync reads the state anyway, and must compare it
            # with what this process did during the outage before anything overwrites that.
            return
        name, shared = parse_message(data)
        for link in self.links(name):
            gen = link.gen
            link.apply(shared, "push")
            if link.gen != gen:
                self._count("pushes")

    def _maintain(self) -> None:
        """Refresh cached state, watch Redis's health, resynchronise after an outage."""
        while not self._stopping.is_set():
            self._wake.wait(self.refresh_interval if self._available else self.retry_interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            if self._policy_pending:
                self._policy_pending = False
                for link in self.links():
                    policy = self.policy_state(link.breaker, link)
                    if policy is not None:
                        link.apply(policy, "force")
            try:
                self._refresh()
            except Exception:
                logger.exception("Redis store %r: refresh failed", self.namespace)

    def _refresh(self) -> None:
        links = self.links()
        was_available = self._available
        extra = [(link, src, args) for link in links for src, args in link.housekeeping()]
        try:
            if links:
                calls = [(self._scripts[lua.READ], link.keys, self.script_args(link, ()))
                         for link in links]  # fmt: skip
                calls += [
                    (self._scripts[src], link.keys, self.script_args(link, args))
                    for link, src, args in extra
                ]
                replies = self.run_batch(calls)
            else:
                self.client.ping()
                replies = []
        except _UNREACHABLE as exc:
            self.mark_unavailable(exc)
            for link, src, args in extra:  # try again next time
                if src == lua.RELEASE:
                    for token in args:
                        link.orphans.setdefault(token, 1)
            return
        self._count("refreshes")
        if not was_available:
            with self._lock:
                self._available = True
                self._counters["resyncs"] += 1
            logger.warning(
                "Redis store %r reachable again; resynchronising %d breakers",
                self.namespace,
                len(links),
            )
        for (_link, src, _), reply in zip(extra, replies[len(links) :], strict=True):
            if src == lua.RELEASE and parse_reply(reply)[1]:
                self._count("permits_reclaimed")
        for link, reply in zip(links, replies[: len(links)], strict=True):
            shared, _, _ = parse_reply(reply)
            if was_available:
                link.apply(shared, "refresh")
            else:
                link.resync(shared)
