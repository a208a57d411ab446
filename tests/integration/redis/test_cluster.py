"""RedisStore on a real 3-master Redis Cluster (redis-server binaries joined with
``redis-cli --cluster create``, on free ports in a temp dir, torn down afterwards)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.crc import key_slot

from tests.support.redis_service import RedisClusterServers
from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    Mode,
    State,
    consecutive_failures,
    error_rate_above,
)
from tripwise.stores import RedisStore

NAMES = ("model", "ranker", "router", "tagger", "scorer")  # slots on all three masters
FAST = {"timeout": 0.2, "refresh_interval": 0.2, "retry_interval": 0.2}


class Boom(Exception):
    pass


def _fail() -> None:
    raise Boom


def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    with RedisClusterServers(3) as servers:
        yield servers


@pytest.fixture
def stores(cluster: RedisClusterServers, namespace: str) -> Iterator[Callable[..., Any]]:
    made: list[RedisStore] = []

    def make(**options: Any) -> RedisStore:
        store = RedisStore(cluster.client(), namespace=namespace, **{**FAST, **options})
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def test_breakers_on_every_master_share_state_across_the_cluster(
    cluster: RedisClusterServers, stores: Callable[..., Any]
) -> None:
    store_a, store_b = stores(), stores()
    assert store_a.cluster
    # The breakers' keys spread over the masters, each breaker's keys in one slot.
    client = cluster.client()
    nodes = {client.get_node_from_key(store_a.state_keys(n)[0]).port for n in NAMES}  # type: ignore[attr-defined]
    assert len(nodes) == 3
    for name in NAMES:
        assert len({key_slot(k.encode()) for k in store_a.state_keys(name)}) == 1
    options: dict[str, Any] = {"half_open_after": 0.3, "registry": None}
    a = {
        n: CircuitBreaker(consecutive_failures(2), name=n, store=store_a, **options) for n in NAMES
    }
    b = {n: CircuitBreaker(name=n, store=store_b, **options) for n in NAMES}
    for name in NAMES:
        for _ in range(2):
            with pytest.raises((Boom, CircuitBreakerOpen)):
                a[name].call(_fail)
    # Pub/sub from every master reaches the other process.
    assert _until(lambda: all(b[n].state is State.OPEN for n in NAMES))
    assert all(b[n].trip_count == 1 for n in NAMES)
    time.sleep(0.35)
    for name in NAMES:  # half-open probes are granted by each breaker's own master
        for _ in range(2):
            assert _until(lambda name=name: _ok(b[name]))
    assert _until(lambda: all(a[n].state is State.CLOSED for n in NAMES))
    # Manual control and the periodic refresh (one script per breaker) work there too.
    a["model"].force_open(by="ops", reason="cluster drill")
    assert _until(lambda: b["model"].mode is Mode.FORCED_OPEN)
    assert store_b.last_control("model")["reason"] == "cluster drill"  # type: ignore[index]
    assert _until(lambda: store_b.stats()["refreshes"] >= 3)
    assert store_a.stats()["redis_errors"] == store_b.stats()["redis_errors"] == 0


def _ok(breaker: CircuitBreaker) -> bool:
    try:
        breaker.call(lambda: 1)
        return True
    except CircuitBreakerOpen:
        return False


def test_shared_window_mode_on_the_cluster(stores: Callable[..., Any]) -> None:
    store_a = stores(mode="shared_window", flush_interval=0.02)
    store_b = stores(mode="shared_window", flush_interval=0.02)
    rule = error_rate_above(0.4, window_seconds=30, min_calls=10)
    a = CircuitBreaker(rule, name="ranker", half_open_after=30.0, registry=None, store=store_a)
    b = CircuitBreaker(
        error_rate_above(0.4, window_seconds=30, min_calls=10),
        name="ranker",
        half_open_after=30.0,
        registry=None,
        store=store_b,
    )
    for _ in range(3):
        a.call(lambda: None)
        with pytest.raises(Boom):
            a.call(_fail)
    assert _until(lambda: b.trip_on.window.count == 6)  # type: ignore[attr-defined]
    assert store_a.stats()["flushes"] > 0


def test_async_breakers_on_the_cluster_do_not_block_the_loop(stores: Callable[..., Any]) -> None:
    store_a, store_b = stores(), stores()
    watcher = CircuitBreaker(name="tagger", registry=None, store=store_b)

    async def main() -> float:
        breaker = CircuitBreaker(
            consecutive_failures(2), name="tagger", half_open_after=30.0, registry=None,
            store=store_a,
        )  # fmt: skip

        @breaker
        async def model() -> None:
            raise Boom

        start = time.monotonic()
        for _ in range(2):
            with pytest.raises((Boom, CircuitBreakerOpen)):
                await model()
        held = time.monotonic() - start
        for _ in range(100):
            if watcher.state is State.OPEN:
                break
            await asyncio.sleep(0.02)
        await store_a.aclose()
        return held

    held = asyncio.run(main())
    assert watcher.state is State.OPEN and watcher.trip_count == 1
    assert held < FAST["timeout"]  # the trip went to a worker thread, not the loop
