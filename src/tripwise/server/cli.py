"""``tripwise serve``: run the control plane with uvicorn.

The argument parser needs nothing beyond the standard library (so ``tripwise serve --help``
works on a core install); the server's dependencies are imported only to run it. Every
mistake a user can make on the command line or in the environment ends in a one-line error
and exit code 2, never a traceback; Ctrl-C / SIGTERM end in a clean exit (code 0).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from tripwise.server.settings import Settings

log = logging.getLogger("tripwise.server")
_SERVER_MODULES = ("fastapi", "uvicorn", "sqlalchemy", "aiosqlite", "asyncpg", "alembic", "orjson")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tripwise serve",
        description="Run the tripwise control plane (Tripswitch-compatible HTTP API).",
    )
    p.add_argument("--db", help="database URL (default sqlite:///tripwise.db; env TRIPWISE_DB)")
    p.add_argument(
        "--redis",
        help="replica mode: the Redis shared by every replica, redis://host:port/db "
        "(needs a PostgreSQL --db; env TRIPWISE_REDIS)",
    )
    p.add_argument(
        "--redis-prefix",
        dest="redis_prefix",
        help="prefix of every Redis key and channel (default tripwise; env TRIPWISE_REDIS_PREFIX)",
    )
    p.add_argument("--host", help="bind address (default 127.0.0.1; env TRIPWISE_HOST)")
    p.add_argument("--port", type=int, help="port 1..65535 (default 8080; env TRIPWISE_PORT)")
    p.add_argument(
        "--admin-key", help="bootstrap admin key, >= 16 characters (env TRIPWISE_ADMIN_KEY)"
    )
    p.add_argument(
        "--rotate-admin-key",
        action="store_const",
        const=True,
        dest="rotate_admin_key",
        help="make the given admin key the only admin key, revoking every other one",
    )
    p.add_argument("--tick-interval", type=float, dest="tick_interval_s", help="evaluation tick, s")
    p.add_argument("--keepalive", type=float, dest="keepalive_s", help="SSE keep-alive period, s")
    p.add_argument(
        "--shutdown-grace",
        type=float,
        dest="shutdown_grace_s",
        help="SIGTERM grace period, s (fractions allowed; 0 = do not wait; default 10)",
    )
    p.add_argument("--rate-limit", type=float, dest="rate_limit_per_s", help="requests/s per key")
    p.add_argument("--log-level", help="debug, info, warning, error, critical")
    p.add_argument(
        "--http", help="HTTP implementation: auto (httptools if installed), h11, httptools"
    )
    p.add_argument("--loop", help="event loop: auto (uvloop if installed), asyncio, uvloop")
    return p


def _fail(message: str) -> int:
    sys.stderr.write(f"tripwise serve: {message}\n")
    return 2


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


async def _bootstrap(settings: Settings) -> str | None:
    from tripwise.server.control import ControlPlane
    from tripwise.server.services.orgs import bootstrap
    from tripwise.server.storage.database import create_engine, migrate

    engine = create_engine(settings.db)
    try:
        await migrate(engine)
        return await bootstrap(
            ControlPlane(settings, engine), settings.admin_key, rotate=settings.rotate_admin_key
        )
    finally:
        await engine.dispose()


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if at and ":" in creds:
        return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"
    return url


def _sqlite_path_problem(url: str) -> str | None:
    """Why a SQLite file cannot be opened or created, checked before any driver thread runs."""
    import os
    from pathlib import Path

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    path = Path(parsed.database).expanduser().absolute()
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            return f"the SQLite database {str(path)!r} is not readable and writable"
        return None
    parent = path.parent
    if not parent.is_dir():
        return f"cannot create the SQLite database {str(path)!r}: {str(parent)!r} is no directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create the SQLite database {str(path)!r}: {str(parent)!r} is not writable"
    return None


def serve_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tripwise serve``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(**{k: v for k, v in vars(args).items() if v is not None})
    except ValueError as exc:
        return _fail(str(exc))
    try:
        import uvicorn  # noqa: F401

        for name in _SERVER_MODULES:
            __import__(name)
    except ImportError as exc:
        return _fail(
            f"the server extra is not installed ({exc.name} is missing): "
            "pip install 'tripwise[server]' (from a clone: pip install '.[server]')"
        )
    if settings.redis is not None:
        try:
            import redis.asyncio  # noqa: F401
        except ImportError:
            return _fail(
                "replica mode (--redis) needs the redis extra: "
                "pip install 'tripwise[server,redis]' (from a clone: pip install '.[server,redis]')"
            )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from tripwise.server.services.orgs import BootstrapError

    problem = _sqlite_path_problem(settings.db)
    if problem is not None:
        return _fail(problem)
    from tripwise._listen import ListenError, listen_socket

    try:  # before the database is touched: a taken port creates no admin key
        sock = listen_socket(settings.host, settings.port)
    except ListenError as exc:
        return _fail(str(exc))
    with sock:
        try:
            generated = asyncio.run(_bootstrap(settings))
        except KeyboardInterrupt:
            return 0
        except BootstrapError as exc:
            return _fail(str(exc))
        except Exception as exc:
            return _fail(f"cannot open the database {_redacted(settings.db)}: {_one_line(exc)}")
        if generated is not None:
            sys.stdout.write(
                "Created the organisation and its first admin key (shown only once):\n"
                f"  {generated}\n"
            )
            sys.stdout.flush()
        try:
            return _run(settings, sock)
        except KeyboardInterrupt:
            return 0


def _run(settings: Settings, sock: Any) -> int:
    import uvicorn

    from tripwise._listen import address
    from tripwise.server.app import create_app

    class _Server(uvicorn.Server):
        """On SIGTERM/SIGINT, end SSE streams at once so the graceful shutdown can complete."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            app = self.config.loaded_app
            while app is not None and not hasattr(app, "state"):
                app = getattr(app, "app", None)
            plane = getattr(getattr(app, "state", None), "plane", None)
            if plane is not None:
                plane.hub.close_all()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # uvicorn takes seconds as a float here (asyncio.timeout): 1.7 stays 1.7, 0 is 0.
        timeout_graceful_shutdown=settings.shutdown_grace_s,  # type: ignore[arg-type]
        http=settings.http,
        loop=settings.loop,
        lifespan="on",
        access_log=False,
    )
    server = _Server(config)
    where = address(settings.host, settings.port)
    try:
        server.run(sockets=[sock])  # bound by serve_main: a taken port never gets this far
    except OSError as exc:
        return _fail(f"cannot listen on {where}: {_one_line(exc)}")
    if not server.started:
        return _fail(f"the server did not start on {where} (see the log)")
    return 0
