"""A PostgreSQL server for tests: the local one (127.0.0.1:5432, trust auth) or one started
from the installed binaries in a temp dir on a free port. A fresh database per use.

Under CI=true an unavailable PostgreSQL fails the test; elsewhere too, with a clear message
(we never skip silently).
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5432
USER = "postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _execute(port: int, sql: str, database: str = "postgres") -> None:
    import asyncpg

    conn = await asyncpg.connect(
        host=DEFAULT_HOST, port=port, user=USER, database=database, timeout=5
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _reachable(port: int) -> bool:
    try:
        asyncio.run(_execute(port, "SELECT 1"))
    except Exception:
        return False
    return True


class _LocalCluster:
    """initdb + pg_ctl in a temp dir (run as the postgres user when we are root)."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bindir = os.path.dirname(bins[-1])
        self.dir = tempfile.mkdtemp(prefix="tripwise-pg-")
        self.port = _free_port()
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, USER)
            self._prefix = ["runuser", "-u", USER, "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._prefix, *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        data = os.path.join(self.dir, "data")
        self._run(f"{self.bindir}/initdb", "-D", data, "-U", USER, "--auth=trust", "-E", "UTF8")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(f"{self.bindir}/pg_ctl", "-D", data, "-o", opts, "-w", "-t", "30", "start")

    def stop(self) -> None:
        data = os.path.join(self.dir, "data")
        try:
            self._run(f"{self.bindir}/pg_ctl", "-D", data, "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def postgres_port() -> Iterator[int]:
    """The port of a reachable PostgreSQL (existing or started for this session)."""
    if _reachable(DEFAULT_PORT):
        yield DEFAULT_PORT
        return
    try:
        cluster = _LocalCluster()
        cluster.start()
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {DEFAULT_HOST}:{DEFAULT_PORT} and could not be "
            f"started from /usr/lib/postgresql/*/bin: {exc}"
        )
    try:
        deadline = time.monotonic() + 20
        while not _reachable(cluster.port):
            if time.monotonic() > deadline:
                pytest.fail(f"started PostgreSQL on port {cluster.port} never became reachable")
            time.sleep(0.2)
        yield cluster.port
    finally:
        cluster.stop()


@contextmanager
def fresh_database(port: int) -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it afterwards."""
    name = f"tripwise_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(port, f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://{USER}@{DEFAULT_HOST}:{port}/{name}"
    finally:
        asyncio.run(_execute(port, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
