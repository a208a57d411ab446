"""Fixtures for tests against a real Redis (see tests/support/redis_service.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.redis_service import RedisServer, delete_namespace, redis_url

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    return redis_url()


@pytest.fixture
def namespace(redis_server_url: str) -> Iterator[str]:
    ns = f"twtest-{uuid.uuid4().hex[:12]}"
    yield ns
    delete_namespace(redis_server_url, ns)


@pytest.fixture
def make_store(redis_server_url: str, namespace: str) -> Iterator[Callable[..., Any]]:
    """``make_store(**options)``: a RedisStore on this test's namespace, closed afterwards."""
    from tripwise.stores import RedisStore

    stores: list[Any] = []

    def make(url: str | None = None, **options: Any) -> Any:
        options.setdefault("namespace", namespace)
        store = RedisStore(url or redis_server_url, **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop, restart or pause."""
    with RedisServer() as server:
        yield server
