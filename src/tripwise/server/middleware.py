"""Pure ASGI middleware (streaming-safe): request ids, body size limit, idempotency keys."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tripwise.server.storage.models import IdempotencyRecord
from tripwise.server.timefmt import now_us

log = logging.getLogger("tripwise.server")
_IDEMPOTENCY_TTL_US = 24 * 3600 * 1_000_000
_MUTATING = frozenset(("POST", "PUT", "PATCH", "DELETE"))
# A reservation older than this belongs to a request that died with its process: taken over.
_PENDING_ABANDONED_US = 60 * 1_000_000
_PENDING_WAIT_S = 10.0
_PENDING = 0  # the status of a reserved, not yet answered idempotency record


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


async def _read_all(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay_receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay_receive


# Characters no storage engine round-trips: lone UTF-16 surrogates (not encodable as UTF-8)
# and NUL (PostgreSQL text cannot hold it).
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")
# Only a body with one of these JSON escapes can decode to such a character.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")


def _unstorable(doc: Any) -> str | None:
    """The JSON path of the first string (key or value) that storage cannot hold, if any."""
    stack: list[tuple[str, Any]] = [("body", doc)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return where
        elif isinstance(item, dict):
            for k, v in item.items():
                if isinstance(k, str) and _UNSTORABLE.search(k):
                    return f"{where} (a key)"
                stack.append((f"{where}.{k}", v))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(item))
    return None


class InputGuardMiddleware:
    """Refuse, with 400 before anything reaches storage, text no database can store: NUL in
    the path or query, lone surrogates or NUL anywhere in a JSON body (keys included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        query: bytes = scope.get("query_string", b"")
        if "\x00" in path or b"%00" in query or b"\x00" in query or _UNSTORABLE.search(path):
            await _send_error(
                send, 400, "bad_request", "NUL characters are not allowed in paths or parameters"
            )
            return
        if scope["method"] not in _MUTATING:
            await self.app(scope, receive, send)
            return
        body = await _read_all(receive)
        if _SUSPECT_ESCAPE.search(body):
            try:
                doc = json.loads(body)
            except (ValueError, RecursionError):
                doc = None  # not JSON: the route's own parser answers 400
            where = _unstorable(doc) if doc is not None else None
            if where is not None:
                await _send_error(
                    send,
                    400,
                    "bad_request",
                    f"{where} holds a lone surrogate or NUL character, which cannot be stored",
                )
                return
        await self.app(scope, _replaying(body, receive), send)


class ConfigFanoutMiddleware:
    """Replica mode: after an admin write succeeded, tell the other replicas to reload the
    definitions from the database (they do so within milliseconds)."""

    def __init__(self, app: ASGIApp, get_plane: Any) -> None:
        self.app = app
        self.get_plane = get_plane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _MUTATING:
            await self.app(scope, receive, send)
            return
        status = 0

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, tracking_send)
        bus = getattr(self.get_plane(), "bus", None)
        if bus is not None and 200 <= status < 300:
            bus.send_config()


