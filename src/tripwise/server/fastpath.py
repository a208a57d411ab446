"""The ingest fast path: ``POST /v1/projects/{id}/ingest`` served before FastAPI routing.

Ingest is the one endpoint on the throughput path (hundreds of 500-sample batches a second),
and it needs nothing FastAPI adds: no bearer key, no body model, no dependencies. This pure
ASGI middleware answers it directly with the same checks and the same answers as the
documented route (body limit 413, signature 401, unknown project 404, rate limit 429, malformed
body 400, ``X-Request-ID`` echoed), saving the routing, dependency and response machinery per
request. Every other request passes through untouched.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from tripwise.server.errors import ApiError
from tripwise.server.ingest import ReplayGuard, ingest_request

_INGEST = re.compile(r"/v1/projects/([^/]{1,200})/ingest")
_JSON = (b"content-type", b"application/json")


class IngestFastPath:
    """Serve sample ingest without going through the router (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, get_plane: Any, replay: ReplayGuard, max_body_bytes: int
    ) -> None:
        self.app = app
        self.get_plane = get_plane
        self.replay = replay
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _INGEST.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = (headers.get("x-request-id") or uuid.uuid4().hex).encode("latin-1")[:200]
        extra: dict[str, str] | None = None
        try:
            body = await self._read_body(headers, receive)
            status = 202
            client = scope.get("client")
            payload: dict[str, Any] = await ingest_request(
                self.get_plane(),
                match.group(1),
                headers,
                body,
                self.replay,
                client[0] if client else "",
            )
        except ApiError as exc:
            status, extra = exc.status, exc.headers
            payload = {"code": exc.code, "message": exc.message}
            if exc.details is not None:
                payload["details"] = exc.details
        raw = orjson.dumps(payload)
        out = [_JSON, (b"content-length", b"%d" % len(raw)), (b"x-request-id", request_id)]
        if extra:
            out.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": raw})

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"body exceeds {limit} bytes")
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ApiError(400, "the client went away before the body was complete")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"body exceeds {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
