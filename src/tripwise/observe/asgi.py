"""A ready-made ASGI app serving the status snapshot, liveness, readiness and metrics.

It is plain ASGI (no framework needed), so it mounts in one line anywhere::

    app.mount("/circuit-breakers", status_app())        # Starlette / FastAPI

and runs on its own with ``uvicorn --factory tripwise.observe:status_app``. Routes, relative
to where it is mounted:

- ``GET /``        the snapshot of every breaker and chain (see :func:`snapshot`)
- ``GET /live``    200 unless a breaker listed in ``liveness_critical`` rejects calls
- ``GET /ready``   200 while no critical breaker (all by default) rejects calls, else 503
- ``GET /metrics`` Prometheus exposition of ``metrics_registry`` (needs prometheus-client); it
  includes the breakers' metrics (default preset: state, trips, calls) even when
  :func:`~tripwise.observe.register_metrics` was not called for this registry — call it for
  the latency/quality histograms or other presets

Liveness ignores downstream breakers by default: restarting a process does not repair the
service it depends on, so only name breakers in ``liveness_critical`` whose opening means this
process itself is broken.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from tripwise.core.registry import Registry
from tripwise.observe.snapshot import names_arg, readiness, registry_arg, snapshot

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _route_path(scope: Scope) -> str:
    path: str = scope.get("path", "/")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.rstrip("/") or "/"


async def _respond(send: Send, status: int, body: bytes, content_type: str, head: bool) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else body})


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), default=str).encode()


def status_app(
    registry: Registry | None = None,
    *,
    critical: Iterable[str] | None = None,
    liveness_critical: Iterable[str] = (),
    metrics_registry: Any = None,
) -> ASGIApp:
    """Build the status ASGI app for ``registry`` (the process-wide one by default).

    ``critical``: breaker names that decide readiness (default: every breaker).
    ``liveness_critical``: breaker names whose opening fails liveness (default: none).
    ``metrics_registry``: a prometheus-client ``CollectorRegistry`` for ``/metrics``
    (default: the global one, when prometheus-client is installed).
    """
    reg = registry_arg(registry)
    critical_names = None if critical is None else tuple(names_arg("critical", critical))
    live_names = tuple(names_arg("liveness_critical", liveness_critical))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if kind != "http":
            return
        method = scope.get("method", "GET")
        head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, _json({"error": "method not allowed"}), _JSON, head)
            return
        route = _route_path(scope)
        if route == "/":
            await _respond(send, 200, _json(snapshot(reg)), _JSON, head)
        elif route == "/ready":
            answer = readiness(reg, critical=critical_names)
            await _respond(send, 200 if answer["ready"] else 503, _json(answer), _JSON, head)
        elif route == "/live":
            answer = readiness(reg, critical=live_names)
            body = {"alive": answer["ready"], "open": answer["open"]}
            await _respond(send, 200 if answer["ready"] else 503, _json(body), _JSON, head)
        elif route == "/metrics":
            await _metrics(send, reg, metrics_registry, head)
        else:
            await _respond(send, 404, _json({"error": f"no route {route}"}), _JSON, head)

    return app


_JSON = "application/json"


async def _metrics(send: Send, registry: Registry, metrics_registry: Any, head: bool) -> None:
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

        from tripwise.observe.prometheus import breaker_exposition, is_exported
    except ImportError:
        body = _json(
            {
                "error": "install prometheus-client to serve metrics: pip install "
                "'tripwise[prometheus]' (from a clone: pip install '.[prometheus]')"
            }
        )
        await _respond(send, 501, body, _JSON, head)
        return
    target = REGISTRY if metrics_registry is None else metrics_registry
    body = generate_latest(target)
    if not is_exported(registry, target):  # nobody registered this registry's breakers
        body += breaker_exposition(registry)
    await _respond(send, 200, body, CONTENT_TYPE_LATEST, head)
