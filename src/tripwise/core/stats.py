"""The stats snapshot of one breaker."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tripwise.core.states import Mode, State


@dataclass(frozen=True)
class BreakerStats:
    """Counters and state of a breaker at one moment. Timestamps are Unix epoch seconds."""

    name: str
    state: State
    mode: Mode
    trip_count: int
    successes: int
    failures: int
    ignored: int
    rejected: int
    avg_latency_ms: float | None
    max_latency_ms: float | None
    avg_quality: float | None
    last_quality: float | None
    quality_count: int
    opened_at: float | None
    state_changed_at: float
    created_at: float
    retry_after: float
    failed_recoveries: int

    @property
    def calls(self) -> int:
        """Calls that ran and completed with an outcome (successes + failures)."""
        return self.successes + self.failures

    @property
    def failure_rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0

    @property
    def success_rate(self) -> float:
        return self.successes / self.calls if self.calls else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        d["mode"] = self.mode.value
        d["calls"] = self.calls
        d["failure_rate"] = self.failure_rate
        d["success_rate"] = self.success_rate
        return d
