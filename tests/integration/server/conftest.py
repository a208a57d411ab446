"""Fixtures: real control-plane processes on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres_service import fresh_database, postgres_port
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def pg_port() -> Iterator[int]:
    with postgres_port() as port:
        yield port


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tripwise.db'}"
    else:
        with fresh_database(request.getfixturevalue("pg_port")) as url:
            yield url


@pytest.fixture
def admin_key() -> str:
    return "eb_admin_" + secrets.token_hex(16)


@pytest.fixture
def server(db_url: str, admin_key: str, tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(db_url, admin_key)
    proc.start(tmp_path / "server.log")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One shared SQLite server for tests that create their own projects."""
    tmp = tmp_path_factory.mktemp("server")
    proc = ServerProcess(
        f"sqlite:///{tmp / 'tripwise.db'}",
        "eb_admin_" + secrets.token_hex(16),
        env={"TRIPWISE_RATE_LIMIT_PER_S": "5", "TRIPWISE_RATE_LIMIT_BURST": "60"},
    )
    proc.start(tmp / "server.log")
    yield proc
    proc.stop()
