"""The control plane's tables (SQLAlchemy 2 declarative models).

Times are stored as integer epoch microseconds (``*_us``) so SQLite and PostgreSQL sort and
compare them identically; the API renders them as ISO-8601 strings.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "orgs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_us: Mapped[int] = mapped_column(BigInteger)


class Workspace(Base):
    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("org_id", "slug"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    inserted_us: Mapped[int] = mapped_column(BigInteger)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    enable_signed_ingest: Mapped[bool] = mapped_column(Boolean, default=True)
    slack_webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    trace_id_url_template: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The ingest secret is an HMAC key the server must use, so it cannot be stored hashed.
    ingest_secret: Mapped[str] = mapped_column(String(128))
    inserted_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)


class ApiKey(Base):
    """Admin keys (``project_id`` null, org-wide) and project keys; only a hash is stored."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    key_prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    inserted_us: Mapped[int] = mapped_column(BigInteger)
    last_used_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Breaker(Base):
    __tablename__ = "breakers"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    op: Mapped[str] = mapped_column(String(8))
    threshold: Mapped[float] = mapped_column(Float)
    kind_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    window_ms: Mapped[int] = mapped_column(BigInteger)
    min_count: Mapped[int] = mapped_column(BigInteger)
    min_state_duration_ms: Mapped[int] = mapped_column(BigInteger)
    cooldown_ms: Mapped[int] = mapped_column(BigInteger)
    eval_interval_ms: Mapped[int] = mapped_column(BigInteger)
    half_open_backoff_enabled: Mapped[bool] = mapped_column(Boolean)
    half_open_backoff_cap_ms: Mapped[int] = mapped_column(BigInteger)
    half_open_indeterminate_policy: Mapped[str] = mapped_column(String(16))
    recovery_allow_rate_ramp_steps: Mapped[int] = mapped_column(Integer)
    actions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    inserted_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)
    # Evaluated state, persisted so the evaluator resumes after a restart.
    state: Mapped[str] = mapped_column(String(16), default="closed")
    allow_rate: Mapped[float] = mapped_column(Float, default=1.0)
    state_changed_ms: Mapped[int] = mapped_column(BigInteger)
    rate_changed_ms: Mapped[int] = mapped_column(BigInteger)
    half_open_failures: Mapped[int] = mapped_column(Integer, default=0)
    healthy_evals: Mapped[int] = mapped_column(Integer, default=0)
    override: Mapped[str] = mapped_column(String(16), default="automatic")
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Router(Base):
    __tablename__ = "routers"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    mode: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    inserted_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)


class RouterBreaker(Base):
    __tablename__ = "router_breakers"
    router_id: Mapped[str] = mapped_column(
        ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True
    )
    breaker_id: Mapped[str] = mapped_column(
        ForeignKey("breakers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    linked_us: Mapped[int] = mapped_column(BigInteger)


class Channel(Base):
    __tablename__ = "notification_channels"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)


class Event(Base):
    """A breaker state transition. Kept when the breaker is deleted (no foreign key)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_project_ts", "project_id", "ts_us", "id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    breaker_id: Mapped[str] = mapped_column(String(36), index=True)
    breaker_name: Mapped[str] = mapped_column(String(200))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    ts_us: Mapped[int] = mapped_column(BigInteger)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_us: Mapped[int] = mapped_column(BigInteger, index=True)
