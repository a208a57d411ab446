"""One server-side breaker: its sample window (core ``TimeWindow``) and its state machine.

Pure logic with explicit times (epoch milliseconds), so tests drive it without sleeping.
The window is the core's :class:`tripwise.core.TimeWindow`; aggregates are the core's
:class:`tripwise.core.Aggregate` (nearest-rank quantiles from its log histogram, within 1 %).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tripwise.core.states import State
from tripwise.core.windows import Aggregate, TimeWindow
from tripwise.server.evaluator.batch import SummaryCache, summarize
from tripwise.server.evaluator.failure_run import FailureRun

# The core's states; being ``str`` enums they are the contract's wire strings as they are
# (``State.HALF_OPEN == "half_open"``), which is how they reach JSON, SSE and the database.
CLOSED, OPEN, HALF_OPEN = State.CLOSED, State.OPEN, State.HALF_OPEN
KINDS = (
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
)
OPS = ("gt", "lt", "gte", "lte")
POLICIES = ("optimistic", "conservative", "pessimistic")
OVERRIDES = ("automatic", "forced_open", "forced_closed")
WINDOW_BUCKETS = 10
_VALUE_KINDS = frozenset(("avg", "p95", "percentile", "max", "min", "sum", "stddev", "delta"))


@dataclass(frozen=True)
class Change:
    """What an evaluation (or an override) changed; ``reason`` is set for state transitions."""

    breaker: BreakerRuntime
    from_state: str
    to_state: str
    allow_rate: float
    reason: str | None
    at_ms: int

    @property
    def is_transition(self) -> bool:
        return self.reason is not None


_OPS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "lt": operator.lt,
    "gte": operator.ge,
    "lte": operator.le,
}


def compare(value: float, op: str, threshold: float) -> bool:
    return _OPS[op](value, threshold)


def wire_state(state: str) -> str:
    """A state as the contract spells it on the wire (JSON, SSE, database rows)."""
    return State(state).value


class BreakerRuntime:
    """A breaker definition compiled to a window plus its evaluated state."""

    __slots__ = (
        "_cached",
        "_cached_epoch",
        "_summary_key",
        "_uses_value",
        "_window_key",
        "allow_rate",
        "backoff_cap_ms",
        "backoff_enabled",
        "cooldown_ms",
        "dirty",
        "eval_interval_ms",
        "half_open_failures",
        "healthy_evals",
        "id",
        "kind",
        "kind_params",
        "last_eval_ms",
        "metric",
        "min_count",
        "min_state_duration_ms",
        "name",
        "next_eval_ms",
        "op",
        "override",
        "override_reason",
        "percentile",
        "policy",
        "project_id",
        "ramp_steps",
        "rate_changed_ms",
        "relative",
        "run",
        "state",
        "state_changed_ms",
        "threshold",
        "window",
        "window_ms",
    )

    def __init__(self, row: Any, *, now_ms: int) -> None:
        self.id: str = row.id
        self.project_id: str = row.project_id
        self.state: State = State(row.state)
        self.allow_rate: float = row.allow_rate
        self.state_changed_ms: int = row.state_changed_ms
        self.rate_changed_ms: int = row.rate_changed_ms
        self.half_open_failures: int = row.half_open_failures
        self.healthy_evals: int = row.healthy_evals
        self.override: str = row.override
        self.override_reason: str | None = row.override_reason
        self.next_eval_ms = now_ms
        self.last_eval_ms: int | None = None
        self.configure(row)

    def configure(self, row: Any) -> None:
        """(Re)compile the definition; a changed window definition starts an empty window."""
        old = getattr(self, "_window_key", None)
        self.name: str = row.name
        self.metric: str = row.metric
        self.kind: str = row.kind
        self.op: str = row.op
        self.threshold: float = float(row.threshold)
        self.kind_params: dict[str, Any] = dict(row.kind_params or {})
        self.window_ms: int = row.window_ms
        self.min_count: int = row.min_count
        self.min_state_duration_ms: int = row.min_state_duration_ms
        self.cooldown_ms: int = row.cooldown_ms
        self.eval_interval_ms: int = row.eval_interval_ms
        self.backoff_enabled: bool = row.half_open_backoff_enabled
        self.backoff_cap_ms: int = row.half_open_backoff_cap_ms
        self.policy: str = row.half_open_indeterminate_policy
        self.ramp_steps: int = row.recovery_allow_rate_ramp_steps
        self.percentile = float(self.kind_params.get("percentile", 99)) / 100.0
        self.relative = self.kind_params.get("mode", "absolute") == "relative"
        self._uses_value = self.kind in _VALUE_KINDS
        key = (self.kind, self.window_ms)
        if key != old:
            self._window_key = key
            # A window of 0 ms is stored as sent; it holds (almost) nothing, so it never trips.
            seconds = max(self.window_ms, 1) / 1000.0
            periods = 2 if self.kind == "delta" else 1
            quantiles = self.kind in ("p95", "percentile")
            self.window = TimeWindow(
                seconds * periods,
                WINDOW_BUCKETS * periods,
                track_histogram=quantiles,
                window_histogram=quantiles,
            )
            self._summary_key = (self.window.width, self._uses_value, quantiles)
            self.run = FailureRun()
            self.dirty = True
            self._cached: tuple[float | None, int] = (None, 0)
            self._cached_epoch = -1

    # -- samples -------------------------------------------------------------------------

    def add(self, value: float, ok: bool, ts_ms: int) -> None:
        """Record one sample (already validated and clamped to the server clock)."""
        if self.window.add(value if self._uses_value else None, not ok, ts_ms / 1000.0):
            self.dirty = True
        if self.kind == "consecutive_failures":
            self.run.add(ts_ms, ok)
            self.dirty = True

    def add_batch(
        self, tss: list[int], values: list[float], oks: list[bool], cache: SummaryCache
    ) -> None:
        """Record a validated group of samples; ``cache`` shares the per-bucket summaries
        between breakers whose windows have the same geometry."""
        key = self._summary_key
        summary = cache.get(key)
        if summary is None:
            summary = cache[key] = summarize(tss, values, oks, *key)
        add = self.window.add_aggregate
        for now, agg in summary:
            if add(agg, now):
                self.dirty = True
        if self.kind == "consecutive_failures":
            self.run.add_many(tss, oks)
            self.dirty = True

    # -- evaluation ------------------------------------------------------------------------

    def measure(self, now_ms: int) -> tuple[float | None, int]:
        """The breaker's aggregate over its window and the sample count it is based on.

        Reads the window's running totals (O(1)); only min/max scan the buckets, only the
        quantile kinds read a histogram (the window's own, kept up to date as samples land).
        """
        now = now_ms / 1000.0
        window = self.window
        kind = self.kind
        if kind == "delta":
            # The window spans two periods: the previous one is the whole window minus the
            # current period, so only the current period needs a bucket scan.
            cur = window.aggregate(now, span=window.seconds / 2)
            prev_valued = window.valued - cur.valued
            if cur.mean is None or not prev_valued:
                return None, cur.count
            prev_mean = (window.total - cur.total) / prev_valued
            if self.relative:
                if prev_mean == 0:
                    return None, cur.count
                return (cur.mean - prev_mean) / abs(prev_mean), cur.count
            return cur.mean - prev_mean, cur.count
        window.expire(now)
        count = window.count
        if kind == "error_rate":
            return (window.flagged / count if count else None), count
        if kind == "count":
            return float(count), count
        if kind == "consecutive_failures":
            return float(self.run.length(now_ms, self.window_ms)), count
        valued = window.valued
        if not valued:
            return None, count
        if kind == "avg":
            return window.total / valued, count
        if kind == "sum":
            return window.total, count
        if kind == "stddev":
            spread = Aggregate(valued=valued, total=window.total, sum_sq=window.sum_sq)
            return spread.stddev, count
        if kind == "p95":
            return window.quantile(0.95), count
        if kind == "percentile":
            return window.quantile(self.percentile), count
        low, high = window.extremes()
        return (high if kind == "max" else low), count

    def _measure_cached(self, now_ms: int) -> tuple[float | None, int]:
        """``measure`` again only when samples arrived or a window bucket expired since."""
        epoch = int(now_ms / 1000.0 // self.window.width)
        if self.dirty or epoch != self._cached_epoch or self.kind == "consecutive_failures":
            self._cached = self.measure(now_ms)
            self._cached_epoch = epoch
            self.dirty = False
        return self._cached

    def current_cooldown_ms(self) -> int:
        """Cooldown before the next half-open, doubled per failed half-open when enabled."""
        if not self.backoff_enabled or not self.half_open_failures:
            return self.cooldown_ms
        backed: int = self.cooldown_ms * 2 ** min(self.half_open_failures, 40)
        return max(self.cooldown_ms, min(self.backoff_cap_ms, backed))

    def confirmation_ms(self) -> int:
        return (self.ramp_steps + 1) * self.eval_interval_ms

    def _describe(self, value: float) -> str:
        return f"{self.kind} {value:.6g} {self.op} {self.threshold:g}"

    def evaluate(self, now_ms: int) -> Change | None:
        """One evaluation tick: returns the state or ``allow_rate`` change it caused, if any."""
        self.next_eval_ms = now_ms + self.eval_interval_ms
        self.last_eval_ms = now_ms
        if self.override != "automatic":
            return None
        state = self.state
        if state == OPEN:
            cooldown = self.current_cooldown_ms()
            if now_ms - self.state_changed_ms < cooldown:
                return None
            self.window.clear()
            self.run.clear(since_ms=now_ms)
            self.dirty = True
            self.healthy_evals = 0
            return self._move(
                HALF_OPEN, 1.0 / (self.ramp_steps + 1), now_ms, f"cooldown {cooldown} ms elapsed"
            )
        value, count = self._measure_cached(now_ms)
        indeterminate = value is None or count < self.min_count or math.isnan(value)
        if state == CLOSED:
            if indeterminate or not compare(value, self.op, self.threshold):  # type: ignore[arg-type]
                return None
            if now_ms - self.state_changed_ms < self.min_state_duration_ms:
                return None
            return self._move(OPEN, 0.0, now_ms, self._describe(value))  # type: ignore[arg-type]
        # half-open
        if not indeterminate and compare(value, self.op, self.threshold):  # type: ignore[arg-type]
            self.half_open_failures += 1
            reason = f"{self._describe(value)} during half_open"  # type: ignore[arg-type]
            return self._move(OPEN, 0.0, now_ms, reason)
        if indeterminate:
            if self.policy == "pessimistic":
                self.half_open_failures += 1
                return self._move(
                    OPEN, 0.0, now_ms, f"too few samples ({count} < {self.min_count}) in half_open"
                )
            if self.policy == "conservative":
                return None
        self.healthy_evals += 1
        if self.healthy_evals >= self.ramp_steps + 1:
            self.half_open_failures = 0
            return self._move(CLOSED, 1.0, now_ms, f"recovered after {self.healthy_evals} checks")
        rate = (self.healthy_evals + 1) / (self.ramp_steps + 1)
        return self._set_rate(rate, now_ms)

    def _move(self, to_state: State, rate: float, now_ms: int, reason: str) -> Change:
        change = Change(self, self.state.value, to_state.value, rate, reason, now_ms)
        self.state = to_state
        self.allow_rate = rate
        self.state_changed_ms = self.rate_changed_ms = now_ms
        if to_state != HALF_OPEN:
            self.healthy_evals = 0
        return change

    def _set_rate(self, rate: float, now_ms: int) -> Change:
        self.allow_rate = rate
        self.rate_changed_ms = now_ms
        return Change(self, self.state.value, self.state.value, rate, None, now_ms)

    def apply_override(self, mode: str, reason: str, now_ms: int) -> Change:
        """Force open / force closed (recorded as transitions) / hand back to the evaluator."""
        if mode not in OVERRIDES:
            raise ValueError(f"override mode must be one of {OVERRIDES}, got {mode!r}")
        self.override = mode
        self.override_reason = reason or None
        text = f"manual override: {mode}" + (f" ({reason})" if reason else "")
        if mode == "forced_open":
            return self._move(OPEN, 0.0, now_ms, text)
        if mode == "forced_closed":
            self.half_open_failures = 0
            return self._move(CLOSED, 1.0, now_ms, text)
        # Back to automatic: keep the current state; the evaluator takes over from now. That is
        # no transition, so no event (an "open -> open" event would be noise); the override
        # field of the persisted state records it.
        self.next_eval_ms = now_ms
        return Change(self, self.state.value, self.state.value, self.allow_rate, None, now_ms)

    def sse_payload(self) -> dict[str, Any]:
        return {"breaker": self.name, "state": self.state.value, "allow_rate": self.allow_rate}

    def adopt_state(self, state: dict[str, Any]) -> None:
        """Take the state the evaluating replica reported (replica mode; the inverse of
        :meth:`persisted_state`)."""
        self.state = State(state["state"])
        self.allow_rate = float(state["allow_rate"])
        self.state_changed_ms = int(state["state_changed_ms"])
        self.rate_changed_ms = int(state["rate_changed_ms"])
        self.half_open_failures = int(state["half_open_failures"])
        self.healthy_evals = int(state["healthy_evals"])
        self.override = str(state["override"])
        self.override_reason = state["override_reason"]

    def persisted_state(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "allow_rate": self.allow_rate,
            "state_changed_ms": self.state_changed_ms,
            "rate_changed_ms": self.rate_changed_ms,
            "half_open_failures": self.half_open_failures,
            "healthy_evals": self.healthy_evals,
            "override": self.override,
            "override_reason": self.override_reason,
        }
