"""Helpers shared by the service functions: ids, cursors, metadata merge-patch rules."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any, TypeVar

from tripwise.server.errors import ApiError

METADATA_MAX_KEYS = 20
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 255


def new_id() -> str:
    return str(uuid.uuid4())


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"invalid cursor {cursor!r}") from exc
    if not isinstance(parts, list) or len(parts) != arity:
        raise ApiError(400, f"invalid cursor {cursor!r}")
    return parts


def decode_offset(cursor: str | None) -> int:
    """The position an offset cursor (breakers, routers, channels) points at; 0 without one."""
    if not cursor:
        return 0
    (offset,) = decode_cursor(cursor, 1)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ApiError(400, f"invalid cursor {cursor!r}")
    return offset


T = TypeVar("T")


def offset_page(rows: list[T], cursor: str | None, limit: int | None) -> tuple[list[T], str | None]:
    """One page of ``rows`` for an offset cursor (breakers, routers, channels), and the cursor
    of the next page (None on the last one). ``limit`` None means everything from the cursor."""
    limit = clamp_limit(limit, None)
    start = decode_offset(cursor)
    page = rows[start : start + limit] if limit else rows[start:]
    end = start + len(page)
    return page, encode_cursor(end) if limit and end < len(rows) else None


def clamp_limit(limit: int | None, default: int | None) -> int | None:
    if limit is None:
        return default
    if limit < 1:
        raise ApiError(400, f"limit must be a positive integer, got {limit}")
    return min(limit, 1000)


def check_metadata(meta: Any) -> dict[str, str]:
    """A metadata map: <= 20 string keys (<= 64 chars) with string values (<= 255 chars)."""
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise ApiError(422, "metadata must be an object of string values")
    if len(meta) > METADATA_MAX_KEYS:
        raise ApiError(422, f"metadata may hold at most {METADATA_MAX_KEYS} keys, got {len(meta)}")
    for k, v in meta.items():
        if not k or len(k) > METADATA_MAX_KEY:
            raise ApiError(422, f"metadata key {k!r} must be 1..{METADATA_MAX_KEY} characters")
        if not isinstance(v, str):
            raise ApiError(422, f"metadata value of {k!r} must be a string, got {v!r}")
        if len(v) > METADATA_MAX_VALUE:
            raise ApiError(422, f"metadata value of {k!r} exceeds {METADATA_MAX_VALUE} characters")
    return dict(meta)


def merge_metadata(current: dict[str, str] | None, body: Any) -> dict[str, str]:
    """Merge-patch: a bare map or ``{"metadata": {...}}``; ``null`` deletes a key."""
    if not isinstance(body, dict):
        raise ApiError(400, "metadata patch must be a JSON object")
    if len(body) == 1 and isinstance(body.get("metadata"), dict):
        body = body["metadata"]
    merged = dict(current or {})
    for k, v in body.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    return check_metadata(merged)
