"""The gateway as an ASGI application: ``create_app("gateway.yaml")`` for any ASGI server.

Plain ASGI (no framework) keeps the added latency low and lets a stream decide its status and
audit headers at its commit point, in the same task that talks to the backend.

Endpoints: ``POST /v1/chat/completions`` (JSON and SSE), ``GET /v1/models``,
``POST /v1/embeddings`` (passthrough), ``GET /circuit-breakers``,
``POST /circuit-breakers/{name}`` (admin key), ``GET /metrics``, ``/health/live``,
``/health/ready``, ``/health/startup`` and the seed's ``/health`` (probes: no auth, no log).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from tripwise.core.registry import Registry
from tripwise.core.states import Mode
from tripwise.gateway.config import GatewayConfig, load_config
from tripwise.gateway.engine import Audit, Engine, Outcome, openai_error, send_json
from tripwise.gateway.jsonio import dumps
from tripwise.gateway.runtime import LiveBackend, Override, Runtime
from tripwise.gateway.validate import (
    MAX_BODY,
    BadRequest,
    check_chat,
    check_embeddings,
    parse_json_body,
)

logger = logging.getLogger("tripwise.gateway")
access_logger = logging.getLogger("tripwise.gateway.access")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_PROBES = {"/health", "/health/live", "/health/ready", "/health/startup"}
_ACTIONS = ("force_open", "force_closed", "reset")


class StreamsAborted(Exception):
    """Raised into streams still open when the drain timeout ends."""


class GatewayApp:
    """The OpenAI-compatible proxy. ``reload()`` swaps the config; ``start_drain()`` begins a
    graceful shutdown (readiness fails, requests are still served)."""

    def __init__(self, config: GatewayConfig, *, registry: Registry | None = None) -> None:
        self.config = config
        self.registry = registry if registry is not None else Registry()
        self.redis_client: Any = None
        self.store: Any = None
        if config.redis_url:
            self._connect_redis(config)
        runtime = Runtime(
            config, registry=self.registry, redis_client=self.redis_client, store=self.store
        )
        self.engine = Engine(runtime)
        self.started = False
        self.draining = False
        self.overrides_log: deque[dict[str, Any]] = deque(maxlen=200)
        self._metrics: Any = None
        self._retired: list[Any] = []

    # ------------------------------------------------------------------ lifecycle

    def _connect_redis(self, config: GatewayConfig) -> None:
        try:
            import redis.asyncio as aredis

            from tripwise.stores.redis import RedisStore
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("redis: in the config needs pip install 'tripwise[redis]'") from exc
        assert config.redis_url is not None
        self.redis_client = aredis.Redis.from_url(config.redis_url)
        self.store = RedisStore(config.redis_url, namespace=f"{config.redis_prefix}:breakers")

    @property
    def runtime(self) -> Runtime:
        return self.engine.runtime

    def reload(self, config: GatewayConfig) -> None:
        """Use ``config`` for new requests; requests in flight finish on the old one."""
        if config.redis_url != self.config.redis_url:
            logger.warning("redis.url changed: the new value applies after a restart")
            config = _with_redis(config, self.config)
        old = self.engine.runtime
        new = Runtime(
            config,
            registry=self.registry,
            previous=old,
            redis_client=self.redis_client,
            store=self.store,
        )
        self.engine.runtime = new
        self.config = config
        retired = old.upstreams_to_close(new)
        if retired:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                self._retired.extend(retired)
                return
            task = asyncio.ensure_future(self._close_later(retired))
            self._retired.append(task)
        logger.info("gateway config reloaded from %s", config.path)

    async def _close_later(self, upstreams: list[Any]) -> None:
        # Calls and streams started on the old clients keep them until they end.
        while any(u.in_flight for u in upstreams):
            await asyncio.sleep(1.0)
        for u in upstreams:
            await u.aclose()

    def start_drain(self) -> None:
        if not self.draining:
            logger.warning("draining: readiness fails from now on; requests are still served")
        self.draining = True

    async def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for open streams; end the rest with an error event.
        Returns how many streams were cut."""
        deadline = time.monotonic() + timeout
        while self.engine.open_streams and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        left = list(self.engine.open_streams)
        for task in left:
            task.cancel(msg="drain")
        if left:
            await asyncio.wait(left, timeout=2.0)
        return len(left)

    async def aclose(self) -> None:
        for b in self.runtime.live_backends():
            await b.upstream.aclose()
        for item in self._retired:
            if isinstance(item, asyncio.Task):
                item.cancel()
        if self.redis_client is not None:
            await self.redis_client.aclose()
        if self.store is not None:
            self.store.close()

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.started = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path in _PROBES:
            await self._probe(path, method, send)
            return
        start = time.perf_counter()
        status = 500
        try:
            status = await self._dispatch(path, method, scope, receive, send)
        except BadRequest as exc:
            status = exc.status
            await _error(send, exc.status, str(exc), exc.type, exc.code, exc.param)
        except Exception:
            logger.exception("unexpected error on %s %s", method, path)
            await _error(send, 500, "internal gateway error", "server_error", "internal_error")
        if self.config.access_log:
            access_logger.info(
                "%s %s %d %.1fms", method, path, status, (time.perf_counter() - start) * 1000
            )

    async def _dispatch(
        self, path: str, method: str, scope: Scope, receive: Receive, send: Send
    ) -> int:
        if path in ("/v1/chat/completions", "/chat/completions"):
            _method(method, "POST")
            return await self._chat(scope, receive, send)
        if path in ("/v1/models", "/models"):
            _method(method, "GET")
            return await self._models(send)
        if path in ("/v1/embeddings", "/embeddings"):
            _method(method, "POST")
            return await self._embeddings(scope, receive, send)
        if path == "/circuit-breakers":
            _method(method, "GET")
            return await _json(send, 200, self.breakers_status())
        if path.startswith("/circuit-breakers/"):
            name = path[len("/circuit-breakers/") :]
            if method == "GET":
                status = self.breakers_status()["circuit_breakers"].get(name)
                if status is None:
                    raise BadRequest(f"no breaker named {name!r}", status=404, code="not_found")
                return await _json(send, 200, status)
            _method(method, "POST")
            self._admin(scope)
            body = parse_json_body(await _read_body(receive))
            return await _json(send, 200, self.override(name, body))
        if path == "/metrics":
            _method(method, "GET")
            return await self._metrics_page(send)
        raise BadRequest(f"no such endpoint: {method} {path}", status=404, code="not_found")

    # ------------------------------------------------------------------ probes

    async def _probe(self, path: str, method: str, send: Send) -> None:
        if method not in ("GET", "HEAD"):
            await _error(send, 405, f"{path} accepts GET", "invalid_request_error", "method")
            return
        body: dict[str, Any]
        if path == "/health/live":
            status, body = 200, {"status": "alive"}
        elif path == "/health/startup":
            status = 200 if self.started else 503
            body = {"status": "started" if self.started else "starting"}
        else:
            ready = self.started and not self.draining
            state = "draining" if self.draining else ("healthy" if ready else "starting")
            status, body = (200 if ready else 503), {"status": state}
            if path == "/health":
                body["circuit_breakers"] = {
                    b.name: b.breaker.state.value for b in self.runtime.live_backends()
                }
        await _json(send, status, body)

    # ------------------------------------------------------------------ the API

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> int:
        body = parse_json_body(await _read_body(receive))
        check_chat(body)
        model = body.get("model")
        route = self.runtime.route(model)
        if route is None:
            if model is None and self.runtime.cfg.routes:
                route = next(iter(self.runtime.cfg.routes.values()))
            else:
                known = ", ".join(sorted(self.runtime.cfg.routes))
                raise BadRequest(
                    f"no route serves model {model!r} (routes: {known})",
                    param="model",
                    status=404,
                    code="model_not_found",
                )
        engine = self.engine
        if body.get("stream"):
            task = asyncio.current_task()
            assert task is not None
            engine.open_streams.add(task)
            try:
                status = await engine.stream(route, body, send)
            except asyncio.CancelledError:
                if self.draining:
                    # The drain bound passed: end the stream with an error event; a stream
                    # that had not committed yet gets a 503.
                    await _abort_stream(send)
                    status = 503
                else:
                    raise
            finally:
                engine.open_streams.discard(task)
        else:
            out = await engine.complete(route, body)
            await send_json(send, out)
            status = out.status
        engine.stats.status(route.name, status)
        return status

    async def _models(self, send: Send) -> int:
        now = int(time.time())
        data = [
            {"id": name, "object": "model", "created": now, "owned_by": "tripwise-gateway"}
            for name in self.runtime.cfg.routes
            if name != "*"
        ]
        return await _json(send, 200, {"object": "list", "data": data})

    async def _embeddings(self, scope: Scope, receive: Receive, send: Send) -> int:
        raw = await _read_body(receive)
        body = parse_json_body(raw)
        check_embeddings(body)
        route = self.runtime.route(body.get("model"))
        if route is None:
            raise BadRequest(
                f"no route serves model {body.get('model')!r}",
                param="model",
                status=404,
                code="model_not_found",
            )
        audit = Audit(route.name)
        for index, b in enumerate(self.runtime.chains[route.name], 1):
            if not isinstance(b, LiveBackend) or b.cfg.type != "openai":
                continue
            try:
                await b.breaker.__aenter__()
            except Exception:
                audit.skip(b.name, "breaker_open")
                continue
            audit.attempts += 1
            try:
                payload = dict(body)
                if b.cfg.model is not None:
                    payload["model"] = b.cfg.model
                status, content = await b.upstream.passthrough(
                    "POST", "/embeddings", dumps(payload), b.cfg.timeout
                )
                if status >= 500:
                    raise _Status(status)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await b.breaker.__aexit__(type(exc), exc, None)
                reason = getattr(exc, "reason", None) or f"error:{getattr(exc, 'status', 'x')}"
                audit.skip(b.name, reason)
                continue
            await b.breaker.__aexit__(None, None, None)
            audit.backend, audit.tier = b.name, index
            await send_json(send, Outcome(status, content, audit))
            return status
        out = Outcome(
            502,
            openai_error(
                "no backend could compute embeddings (" + "; ".join(audit.reasons) + ")",
                "upstream_error",
                "all_backends_failed",
            ),
            audit,
        )
        await send_json(send, out)
        return 502

    # ------------------------------------------------------------------ operators

    def breakers_status(self) -> dict[str, Any]:
        from tripwise.observe.snapshot import snapshot

        now = time.time()
        for b in self.runtime.live_backends():
            b.expire_override(now)
        snap = snapshot(self.registry, chains=[])
        breakers = snap["circuit_breakers"]
        for b in self.runtime.live_backends():
            entry = breakers.get(b.name)
            if entry is None:
                continue
            entry["total_timeouts"] = b.timeouts
            entry["reason"] = self.engine.last_reason.get(b.name)
            entry["override"] = b.override.as_dict() if b.override is not None else None
            entry["trip_on"] = repr(b.breaker.trip_on)
            wait = entry.get("retry_after_seconds")
            entry["next_probe_at"] = (
                now + wait
                if wait and b.breaker.mode is Mode.NORMAL and math.isfinite(wait)
                else None
            )
        snap.pop("fallback_chains", None)
        stats = self.engine.stats
        snap["routes"] = {
            name: {
                "chain": list(r.chain),
                "when_all_open": r.when_all_open,
                "tier_usage": {t: stats.served.get((name, t), 0) for t in r.chain},
            }
            for name, r in self.runtime.cfg.routes.items()
        }
        snap["overrides_log"] = list(self.overrides_log)[-20:]
        return snap

    def _admin(self, scope: Scope) -> None:
        key = self.config.admin_key
        if not key:
            raise BadRequest(
                "admin endpoints are disabled: set admin_key in the gateway config",
                status=403,
                code="admin_disabled",
                type_="permission_error",
            )
        given = ""
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and value.lower().startswith(b"bearer "):
                given = value[7:].decode("latin-1").strip()
            elif name == b"x-admin-key":
                given = value.decode("latin-1").strip()
        if not given or not hmac.compare_digest(given.encode(), key.encode()):
            raise BadRequest(
                "a valid admin key is required (Authorization: Bearer <admin_key>)",
                status=401,
                code="invalid_admin_key",
                type_="authentication_error",
            )

    def override(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Force a breaker open or closed (optionally for ``ttl_seconds``), or reset it."""
        backend = self.runtime.backends.get(name)
        if not isinstance(backend, LiveBackend):
            raise BadRequest(f"no breaker named {name!r}", status=404, code="not_found")
        action = body.get("action")
        if action not in _ACTIONS:
            raise BadRequest(
                f"action must be one of {', '.join(_ACTIONS)}, got {action!r}", param="action"
            )
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
            raise BadRequest(
                "reason must be a non-empty string (at most 500 chars)", param="reason"
            )
        ttl = body.get("ttl_seconds")
        if ttl is not None and (
            isinstance(ttl, bool)
            or not isinstance(ttl, (int, float))
            or not math.isfinite(ttl)
            or not 0 < ttl <= 7 * 86400
        ):
            raise BadRequest(
                f"ttl_seconds must be a number in (0, 604800], got {ttl!r}", param="ttl_seconds"
            )
        if action == "reset" and ttl is not None:
            raise BadRequest("reset takes no ttl_seconds", param="ttl_seconds")
        now = time.time()
        b = backend.breaker
        if action == "force_open":
            b.force_open()
        elif action == "force_closed":
            b.disable()
        else:
            b.reset()
        backend.override = (
            None
            if action == "reset"
            else Override(action, reason, now, None if ttl is None else now + float(ttl))
        )
        entry = {
            "breaker": name,
            "action": action,
            "reason": reason,
            "ttl_seconds": ttl,
            "at": now,
        }
        self.overrides_log.append(entry)
        logger.warning(
            "operator override: %s on breaker %r (ttl %s): %s", action, name, ttl, reason
        )
        return {"breaker": name, "state": b.state.value, "mode": b.mode.value, "override": entry}

    async def _metrics_page(self, send: Send) -> int:
        if self._metrics is None:
            from tripwise.gateway.metrics import CONTENT_TYPE, GatewayMetrics

            self._metrics = GatewayMetrics(self.registry, self.engine)
            self._metrics_type = CONTENT_TYPE.encode()
        body = self._metrics.render()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", self._metrics_type),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return 200


class _Status(Exception):
    def __init__(self, status: int) -> None:
        self.status = status
        self.reason = f"error:{status}"
        super().__init__(self.reason)


def _with_redis(config: GatewayConfig, old: GatewayConfig) -> GatewayConfig:
    import dataclasses

    return dataclasses.replace(config, redis_url=old.redis_url, redis_prefix=old.redis_prefix)


def _method(method: str, allowed: str) -> None:
    if method != allowed:
        raise BadRequest(
            f"method {method} is not allowed here; use {allowed}",
            status=405,
            code="method_not_allowed",
        )


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("the client went away", status=400, code="client_disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequest(
                f"the request body is larger than {MAX_BODY} bytes", status=413, code="too_large"
            )
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _json(send: Send, status: int, data: Any) -> int:
    body = dumps(data)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
    return status


async def _error(
    send: Send, status: int, message: str, type_: str, code: str, param: str | None = None
) -> None:
    body = openai_error(message, type_, code, param)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    except Exception:  # the response had already started: nothing more can be said
        pass


async def _abort_stream(send: Send) -> None:
    event = {
        "error": {
            "message": "the gateway is shutting down; the stream was cut at the drain timeout",
            "type": "server_shutdown",
            "param": None,
            "code": "draining",
        }
    }
    data = b"data: " + dumps(event) + b"\n\n"
    try:
        await send({"type": "http.response.body", "body": data, "more_body": False})
    except Exception:
        # Not committed yet: the status line was never sent.
        body = openai_error("the gateway is shutting down", "service_unavailable", "draining")
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
        except Exception:
            pass


def create_app(config: str | os.PathLike[str] | GatewayConfig | None = None) -> GatewayApp:
    """The ASGI app for ``config`` (a path, a parsed config, or ``$TRIPWISE_GATEWAY_CONFIG``)."""
    if config is None:
        config = os.environ.get("TRIPWISE_GATEWAY_CONFIG", "gateway.yaml")
    cfg = config if isinstance(config, GatewayConfig) else load_config(config)
    return GatewayApp(cfg)
