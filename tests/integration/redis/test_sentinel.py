"""RedisStore behind Redis Sentinel: given a Sentinel-managed client, the store follows the
master Sentinel names (with its own timeouts), on a real redis-server + sentinel pair."""

from __future__ import annotations

import time

import pytest
from redis.sentinel import Sentinel

from tests.support.redis_service import RedisSentinelServer, RedisServer
from tripwise import CircuitBreaker, CircuitBreakerOpen, State, consecutive_failures
from tripwise.stores import RedisStore


class Boom(Exception):
    pass


def _fail() -> None:
    raise Boom


def test_a_sentinel_managed_client_shares_state_through_the_master(
    private_redis: RedisServer, namespace: str
) -> None:
    with RedisSentinelServer(private_redis) as sentinel:
        sentinels = Sentinel([sentinel.address], socket_timeout=1.0)
        stores = [
            RedisStore(sentinels.master_for("mymaster"), namespace=namespace, timeout=0.2)
            for _ in range(2)
        ]
        try:
            assert stores[0].client.connection_pool.service_name == "mymaster"
            a, b = (
                CircuitBreaker(consecutive_failures(2), name="model", registry=None, store=s)
                for s in stores
            )
            for _ in range(2):
                with pytest.raises((Boom, CircuitBreakerOpen)):
                    a.call(_fail)
            deadline = time.monotonic() + 3.0
            while b.state is not State.OPEN and time.monotonic() < deadline:
                time.sleep(0.01)
            assert b.state is State.OPEN and b.trip_count == 1
            assert private_redis.command("HGET", f"{namespace}:{{model}}:state", "st") == b"o"
        finally:
            for store in stores:
                store.close()
