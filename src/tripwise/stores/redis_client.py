"""The Redis connection a :class:`~tripwise.stores.redis.RedisStore` uses, and its option checks.

The store always talks through a synchronous pool of its own, with its ``timeout`` on every
socket operation and no retries, whatever client it was given: that is what bounds how long a
guarded call can wait on a slow Redis.
"""

from __future__ import annotations

import math
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def check_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def check_namespace(namespace: Any) -> str:
    if not isinstance(namespace, str) or not namespace or "{" in namespace or "}" in namespace:
        raise ValueError(
            f"namespace must be a non-empty string without '{{' or '}}', got {namespace!r}"
        )
    return namespace


def is_cluster(client: Any) -> bool:
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def make_client(url_or_client: Any, timeout: float) -> Any:
    """A sync client with ``timeout`` on every socket operation and no retries.

    A URL is used as is; a client (sync or ``redis.asyncio``) lends its connection settings;
    a ``redis.cluster.RedisCluster`` (or its asyncio twin) lends its startup nodes and
    credentials. The store always applies its own timeouts, so a slow Redis cannot hold a
    guarded call longer than ``timeout``.
    """
    overrides: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }
    manager = getattr(url_or_client, "nodes_manager", None)
    if manager is not None:  # Redis Cluster
        from redis.cluster import ClusterNode, RedisCluster

        nodes = [
            ClusterNode(n.host, n.port)  # type: ignore[no-untyped-call]
            for n in manager.startup_nodes.values()
        ]
        kwargs = getattr(manager, "connection_kwargs", {}) or {}
        creds = {k: kwargs[k] for k in ("username", "password") if kwargs.get(k)}
        return RedisCluster(startup_nodes=nodes, **creds, **overrides)
    pool = getattr(url_or_client, "connection_pool", None)
    manager_of_sentinels = getattr(pool, "sentinel_manager", None)
    if manager_of_sentinels is not None:  # Sentinel: follow the master it names, with our timeouts
        return manager_of_sentinels.master_for(pool.service_name, **overrides)  # type: ignore[union-attr]
    if isinstance(url_or_client, str):
        return redis.Redis.from_url(url_or_client, **overrides)
    pool = getattr(url_or_client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if pool is None or not isinstance(kwargs, dict):
        raise TypeError(
            "url_or_client must be a redis:// URL, a redis.Redis or a redis.asyncio.Redis "
            f"client, got {url_or_client!r}"
        )
    cls = pool.connection_class
    if cls.__module__.startswith("redis.asyncio"):
        cls = getattr(redis.connection, cls.__name__, redis.connection.Connection)
    settings = {k: v for k, v in kwargs.items() if k not in ("retry", "event_dispatcher")}
    settings.update(overrides)
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=cls, **settings))


def make_async_client(client: redis.Redis, timeout: float) -> Any:
    """An asyncio client to the same server as ``client`` (same timeouts, no retries), or None
    when its connections cannot be mirrored (TLS, Unix socket, Cluster): the store then runs
    the command in a worker thread instead."""
    pool = getattr(client, "connection_pool", None)
    if pool is None or pool.connection_class is not redis.connection.Connection:
        return None
    from redis.asyncio import Redis as AsyncRedis
    from redis.asyncio.retry import Retry as AsyncRetry

    kwargs = pool.connection_kwargs
    keep = ("host", "port", "db", "username", "password", "client_name")
    settings = {k: kwargs[k] for k in keep if kwargs.get(k) is not None}
    return AsyncRedis(
        **settings,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=AsyncRetry(NoBackoff(), 0),
    )
