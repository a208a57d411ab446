"""The gateway's live objects built from a frozen config: backends with their breakers, retry
budgets and HTTP clients, answer caches, operator overrides.

A reload builds a new :class:`Runtime`; breakers whose backend kept the same breaker settings
carry over (state and counts survive a SIGHUP), and requests in flight finish on the objects
they started with.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tripwise.core.breaker import CircuitBreaker
from tripwise.core.registry import Registry
from tripwise.core.states import Mode, State
from tripwise.gateway.checks import BackendChecks
from tripwise.gateway.config import BackendConfig, GatewayConfig, RouteConfig, build_condition
from tripwise.gateway.jsonio import dumps, loads
from tripwise.gateway.upstream import Upstream
from tripwise.policies.cache import MemoryCache
from tripwise.policies.retry import Backoff, RetryBudget

logger = logging.getLogger("tripwise.gateway")

# Request fields that do not change the answer (so they do not split the cache).
_UNKEYED = ("stream", "stream_options", "user", "metadata", "store")


class ClientGone(Exception):
    """The client went away mid-stream: not the backend's fault (ignored by its breaker)."""


class ClientFault(Exception):
    """The backend rejected the request itself (HTTP 4xx): not its fault, no failover."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        super().__init__(f"upstream rejected the request with HTTP {status}")


@dataclass
class Override:
    """An operator's forced state on a breaker."""

    action: str  # force_open | force_closed
    reason: str
    set_at: float  # wall clock
    until: float | None  # wall clock; None: until reset

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "set_at": self.set_at,
            "expires_at": self.until,
        }


class LiveBackend:
    """An OpenAI-compatible or Ollama backend with its breaker, retry budget and client."""

    kind = "live"

    def __init__(self, cfg: BackendConfig, breaker: CircuitBreaker, upstream: Upstream) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.breaker = breaker
        self.upstream = upstream
        self.backoff = Backoff(
            cfg.retry.backoff_initial, cfg.retry.backoff_multiplier, cfg.retry.backoff_max
        )
        self.budget = RetryBudget(cfg.retry.budget_ratio, min_retries=cfg.retry.budget_min_retries)
        self.checks = BackendChecks(cfg.checks, cfg.json_schema)
        self.timeouts = 0
        self.override: Override | None = None

    def expire_override(self, now: float | None = None) -> None:
        ov = self.override
        if ov is not None and ov.until is not None and (now or time.time()) >= ov.until:
            logger.warning(
                "override %s on breaker %r expired (reason was: %s)",
                ov.action,
                self.name,
                ov.reason,
            )
            self.override = None
            self.breaker.reset()

    def rejecting(self) -> bool:
        """True while the breaker turns calls away (open and not yet due for a probe)."""
        b = self.breaker
        if b.mode is Mode.FORCED_OPEN:
            return True
        return b.mode is Mode.NORMAL and b.state is State.OPEN and b.retry_after() > 0

    def retry_after(self) -> float:
        """Seconds until this backend may be tried again (forced open: until its TTL)."""
        if self.breaker.mode is Mode.FORCED_OPEN:
            ov = self.override
            if ov is not None and ov.until is not None:
                return max(0.0, ov.until - time.time())
            return math.inf
        return max(0.0, self.breaker.retry_after())


class CacheBackend:
    """Answers stored after every good live answer, served with their age."""

    kind = "cache"

    def __init__(self, cfg: BackendConfig, redis_client: Any = None, prefix: str = "") -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.ttl = cfg.ttl
        self._memory = MemoryCache(cfg.max_entries) if cfg.store == "memory" else None
        self._redis = redis_client if cfg.store == "redis" else None
        self._prefix = f"{prefix}:cache:{cfg.name}:"

    async def get(self, key: str) -> tuple[dict[str, Any], float] | None:
        if self._memory is not None:
            return self._memory.get(key)
        assert self._redis is not None
        try:
            raw = self._redis.get(self._prefix + key)
            if inspect.isawaitable(raw):  # redis.asyncio, or a sync redis.Redis
                raw = await raw
        except Exception as exc:  # a cache outage is a miss, never an error
            logger.warning("cache %r unavailable: %r", self.name, exc)
            return None
        if raw is None:
            return None
        try:
            entry = loads(raw)
            return entry["v"], float(entry["t"])
        except (ValueError, KeyError, TypeError):
            return None

    async def set(self, key: str, value: dict[str, Any]) -> None:
        now = time.time()
        if self._memory is not None:
            self._memory.set(key, value, now, self.ttl)
            return
        assert self._redis is not None
        try:
            done = self._redis.set(
                self._prefix + key, dumps({"v": value, "t": now}), ex=max(1, int(self.ttl))
            )
            if inspect.isawaitable(done):
                await done
        except Exception as exc:
            logger.warning("cache %r unavailable: %r", self.name, exc)


