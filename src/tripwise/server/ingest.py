"""Sample ingest: signature and timestamp checks on the raw bytes, capped gunzip, parsing."""

from __future__ import annotations

import json
import zlib
from collections import Counter, OrderedDict
from typing import Any

import orjson

from tripwise.server.control import ControlPlane
from tripwise.server.errors import ApiError
from tripwise.server.evaluator.projects import ProjectRuntime
from tripwise.server.security import verify_signature
from tripwise.server.timefmt import now_ms

_REPLAY_MEMORY = 10_000


class ReplayGuard:
    """Remembers recent (timestamp, signature) pairs so a re-sent batch counts once."""

    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def seen(self, project_id: str, ts: str, sig: str) -> bool:
        key = (project_id, ts, sig)
        if key in self._seen:
            return True
        self._seen[key] = None
        if len(self._seen) > _REPLAY_MEMORY:
            self._seen.popitem(last=False)
        return False


def check_signature(
    plane: ControlPlane, project: ProjectRuntime, headers: Any, body: bytes, now: int
) -> str | None:
    """Verify ``X-EB-Signature``; returns the signature (for replay detection) or None."""
    sig: str | None = headers.get("x-eb-signature")
    if sig is None:
        if project.signed:
            plane.metrics.rejected_samples.labels(reason="missing_signature").inc()
            raise ApiError(401, "this project requires signed ingest: X-EB-Signature missing")
        return None
    ts: str = headers.get("x-eb-timestamp", "")
    if not ts.isdigit() or len(ts) > 16:
        plane.metrics.rejected_samples.labels(reason="bad_timestamp").inc()
        raise ApiError(401, "X-EB-Timestamp must be epoch milliseconds")
    if abs(now - int(ts)) > plane.settings.signature_window_ms:
        plane.metrics.rejected_samples.labels(reason="stale_timestamp").inc()
        raise ApiError(
            401,
            f"X-EB-Timestamp is outside the accepted window of "
            f"±{plane.settings.signature_window_ms // 1000} s",
        )
    if not verify_signature(project.secret_key, ts, body, sig):
        plane.metrics.rejected_samples.labels(reason="bad_signature").inc()
        raise ApiError(401, "X-EB-Signature does not match the request body")
    return ts + ":" + sig


def decode_body(body: bytes, encoding: str, cap: int) -> list[Any]:
    """Gunzip (at most ``cap`` bytes out) and parse ``{"samples": [...]}`` or a bare array."""
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
    return doc


def ingest_request(
    plane: ControlPlane, project_id: str, headers: Any, body: bytes, replay: ReplayGuard
) -> dict[str, int]:
    """The whole ingest endpoint after the body is read: project, rate limit, samples."""
    project = plane.projects.get(project_id)
    if project is None:
        raise ApiError(404, f"project {project_id!r} not found")
    wait = plane.ingest_limiter.acquire(project.id)
    if wait:
        plane.metrics.rejected_samples.labels(reason="rate_limited").inc()
        raise ApiError(
            429, "ingest rate limit exceeded", headers=plane.limiter.retry_after_header(wait)
        )
    return ingest(plane, project, headers, body, replay)


def ingest(
    plane: ControlPlane, project: ProjectRuntime, headers: Any, body: bytes, replay: ReplayGuard
) -> dict[str, int]:
    now = now_ms()
    token = check_signature(plane, project, headers, body, now)
    if token is not None and replay.seen(project.id, token, ""):
        return {"accepted": 0, "rejected": 0}
    samples = decode_body(
        body, headers.get("content-encoding", ""), plane.settings.max_decompressed_bytes
    )
    rejected: Counter[str] = Counter()
    accepted = project.ingest(samples, now, rejected)
    metrics = plane.metrics
    metrics.ingest_samples.inc(accepted)
    metrics.ingest_batches.inc()
    for reason, n in rejected.items():
        metrics.rejected_samples.labels(reason=reason).inc(n)
    return {"accepted": accepted, "rejected": sum(rejected.values())}
