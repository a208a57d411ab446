"""``tripwise serve``: run the control plane with uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn

from tripwise.server.settings import Settings

log = logging.getLogger("tripwise.server")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tripwise serve",
        description="Run the tripwise control plane (Tripswitch-compatible HTTP API).",
    )
    p.add_argument("--db", help="database URL (default sqlite:///tripwise.db; env TRIPWISE_DB)")
    p.add_argument("--host", help="bind address (default 127.0.0.1; env TRIPWISE_HOST)")
    p.add_argument("--port", type=int, help="port (default 8080; env TRIPWISE_PORT)")
    p.add_argument("--admin-key", help="bootstrap admin key (env TRIPWISE_ADMIN_KEY)")
    p.add_argument("--tick-interval", type=float, dest="tick_interval_s", help="evaluation tick, s")
    p.add_argument("--keepalive", type=float, dest="keepalive_s", help="SSE keep-alive period, s")
    p.add_argument(
        "--shutdown-grace", type=float, dest="shutdown_grace_s", help="SIGTERM grace period, s"
    )
    p.add_argument("--rate-limit", type=float, dest="rate_limit_per_s", help="requests/s per key")
    p.add_argument("--log-level", help="debug, info, warning, error")
    p.add_argument(
        "--http", help="HTTP implementation: auto (httptools if installed), h11, httptools"
    )
    p.add_argument("--loop", help="event loop: auto (uvloop if installed), asyncio, uvloop")
    return p


async def _bootstrap(settings: Settings) -> str | None:
    from tripwise.server.control import ControlPlane
    from tripwise.server.services.orgs import bootstrap
    from tripwise.server.storage.database import create_engine, migrate

    engine = create_engine(settings.db)
    try:
        await migrate(engine)
        return await bootstrap(ControlPlane(settings, engine), settings.admin_key)
    finally:
        await engine.dispose()


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


def serve_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tripwise serve``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(**{k: v for k, v in vars(args).items() if v is not None})
    except ValueError as exc:
        sys.stderr.write(f"tripwise serve: {exc}\n")
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    generated = asyncio.run(_bootstrap(settings))
    if generated is not None:
        sys.stdout.write(
            f"Created the organisation and its first admin key (shown only once):\n  {generated}\n"
        )
        sys.stdout.flush()
    from tripwise.server.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) or None,
        http=settings.http,
        loop=settings.loop,
        lifespan="on",
        access_log=False,
    )
    server = _Server(config)
    server.run()
    return 0
