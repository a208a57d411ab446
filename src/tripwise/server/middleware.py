"""Pure ASGI middleware (streaming-safe): request ids, body size limit, idempotency keys."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tripwise.server.storage.models import IdempotencyRecord
from tripwise.server.timefmt import now_us

log = logging.getLogger("tripwise.server")
_IDEMPOTENCY_TTL_US = 24 * 3600 * 1_000_000
_MUTATING = frozenset(("POST", "PUT", "PATCH", "DELETE"))


def _header(scope: Scope, name: bytes) -> str | None:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for k, v in headers:
        if k == name:
            return v.decode("latin-1")
    return None


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"code": code, "message": message}).encode()
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


class RequestIdMiddleware:
    """Echo ``X-Request-ID`` (or generate one) on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _header(scope, b"x-request-id") or uuid.uuid4().hex
        rid_bytes = rid.encode("latin-1")[:200]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid_bytes)]
            await send(message)

        await self.app(scope, receive, send_with_id)


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies above ``max_bytes`` with 413 (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_error(
                send, 413, "payload_too_large", f"body exceeds {self.max_bytes} bytes"
            )
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_error(
                    send, 413, "payload_too_large", f"body exceeds {self.max_bytes} bytes"
                )


class IdempotencyMiddleware:
    """Replay the stored answer of a mutating call repeated with the same ``Idempotency-Key``.

    Scope: (bearer key, method, path, idempotency key) for 24 h. The same key with a different
    body answers 422 ``idempotency_mismatch``. Answers >= 500 are not stored.
    """

    def __init__(self, app: ASGIApp, get_sessions: Any) -> None:
        self.app = app
        self.get_sessions = get_sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        auth = _header(scope, b"authorization") if key else None
        if not key or not auth or scope["method"] not in _MUTATING:
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        scope_id = hashlib.sha256(
            "\0".join((auth, scope["method"], scope["path"], key)).encode("utf-8", "replace")
        ).hexdigest()
        request_hash = hashlib.sha256(body).hexdigest()
        sessions = self.get_sessions()
        now = now_us()
        async with sessions() as s:
            record = await s.get(IdempotencyRecord, scope_id)
        if record is not None and now - record.created_us < _IDEMPOTENCY_TTL_US:
            if record.request_hash != request_hash:
                await _send_error(
                    send,
                    422,
                    "idempotency_mismatch",
                    "this Idempotency-Key was used with a different request body",
                )
                return
            stored = record.body.encode()
            headers = [(b"idempotent-replayed", b"true")]
            if stored:
                headers.append((b"content-type", b"application/json"))
            await send({"type": "http.response.start", "status": record.status, "headers": headers})
            await send({"type": "http.response.body", "body": stored})
            return
        delivered = False

        async def replay_receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 0
        out: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                out.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay_receive, capture)
        if 0 < status < 500:
            try:
                async with sessions.begin() as s:
                    await s.execute(
                        delete(IdempotencyRecord).where(
                            (IdempotencyRecord.scope == scope_id)
                            | (IdempotencyRecord.created_us < now - _IDEMPOTENCY_TTL_US)
                        )
                    )
                    s.add(
                        IdempotencyRecord(
                            scope=scope_id,
                            request_hash=request_hash,
                            status=status,
                            body=b"".join(out).decode("utf-8", "replace"),
                            created_us=now,
                        )
                    )
            except Exception:
                log.warning("could not store idempotency record", exc_info=True)
