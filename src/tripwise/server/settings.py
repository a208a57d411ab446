"""Server settings: defaults, overridden by ``TRIPWISE_*`` environment variables, then flags."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any

_HTTP = ("auto", "h11", "httptools")
_LOOPS = ("auto", "asyncio", "uvloop")
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
MIN_ADMIN_KEY_LENGTH = 16


@dataclass
class Settings:
    """Everything ``tripwise serve`` can be told; each field maps to ``TRIPWISE_<NAME>``."""

    db: str = "sqlite:///tripwise.db"
    # replica mode (several processes on one PostgreSQL database): the shared Redis
    redis: str | None = None
    redis_prefix: str = "tripwise"
    host: str = "127.0.0.1"
    port: int = 8080
    admin_key: str | None = None
    rotate_admin_key: bool = False
    log_level: str = "info"
    # uvicorn: "auto" picks httptools / uvloop when installed (the `server` extra has them)
    http: str = "auto"
    loop: str = "auto"
    # evaluation and streams
    tick_interval_s: float = 0.1
    keepalive_s: float = 15.0
    shutdown_grace_s: float = 10.0
    # ingest and limits
    max_body_bytes: int = 4 * 1024 * 1024
    max_decompressed_bytes: int = 4 * 1024 * 1024
    signature_window_ms: int = 300_000
    rate_limit_per_s: float = 200.0
    rate_limit_burst: int = 400
    ingest_rate_limit_per_s: float = 2000.0
    ingest_rate_limit_burst: int = 4000
    unauth_rate_limit_per_s: float = 20.0
    unauth_rate_limit_burst: int = 100
    max_samples_per_batch: int = 10_000
    # notifications
    notify_queue_size: int = 1000
    notify_workers: int = 4
    notify_retries: int = 3
    notify_backoff_s: float = 0.5
    notify_timeout_s: float = 5.0
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "tripwise@localhost"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    pagerduty_url: str | None = "https://events.pagerduty.com/v2/enqueue"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``TRIPWISE_*`` variables (typed like the defaults); ``overrides`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("TRIPWISE_" + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(f.name, raw, getattr(cls, f.name))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).validated()

    def validated(self) -> Settings:
        check_db_url(self.db)
        if self.redis is not None:
            if not self.redis.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError(f"redis must be a redis:// URL, got {self.redis!r}")
            if not self.db.split("+", 1)[0].startswith("postgres"):
                raise ValueError(
                    "replica mode (--redis) needs a PostgreSQL database (--db postgresql://...): "
                    "a SQLite file cannot be shared by several processes"
                )
            if not self.redis_prefix or any(c.isspace() for c in self.redis_prefix):
                raise ValueError(
                    f"redis_prefix must be a non-empty word, got {self.redis_prefix!r}"
                )
        if isinstance(self.port, bool) or not 1 <= self.port <= 65535:
            raise ValueError(f"port must be 1..65535, got {self.port!r}")
        self.log_level = str(self.log_level).lower()
        if self.log_level not in _LOG_LEVELS:
            raise ValueError(
                f"log_level must be one of {', '.join(_LOG_LEVELS)}, got {self.log_level!r}"
            )
        if self.admin_key is not None and len(self.admin_key.strip()) < MIN_ADMIN_KEY_LENGTH:
            raise ValueError(
                f"the admin key must be at least {MIN_ADMIN_KEY_LENGTH} characters "
                f"(got {len(self.admin_key.strip())}); leave it unset to have one generated"
            )
        if self.rotate_admin_key and self.admin_key is None:
            raise ValueError(
                "rotate_admin_key needs an admin key (--admin-key or TRIPWISE_ADMIN_KEY)"
            )
        if self.max_samples_per_batch < 1:
            raise ValueError(
                f"max_samples_per_batch must be >= 1, got {self.max_samples_per_batch!r}"
            )
        for name in ("max_body_bytes", "max_decompressed_bytes", "notify_queue_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in (
            "tick_interval_s",
            "keepalive_s",
            "rate_limit_per_s",
            "ingest_rate_limit_per_s",
            "unauth_rate_limit_per_s",
        ):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):  # NaN fails both comparisons
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        for name, allowed in (("http", _HTTP), ("loop", _LOOPS)):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        if not self.shutdown_grace_s >= 0:  # NaN included
            raise ValueError(f"shutdown_grace_s must be >= 0, got {self.shutdown_grace_s!r}")
        if self.signature_window_ms < 150_000:
            raise ValueError(
                "signature_window_ms must be >= 150000 (the SDK retries a signed batch for "
                f"about 2 minutes), got {self.signature_window_ms!r}"
            )
        return self


def check_db_url(url: str) -> None:
    """Refuse database URLs the server cannot use, with the reason (before anything starts)."""
    scheme, sep, rest = url.partition("://")
    base = scheme.split("+", 1)[0].lower()
    if not sep or base not in ("sqlite", "postgresql", "postgres"):
        raise ValueError(
            f"unsupported database URL {url!r}: use sqlite:///path/to/file.db or "
            "postgresql://user@host:port/dbname"
        )
    if base == "sqlite":
        path = rest[1:] if rest.startswith("/") else rest
        if path in ("", ":memory:") or "mode=memory" in path:
            raise ValueError(
                f"an in-memory SQLite database cannot be used ({url!r}): every connection "
                "would see its own empty database; use a file, e.g. sqlite:///tripwise.db"
            )


def _parse(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"TRIPWISE_{name.upper()} must be a boolean, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"TRIPWISE_{name.upper()} must be an integer, got {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"TRIPWISE_{name.upper()} must be a number, got {raw!r}") from None
    return raw or None