class _SafeFormat(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class DegradedBackend:
    """A static or templated answer (``{model}``, ``{route}``, ``{reason}`` are filled in)."""

    kind = "degraded"

    def __init__(self, cfg: BackendConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name

    def message(self, **fields: str) -> str:
        try:
            return self.cfg.message.format_map(_SafeFormat(fields))
        except (ValueError, IndexError, AttributeError):
            return self.cfg.message


Backend = LiveBackend | CacheBackend | DegradedBackend


def cache_key(route: str, body: Mapping[str, Any]) -> str:
    """The exact key of a normalised request: its answer-changing fields, keys sorted."""
    import json

    keyed = {k: v for k, v in body.items() if k not in _UNKEYED}
    text = json.dumps(keyed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{route}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()


def make_breaker(cfg: BackendConfig, registry: Registry, store: Any) -> CircuitBreaker:
    b = cfg.breaker
    trip_on = build_condition(b.trip_on) if b.trip_on is not None else None
    if trip_on is None:
        from tripwise.core.conditions import consecutive_failures

        trip_on = consecutive_failures(3)
    return CircuitBreaker(
        trip_on,
        name=cfg.name,
        half_open_after=b.half_open_after,
        recovery_threshold=b.recovery_threshold,
        half_open_max_calls=b.half_open_max_calls,
        ignore_exceptions=(ClientGone, ClientFault),
        track_latency=True,
        registry=registry,
        store=store,
    )


class Runtime:
    """Everything one config version needs at request time."""

    def __init__(
        self,
        cfg: GatewayConfig,
        *,
        registry: Registry,
        previous: Runtime | None = None,
        redis_client: Any = None,
        store: Any = None,
    ) -> None:
        self.cfg = cfg
        self.registry = registry
        self.backends: dict[str, Backend] = {}
        old = previous.backends if previous is not None else {}
        for name, bc in cfg.backends.items():
            if bc.live:
                prev = old.get(name)
                if (
                    isinstance(prev, LiveBackend)
                    and prev.cfg.breaker == bc.breaker
                    and prev.cfg.type == bc.type
                ):
                    breaker = prev.breaker  # state and counts survive the reload
                else:
                    if registry.find(name) is not None:
                        registry.remove(name)
                    breaker = make_breaker(bc, registry, store)
                live = LiveBackend(bc, breaker, Upstream(bc))
                if isinstance(prev, LiveBackend) and prev.breaker is breaker:
                    live.override = prev.override
                    live.timeouts = prev.timeouts
                self.backends[name] = live
            elif bc.type == "cache":
                prev_cache = old.get(name)
                if isinstance(prev_cache, CacheBackend) and prev_cache.cfg == bc:
                    self.backends[name] = prev_cache  # keep the stored answers
                else:
                    self.backends[name] = CacheBackend(bc, redis_client, cfg.redis_prefix)
            else:
                self.backends[name] = DegradedBackend(bc)
        for name in list(old):
            if name not in self.backends and registry.find(name) is not None:
                registry.remove(name)
        self.chains: dict[str, tuple[Backend, ...]] = {
            rname: tuple(self.backends[n] for n in r.chain) for rname, r in cfg.routes.items()
        }

    def route(self, model: str | None) -> RouteConfig | None:
        return self.cfg.route_for(model)

    def live_backends(self) -> list[LiveBackend]:
        return [b for b in self.backends.values() if isinstance(b, LiveBackend)]

    def upstreams_to_close(self, newer: Runtime) -> list[Upstream]:
        """Clients this runtime owns that ``newer`` does not use."""
        keep = {id(b.upstream) for b in newer.live_backends()}
        return [b.upstream for b in self.live_backends() if id(b.upstream) not in keep]
