"""Sample ingest: signature and timestamp checks on the raw bytes, capped gunzip, parsing.

Order of the checks (each answers before the next runs): the project exists (404), the
signature and timestamp are valid (401; failures spend a per-client budget, never the
project's), the project's ingest rate (429), the replay guard, then the bounded parse (413 /
400) and the samples. A batch is validated as a whole before any breaker window changes, and
its signature is remembered by the replay guard only once it has been applied, so a retry of
a batch that failed is processed, not swallowed.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import zlib
from collections import Counter
from typing import Any

import orjson

from tripwise.server.control import ControlPlane
from tripwise.server.errors import ApiError
from tripwise.server.evaluator.projects import ProjectRuntime
from tripwise.server.security import verify_signature
from tripwise.server.timefmt import now_ms


class ReplayGuard:
    """Remembers each project's applied (timestamp, signature) pairs while the timestamp is
    inside the accepted window; older timestamps are refused by the window check anyway, so
    the memory is bounded by time (per project), not by a count other projects could exhaust.
    """

    def __init__(self, window_ms: int = 300_000) -> None:
        self.window_ms = window_ms
        self._seen: dict[str, set[str]] = {}
        self._expiry: dict[str, list[tuple[int, str]]] = {}

    def _expire(self, project_id: str, now: int) -> None:
        heap = self._expiry.get(project_id)
        if not heap:
            return
        seen = self._seen[project_id]
        horizon = now - self.window_ms
        while heap and heap[0][0] < horizon:
            _, token = heapq.heappop(heap)
            seen.discard(token)

    def seen(self, project_id: str, token: str, now: int) -> bool:
        """Was this (timestamp:signature) token already applied for the project?"""
        self._expire(project_id, now)
        return token in self._seen.get(project_id, ())

    def remember(self, project_id: str, token: str, ts_ms: int) -> None:
        self._seen.setdefault(project_id, set()).add(token)
        heapq.heappush(self._expiry.setdefault(project_id, []), (ts_ms, token))

    def forget_project(self, project_id: str) -> None:
        self._seen.pop(project_id, None)
        self._expiry.pop(project_id, None)

    def __len__(self) -> int:
        return sum(len(s) for s in self._seen.values())


class _Unauthorized(ApiError):
    """A failed authentication; the caller charges it to the client's unauthenticated budget."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(401, message)
        self.reason = reason


def _unauthorized(plane: ControlPlane, client: str, reason: str, message: str) -> ApiError:
    plane.metrics.rejected_samples.labels(reason=reason).inc()
    return _Unauthorized(reason, message)


async def _charge_failure(plane: ControlPlane, client: str) -> float:
    """Spend the client's budget for failed authentication; seconds to wait, or 0."""
    s = plane.settings
    if plane.bus is not None:
        return await plane.bus.acquire(
            "unauth:" + client, s.unauth_rate_limit_per_s, s.unauth_rate_limit_burst
        )
    return plane.unauth_limiter.acquire("ingest:" + client)


async def _charge_project(plane: ControlPlane, project_id: str) -> float:
    s = plane.settings
    if plane.bus is not None:
        return await plane.bus.acquire(
            "ingest:" + project_id, s.ingest_rate_limit_per_s, s.ingest_rate_limit_burst
        )
    return plane.ingest_limiter.acquire(project_id)


def check_signature(
    plane: ControlPlane,
    project: ProjectRuntime,
    headers: Any,
    body: bytes,
    now: int,
    client: str = "",
) -> tuple[str, int] | None:
    """Verify ``X-EB-Signature``; returns (replay token, timestamp) or None when unsigned."""
    sig: str | None = headers.get("x-eb-signature")
    if sig is None:
        if project.signed:
            raise _unauthorized(
                plane,
                client,
                "missing_signature",
                "this project requires signed ingest: X-EB-Signature missing",
            )
        return None
    ts: str = headers.get("x-eb-timestamp", "")
    # str.isdigit() accepts non-ASCII digits ("²", "٣") that int() refuses: ASCII only.
    if not (ts.isascii() and ts.isdigit()) or len(ts) > 16:
        raise _unauthorized(
            plane, client, "bad_timestamp", "X-EB-Timestamp must be epoch milliseconds"
        )
    if abs(now - int(ts)) > plane.settings.signature_window_ms:
        raise _unauthorized(
            plane,
            client,
            "stale_timestamp",
            f"X-EB-Timestamp is outside the accepted window of "
            f"±{plane.settings.signature_window_ms // 1000} s",
        )
    if not verify_signature(project.secret_key, ts, body, sig):
        raise _unauthorized(
            plane, client, "bad_signature", "X-EB-Signature does not match the request body"
        )
    return ts + ":" + sig, int(ts)