class ShutdownGuardMiddleware:
    """A request still running when the shutdown grace period ends is cancelled by uvicorn:
    answer it 503 (instead of a 500 with a CancelledError traceback) and end quietly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if not started:
                try:
                    await _send_error(
                        send, 503, "unavailable", "the server is shutting down; retry"
                    )
                except Exception:  # the connection may already be gone
                    log.debug("could not answer a cancelled request", exc_info=True)


def _record_key(auth: str, key: str) -> bytes:
    """The key that encrypts a stored answer: derived from the bearer key and the
    Idempotency-Key, neither of which is stored, so only the retrying client can read it."""
    material = "\0".join((auth, key)).encode("utf-8", "surrogatepass")
    return hmac.new(b"tripwise idempotency record v1", material, hashlib.sha256).digest()


def _keystream(key: bytes, nonce: bytes, n: int) -> bytes:
    blocks = [
        hmac.new(key, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        for counter in range((n + 31) // 32)
    ]
    return b"".join(blocks)[:n]


def _xor(data: bytes, key: bytes, nonce: bytes) -> bytes:
    stream = _keystream(key, nonce, len(data))
    mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")
    return mixed.to_bytes(len(data), "big")


def seal(key: bytes, plaintext: bytes) -> str:
    """Encrypt-then-MAC (HMAC-SHA256 in counter mode, HMAC-SHA256 tag), base64 text."""
    nonce = secrets.token_bytes(16)
    ct = _xor(plaintext, key, nonce)
    tag = hmac.new(key, b"tag" + nonce + ct, hashlib.sha256).digest()
    return "v1:" + base64.b64encode(nonce + tag + ct).decode()


def unseal(key: bytes, sealed: str) -> bytes | None:
    if not sealed.startswith("v1:"):
        return None
    raw = base64.b64decode(sealed[3:])
    nonce, tag, ct = raw[:16], raw[16:48], raw[48:]
    if not hmac.compare_digest(tag, hmac.new(key, b"tag" + nonce + ct, hashlib.sha256).digest()):
        return None
    return _xor(ct, key, nonce)


class IdempotencyMiddleware:
    """Run a mutating call repeated with the same ``Idempotency-Key`` once.

    Scope: (bearer key, method, path, idempotency key) for 24 h. The key is reserved in the
    database *before* the call runs, so a retry arriving while the first is still running
    waits for its answer (up to 10 s, then 409 ``idempotency_in_progress``) instead of running
    it again; the same key with a different body answers 422 ``idempotency_mismatch``.
    Answers >= 500 release the key (a retry runs again). The stored answer is encrypted with
    a key derived from the bearer key and the Idempotency-Key (neither is stored), so a
    created project key or ingest secret never sits in the database in plaintext.
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
        body = await _read_all(receive)
        scope_id = hashlib.sha256(
            "\0".join((auth, scope["method"], scope["path"], key)).encode("utf-8", "replace")
        ).hexdigest()
        request_hash = hashlib.sha256(body).hexdigest()
        secret = _record_key(auth, key)
        sessions = self.get_sessions()
        record = await self._reserve(sessions, scope_id, request_hash)
        if record is not None:
            await self._answer_existing(send, sessions, scope_id, request_hash, secret, record)
            return
        status = 0
        out: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                out.append(message.get("body", b""))
            await send(message)

        stored = False
        try:
            await self.app(scope, _replaying(body, receive), capture)
            if 0 < status < 500:
                sealed = seal(secret, b"".join(out))
                async with sessions.begin() as s:
                    await s.execute(
                        update(IdempotencyRecord)
                        .where(IdempotencyRecord.scope == scope_id)
                        .values(status=status, body=sealed)
                    )
                stored = True
        finally:
            if not stored:
                await asyncio.shield(self._release(sessions, scope_id))

    async def _reserve(
        self, sessions: Any, scope_id: str, request_hash: str
    ) -> IdempotencyRecord | None:
        """Reserve the key (None) or return the record that already holds it."""
        for _ in range(3):
            now = now_us()
            try:
                async with sessions.begin() as s:
                    await s.execute(
                        delete(IdempotencyRecord).where(
                            IdempotencyRecord.created_us < now - _IDEMPOTENCY_TTL_US
                        )
                    )
                    s.add(
                        IdempotencyRecord(
                            scope=scope_id,
                            request_hash=request_hash,
                            status=_PENDING,
                            body="",
                            created_us=now,
                        )
                    )
                return None
            except IntegrityError:
                async with sessions() as s:
                    record: IdempotencyRecord | None = await s.get(IdempotencyRecord, scope_id)
                if record is None:
                    continue  # released meanwhile: try again
                if record.status == _PENDING and record.created_us < now - _PENDING_ABANDONED_US:
                    await self._release(sessions, scope_id)
                    continue
                return record
        raise RuntimeError("could not reserve the idempotency key")

    async def _release(self, sessions: Any, scope_id: str) -> None:
        try:
            async with sessions.begin() as s:
                await s.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.scope == scope_id,
                        IdempotencyRecord.status == _PENDING,
                    )
                )
        except Exception:
            log.warning("could not release an idempotency key", exc_info=True)

    async def _answer_existing(
        self,
        send: Send,
        sessions: Any,
        scope_id: str,
        request_hash: str,
        secret: bytes,
        record: IdempotencyRecord,
    ) -> None:
        if record.request_hash != request_hash:
            await _send_error(
                send,
                422,
                "idempotency_mismatch",
                "this Idempotency-Key was used with a different request body",
            )
            return
        waited = 0.0
        while record.status == _PENDING and waited < _PENDING_WAIT_S:
            await asyncio.sleep(0.05)
            waited += 0.05
            async with sessions() as s:
                fresh = await s.get(IdempotencyRecord, scope_id)
            if fresh is None:
                break
            record = fresh
        if record.status == _PENDING:
            await _send_error(
                send,
                409,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            return
        stored = unseal(secret, record.body) if record.body else b""
        if stored is None:
            stored = b""
        headers = [(b"idempotent-replayed", b"true")]
        if stored:
            headers.append((b"content-type", b"application/json"))
            headers.append((b"content-length", str(len(stored)).encode()))
        await send({"type": "http.response.start", "status": record.status, "headers": headers})
        await send({"type": "http.response.body", "body": stored})
