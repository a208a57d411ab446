"""Wire representations of every resource (contract §2.3)."""

from __future__ import annotations

from typing import Any

from tripwise.server.evaluator.breaker import BreakerRuntime, wire_state
from tripwise.server.storage import models as m
from tripwise.server.timefmt import iso, iso_ms

_SECRET_CONFIG_KEYS = ("secret", "routing_key", "password")
# overrides are answered in the words the override endpoint takes (force_open, ...)
OVERRIDE_WORDS = {"forced_open": "force_open", "forced_closed": "force_closed"}


def workspace_json(w: m.Workspace) -> dict[str, Any]:
    return {
        "id": w.id,
        "name": w.name,
        "slug": w.slug,
        "org_id": w.org_id,
        "inserted_at": iso(w.inserted_us),
    }


def project_json(p: m.Project, *, with_secret: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "project_id": p.id,
        "id": p.id,
        "name": p.name,
        "workspace_id": p.workspace_id,
        "enable_signed_ingest": p.enable_signed_ingest,
        "slack_webhook_url": p.slack_webhook_url,
        "trace_id_url_template": p.trace_id_url_template,
        "inserted_at": iso(p.inserted_us),
        "updated_at": iso(p.updated_us),
    }
    if with_secret:
        out["ingest_secret"] = p.ingest_secret
    return out


def breaker_json(
    b: m.Breaker, router_ids: list[str], runtime: BreakerRuntime | None = None
) -> dict[str, Any]:
    confirmation = (b.recovery_allow_rate_ramp_steps + 1) * b.eval_interval_ms
    state = wire_state(runtime.state) if runtime is not None else b.state
    return {
        "id": b.id,
        "name": b.name,
        "metric": b.metric,
        "kind": b.kind,
        "op": b.op,
        "threshold": b.threshold,
        "kind_params": dict(b.kind_params or {}),
        "window_ms": b.window_ms,
        "min_count": b.min_count,
        "min_state_duration_ms": b.min_state_duration_ms,
        "cooldown_ms": b.cooldown_ms,
        "eval_interval_ms": b.eval_interval_ms,
        "half_open_confirmation_ms": confirmation,
        "half_open_backoff_enabled": b.half_open_backoff_enabled,
        "half_open_backoff_cap_ms": b.half_open_backoff_cap_ms,
        "half_open_indeterminate_policy": b.half_open_indeterminate_policy,
        "recovery_window_ms": confirmation,
        "recovery_allow_rate_ramp_steps": b.recovery_allow_rate_ramp_steps,
        "actions": dict(b.actions or {}),
        "metadata": dict(b.meta or {}),
        "router_id": router_ids[0] if router_ids else None,
        "router_ids": router_ids,
        "state": state,
        "override": OVERRIDE_WORDS.get(
            runtime.override if runtime is not None else b.override,
            runtime.override if runtime is not None else b.override,
        ),
        "inserted_at": iso(b.inserted_us),
        "updated_at": iso(b.updated_us),
    }


def breaker_envelope(
    b: m.Breaker, router_ids: list[str], runtime: BreakerRuntime | None
) -> dict[str, Any]:
    return {
        "breaker": breaker_json(b, router_ids, runtime),
        "router_id": router_ids[0] if router_ids else None,
        "router_ids": router_ids,
    }


def state_json(b: BreakerRuntime) -> dict[str, Any]:
    return {
        "breaker_id": b.id,
        "name": b.name,
        "state": wire_state(b.state),
        "allow_rate": b.allow_rate,
        "updated_at": iso_ms(max(b.state_changed_ms, b.rate_changed_ms)),
        # answered in the words the override endpoint takes (force_open, force_closed, automatic)
        "override": OVERRIDE_WORDS.get(b.override, b.override),
        "override_reason": b.override_reason,
    }


def router_json(
    r: m.Router, breakers: list[dict[str, Any]], unmatched: dict[str, int] | None = None
) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "mode": r.mode,
        "enabled": r.enabled,
        "breaker_count": len(breakers),
        "breakers": breakers,
        "inserted_at": iso(r.inserted_us),
        "updated_at": iso(r.updated_us),
        "created_by": "user",
        "metadata": dict(r.meta or {}),
        # samples accepted for this router that no linked breaker watches, by metric (since
        # the server started): a misspelt metric or a missing link shows up here
        "unmatched_samples": dict(unmatched or {}),
    }


def _mask(config: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    for k in _SECRET_CONFIG_KEYS:
        if isinstance(out.get(k), str) and out[k]:
            out[k] = "****" + out[k][-4:] if len(out[k]) > 8 else "****"
    return out


def channel_json(c: m.Channel) -> dict[str, Any]:
    return {
        "id": c.id,
        "project_id": c.project_id,
        "name": c.name,
        "channel": c.channel,
        "config": _mask(dict(c.config or {})),
        "events": list(c.events or []),
        "enabled": c.enabled,
        "created_at": iso(c.created_us),
        "updated_at": iso(c.updated_us),
    }


def event_json(e: m.Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "project_id": e.project_id,
        "breaker_id": e.breaker_id,
        "breaker_name": e.breaker_name,
        "from_state": e.from_state,
        "to_state": e.to_state,
        "reason": e.reason,
        "timestamp": iso(e.ts_us),
    }


def key_json(k: m.ApiKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "name": k.name,
        "key_prefix": k.key_prefix,
        "inserted_at": iso(k.inserted_us),
        "last_used_at": iso(k.last_used_us),
    }
