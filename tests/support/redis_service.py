"""Real Redis for tests: the one on 127.0.0.1:6379, or a ``redis-server`` we start ourselves.

``redis_url()`` answers the URL of a reachable Redis (starting one from ``redis-server`` on
PATH, on a free port in a temp dir, when none runs). ``RedisServer`` is a private server a test
can stop, restart and pause. Under ``CI=true`` an unavailable Redis is a test failure.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

DEFAULT_URL = os.environ.get("TRIPWISE_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unavailable(message: str) -> None:
    # Never a silent skip: a missing service is a failure with a message saying what to do.
    ci = os.environ.get("CI", "").lower() == "true"
    pytest.fail(("CI=true: " if ci else "") + message, pytrace=False)


def ping(url: str, timeout: float = 0.5) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A ``redis-server`` process of our own on a free loopback port (no persistence)."""

    def __init__(self, port: int | None = None, *extra: str) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            _unavailable("redis-server is not on PATH: install Redis (apt-get install redis)")
        self.extra = list(extra)  # more redis-server arguments, e.g. "--maxmemory", "2mb"
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="tripwise-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        assert self.binary is not None
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self.dir,
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                _unavailable(f"redis-server exited at start (port {self.port})")
            if ping(self.url, 0.2):
                return self
            time.sleep(0.02)
        self.stop()
        _unavailable(f"redis-server did not answer on port {self.port} within {timeout} s")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen server must not linger
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self, milliseconds: int) -> None:
        """``CLIENT PAUSE``: every client's commands hang for ``milliseconds``."""
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            client.execute_command("CLIENT", "PAUSE", milliseconds, "ALL")
        finally:
            client.close()

    def freeze(self) -> None:
        """SIGSTOP: the server stops reading and answering; what clients send meanwhile is
        buffered by the kernel and executed on :meth:`thaw`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def command(self, *args: object) -> object:
        """Run one command on this server with a client of its own."""
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=5.0)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisClusterServers:
    """A real Redis Cluster of ``masters`` redis-server processes (no replicas) on free ports in
    a temp dir, joined with ``redis-cli --cluster create``; killed and removed on close."""

    def __init__(self, masters: int = 3) -> None:
        if shutil.which("redis-cli") is None:
            _unavailable("redis-cli is not on PATH: install Redis (apt-get install redis-tools)")
        self.servers: list[RedisServer] = []
        for _ in range(masters):
            server = RedisServer()
            bus = free_port()
            server.extra = [
                "--cluster-enabled", "yes",
                "--cluster-port", str(bus),
                "--cluster-config-file", os.path.join(server.dir, "nodes.conf"),
                "--cluster-node-timeout", "2000",
            ]  # fmt: skip
            self.servers.append(server)

    @property
    def nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", s.port) for s in self.servers]

    def start(self, timeout: float = 20.0) -> RedisClusterServers:
        for server in self.servers:
            server.start()
        create = subprocess.run(
            ["redis-cli", "--cluster", "create",
             *[f"{h}:{p}" for h, p in self.nodes],
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )  # fmt: skip
        if create.returncode != 0:
            self.close()
            _unavailable(f"redis-cli --cluster create failed: {create.stdout}{create.stderr}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            infos = [str(s.command("CLUSTER", "INFO")) for s in self.servers]
            if all("cluster_state:ok" in i for i in infos):
                return self
            time.sleep(0.05)
        self.close()
        _unavailable("the Redis Cluster did not reach cluster_state:ok")
        return self

    def client(self, **options: object) -> object:
        from redis.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode(h, p) for h, p in self.nodes]
        return RedisCluster(startup_nodes=nodes, **options)  # type: ignore[arg-type]

    def close(self) -> None:
        for server in self.servers:
            server.close()

    def __enter__(self) -> RedisClusterServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisSentinelServer:
    """A ``redis-server --sentinel`` process of our own watching ``master`` as ``mymaster``."""

    def __init__(self, master: RedisServer, service: str = "mymaster") -> None:
        self.master = master
        self.service = service
        self.server = RedisServer()

    def start(self, timeout: float = 10.0) -> RedisSentinelServer:
        conf = os.path.join(self.server.dir, "sentinel.conf")
        with open(conf, "w") as fh:
            fh.write(
                f"port {self.server.port}\nbind 127.0.0.1\ndir {self.server.dir}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
            )
        assert self.server.binary is not None
        self.server.process = subprocess.Popen(
            [self.server.binary, conf, "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ping(self.server.url, 0.2):
                return self
            time.sleep(0.02)
        self.close()
        _unavailable(f"redis sentinel did not answer on port {self.server.port}")
        return self

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server.port)

    def close(self) -> None:
        self.server.close()

    def __enter__(self) -> RedisSentinelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


_started: RedisServer | None = None


def redis_url() -> str:
    """A reachable Redis for this test session (shared; use a namespace per test)."""
    global _started
    if ping(DEFAULT_URL):
        return DEFAULT_URL
    if _started is None:
        server = RedisServer()
        server.start()
        atexit.register(server.close)
        _started = server
    return _started.url


def delete_namespace(url: str, namespace: str) -> None:
    """Remove every key under ``namespace:`` (test cleanup)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2.0)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=500))
        if keys:
            client.delete(*keys)
    except (redis.RedisError, OSError):
        pass
    finally:
        client.close()
