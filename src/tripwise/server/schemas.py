"""Request bodies of the admin API (pydantic); unknown keys are ignored like the SDK expects."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal[
    "error_rate",
    "avg",
    "p95",
    "percentile",
    "max",
    "min",
    "sum",
    "stddev",
    "count",
    "consecutive_failures",
    "delta",
]
Op = Literal["gt", "lt", "gte", "lte"]
Policy = Literal["optimistic", "conservative", "pessimistic"]
RouterMode = Literal["static", "canary", "weighted"]
ChannelType = Literal["slack", "pagerduty", "email", "webhook"]
ChannelEvent = Literal["trip", "recover"]


def _default_events() -> list[ChannelEvent]:
    """A new channel hears about trips and recoveries unless told otherwise."""
    return ["trip", "recover"]


Name = Field(min_length=1, max_length=200)
_MAX_MS = 30 * 24 * 3600 * 1000  # 30 days
Ms = Field(ge=0, le=_MAX_MS)
Threshold = Field(allow_inf_nan=False, ge=-1e300, le=1e300)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WorkspaceIn(_Body):
    name: str = Name
    slug: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class WorkspacePatch(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    slug: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    )


class ProjectIn(_Body):
    name: str = Name
    workspace_id: str | None = Field(default=None, max_length=200)


class ProjectPatch(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    slack_webhook_url: str | None = Field(default=None, max_length=2000)
    trace_id_url_template: str | None = Field(default=None, max_length=2000)
    enable_signed_ingest: bool | None = None


class KeyIn(_Body):
    name: str | None = Field(default=None, max_length=200)


class BreakerPatch(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    metric: str | None = Field(default=None, min_length=1, max_length=200)
    kind: Kind | None = None
    op: Op | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False, ge=-1e300, le=1e300)
    kind_params: dict[str, Any] | None = None
    window_ms: int | None = Field(default=None, ge=0, le=_MAX_MS)
    min_count: int | None = Field(default=None, ge=0, le=10**9)
    min_state_duration_ms: int | None = Field(default=None, ge=0, le=_MAX_MS)
    cooldown_ms: int | None = Field(default=None, ge=0, le=_MAX_MS)
    eval_interval_ms: int | None = Field(default=None, ge=0, le=_MAX_MS)
    half_open_backoff_enabled: bool | None = None
    half_open_backoff_cap_ms: int | None = Field(default=None, ge=0, le=_MAX_MS)
    half_open_indeterminate_policy: Policy | None = None
    recovery_allow_rate_ramp_steps: int | None = Field(default=None, ge=0, le=100)
    actions: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class BreakerIn(BreakerPatch):
    """CreateBreaker: absent optional keys get the server defaults (contract §3)."""

    name: str = Name
    metric: str = Name
    kind: Kind
    op: Op
    threshold: float = Threshold


class BreakerSync(_Body):
    breakers: list[BreakerIn] = Field(max_length=10_000)


class BatchStatesIn(_Body):
    breaker_ids: list[str] | None = Field(default=None, max_length=10_000)
    router_id: str | None = None


class OverrideIn(_Body):
    mode: Literal["force_open", "force_closed", "automatic"]
    reason: str = Field(default="", max_length=1000)


class RouterIn(_Body):
    name: str = Name
    mode: RouterMode = "static"
    enabled: bool = True
    description: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, Any] | None = None
    breaker_ids: list[str] | None = Field(default=None, max_length=10_000)


class RouterPatch(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    mode: RouterMode | None = None
    enabled: bool | None = None
    description: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, Any] | None = None


class LinkIn(_Body):
    breaker_ids: list[str] | None = Field(default=None, max_length=10_000)
    breaker_id: str | None = None


class ChannelIn(_Body):
    name: str = Name
    channel: ChannelType
    config: dict[str, Any] = Field(default_factory=dict)
    events: list[ChannelEvent] = Field(default_factory=_default_events)
    enabled: bool = True


class ChannelPatch(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None
    events: list[ChannelEvent] | None = None
    enabled: bool | None = None
