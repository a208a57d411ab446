"""Key material: generation, hashing, HMAC signatures of ingest requests."""

from __future__ import annotations

import hashlib
import hmac
import secrets

ADMIN_PREFIX = "eb_admin_"
PROJECT_PREFIX = "eb_pk_"


def new_admin_key() -> str:
    return ADMIN_PREFIX + secrets.token_urlsafe(32)


def new_project_key() -> str:
    return PROJECT_PREFIX + secrets.token_urlsafe(32)


def new_ingest_secret() -> str:
    """64 lowercase hex characters: the SDK hex-decodes it into the HMAC key."""
    return secrets.token_hex(32)


def hash_key(key: str) -> str:
    """Keys are long random strings, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_prefix(key: str) -> str:
    return key[:12]


def verify_signature(secret_key: bytes, timestamp: str, body: bytes, header: str) -> bool:
    """Check ``X-EB-Signature: v1=<hex>`` over ``timestamp + "." + raw body``, constant time."""
    if not header.startswith("v1="):
        return False
    expected = hmac.new(secret_key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(
        expected.encode(), header[3:].strip().lower().encode("ascii", "replace")
    )