def decode_body(body: bytes, encoding: str, cap: int, max_samples: int = 10_000) -> list[Any]:
    """Gunzip (at most ``cap`` bytes out) and parse ``{"samples": [...]}`` or a bare array.

    Before anything is parsed, the structure is bounded by counting bytes (C speed): at most
    ``max_samples`` objects and a few separators per sample, so no request can make the
    parser build millions of objects and stall the event loop for every other project.
    """
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = d.decompress(body, cap + 1)
        except zlib.error as exc:
            raise ApiError(400, f"body is not valid gzip: {exc}") from exc
        if len(raw) > cap or d.unconsumed_tail:
            raise ApiError(413, f"decompressed body exceeds {cap} bytes")
        if not d.eof:
            raise ApiError(400, "gzip body is truncated")
    elif encoding in ("", "identity"):
        raw = body
    else:
        raise ApiError(415, f"unsupported Content-Encoding {encoding!r}: use gzip")
    if raw.count(b"{") > max_samples + 1 or raw.count(b",") > 32 * (max_samples + 1):
        raise ApiError(413, f"a batch may hold at most {max_samples} samples")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson is strict; the SDK may send NaN/Infinity tokens (contract §1.3), so anything
        # orjson refuses gets a second chance with the tolerant standard parser.
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, f"body is not valid JSON: {exc}") from exc
    if isinstance(doc, dict):
        doc = doc.get("samples")
    if not isinstance(doc, list):
        raise ApiError(400, 'body must be {"samples": [...]} or an array of samples')
    if len(doc) > max_samples:
        raise ApiError(413, f"a batch may hold at most {max_samples} samples, got {len(doc)}")
    return doc


async def ingest_request(
    plane: ControlPlane,
    project_id: str,
    headers: Any,
    body: bytes,
    replay: ReplayGuard,
    client: str = "",
) -> dict[str, Any]:
    """The whole ingest endpoint after the body is read: project, signature, rate, samples."""
    project = plane.projects.get(project_id)
    if project is None:
        raise ApiError(404, f"project {project_id!r} not found")
    now = now_ms()
    try:
        token = check_signature(plane, project, headers, body, now, client)
    except _Unauthorized:
        wait = await _charge_failure(plane, client)
        if wait:
            raise ApiError(
                429,
                "too many unauthenticated ingest requests from this client",
                headers=plane.limiter.retry_after_header(wait),
            ) from None
        raise
    wait = await _charge_project(plane, project.id)
    if wait:
        plane.metrics.rejected_samples.labels(reason="rate_limited").inc()
        raise ApiError(
            429, "ingest rate limit exceeded", headers=plane.limiter.retry_after_header(wait)
        )
    bus = plane.bus
    if bus is None:
        # No await from here on: checking, applying and remembering are one atomic step.
        if token is not None and replay.seen(project.id, token[0], now):
            return {"accepted": 0, "rejected": 0, "replayed": True}
        result = ingest(plane, project, headers, body, now)
        if token is not None:
            replay.remember(project.id, *token)
        return result
    # Replica mode: the signature is reserved in Redis first (a duplicate sent to another
    # replica at the same time loses the race), and released if the batch fails.
    if token is not None and not await bus.claim_batch(
        project.id, token[0], plane.settings.signature_window_ms
    ):
        return {"accepted": 0, "rejected": 0, "replayed": True}
    try:
        return ingest(plane, project, headers, body, now)
    except BaseException:
        if token is not None:
            await asyncio.shield(bus.release_batch(project.id, token[0]))
        raise


def ingest(
    plane: ControlPlane, project: ProjectRuntime, headers: Any, body: bytes, now: int
) -> dict[str, Any]:
    samples = decode_body(
        body,
        headers.get("content-encoding", ""),
        plane.settings.max_decompressed_bytes,
        plane.settings.max_samples_per_batch,
    )
    rejected: Counter[str] = Counter()
    hints: list[str] = []
    failures = project.failures
    forward = None
    if plane.bus is not None and not plane.leads(project.id):
        bus, pid = plane.bus, project.id

        def forward(groups: list[Any]) -> None:
            bus.send_samples(pid, groups)

    accepted, unmatched = project.ingest(samples, now, rejected, hints, forward)
    metrics = plane.metrics
    if project.failures != failures:
        metrics.evaluation_errors.inc(project.failures - failures)
    metrics.ingest_samples.inc(accepted)
    metrics.ingest_batches.inc()
    for reason, n in rejected.items():
        metrics.rejected_samples.labels(reason=reason).inc(n)
    out: dict[str, Any] = {"accepted": accepted, "rejected": sum(rejected.values())}
    if rejected:
        out["rejected_by_reason"] = dict(rejected)
    if unmatched:
        out["unmatched"] = unmatched
    if hints:
        out["hints"] = hints
    return out
