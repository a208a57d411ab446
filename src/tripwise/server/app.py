"""The ASGI application: routers, middleware, error handlers, lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tripwise.server.api import breakers, channels, operations, organisation, routers, runtime
from tripwise.server.control import ControlPlane
from tripwise.server.errors import install_error_handlers
from tripwise.server.fastpath import IngestFastPath
from tripwise.server.ingest import ReplayGuard
from tripwise.server.middleware import (
    BodyLimitMiddleware,
    ConfigFanoutMiddleware,
    IdempotencyMiddleware,
    InputGuardMiddleware,
    RequestIdMiddleware,
    ShutdownGuardMiddleware,
)
from tripwise.server.openapi import build_openapi
from tripwise.server.services.orgs import bootstrap
from tripwise.server.settings import Settings
from tripwise.server.storage.database import create_engine, migrate

log = logging.getLogger("tripwise.server")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the control-plane app; the database is opened and migrated at startup."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.db)
        await migrate(engine)
        plane = ControlPlane(settings, engine)
        app.state.generated_admin_key = await bootstrap(plane, settings.admin_key)
        await plane.load()
        if settings.redis is not None:
            from tripwise.server.replica import ReplicaBus

            plane.bus = ReplicaBus(plane, settings.redis, settings.redis_prefix)
            await plane.bus.start()
            await asyncio.wait_for(plane.bus.ready.wait(), 10)
        app.state.plane = plane
        plane.start()
        log.info("tripwise control plane ready")
        try:
            yield
        finally:
            plane.hub.close_all()
            await plane.stop()
            if plane.bus is not None:
                await plane.bus.stop()
            await engine.dispose()
            log.info("tripwise control plane stopped")

    app = FastAPI(
        title="tripwise control plane",
        version="0.1.0",
        description="Tripswitch-compatible control plane: breakers defined centrally, "
        "evaluated on reported samples, pushed live to every client.",
        lifespan=lifespan,
    )
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.replay = ReplayGuard(settings.signature_window_ms)
    install_error_handlers(app)
    app.include_router(runtime.router)
    app.include_router(breakers.router)
    app.include_router(routers.router)
    app.include_router(channels.router)
    app.include_router(organisation.router)
    app.include_router(operations.router)
    app.add_middleware(ConfigFanoutMiddleware, get_plane=lambda: app.state.plane)
    app.add_middleware(IdempotencyMiddleware, get_sessions=lambda: app.state.plane.sessions)
    app.add_middleware(InputGuardMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(
        IngestFastPath,
        get_plane=lambda: app.state.plane,
        replay=app.state.replay,
        max_body_bytes=settings.max_body_bytes,
    )
    app.add_middleware(ShutdownGuardMiddleware)
    return app
