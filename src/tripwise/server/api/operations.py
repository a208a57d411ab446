"""Operational routes: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from tripwise.server.auth import Plane

router = APIRouter(tags=["operations"])
log = logging.getLogger("tripwise.server")


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    """The process is alive and answering."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(plane: Plane) -> JSONResponse:
    """Ready when the database answers and the evaluator loop is running."""
    checks = {"database": False, "evaluator": plane.evaluator_running}
    if plane.bus is not None:
        checks["redis"] = await plane.bus.ping()
    try:
        async with plane.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", exc)
    ready = all(checks.values()) and not plane.hub.closing
    body: dict[str, Any] = {"status": "ready" if ready else "unavailable", "checks": checks}
    if plane.bus is not None:
        body["replica"] = {"id": plane.bus.id, "evaluating": len(plane.bus.led)}
    return JSONResponse(
        body,
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def metrics(plane: Plane) -> Response:
    return Response(generate_latest(plane.metrics.registry), media_type=CONTENT_TYPE_LATEST)
