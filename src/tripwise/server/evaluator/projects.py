"""The in-memory projection the hot paths use: projects, routers, breakers, the routing index.

Admin writes go to the database first and are then mirrored here; ingest and evaluation never
touch the database. Samples are routed by (router id or name, metric) to breaker runtimes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tripwise.server.evaluator.batch import apply_group, group_samples
from tripwise.server.evaluator.breaker import BreakerRuntime, Change


@dataclass
class RouterRuntime:
    id: str
    name: str
    enabled: bool
    breaker_ids: set[str] = field(default_factory=set)


class ProjectRuntime:
    """One project's keys for ingest, its breakers and routers, and the routing index."""

    def __init__(self, row: Any) -> None:
        self.id: str = row.id
        self.org_id: str = row.org_id
        self.breakers: dict[str, BreakerRuntime] = {}
        self.routers: dict[str, RouterRuntime] = {}
        self.last_eval_ms: int | None = None
        self._route: dict[str, dict[str, list[BreakerRuntime]]] | None = None
        self.update(row)

    def update(self, row: Any) -> None:
        self.name: str = row.name
        self.signed: bool = row.enable_signed_ingest
        self.secret_key = bytes.fromhex(row.ingest_secret)

    def invalidate(self) -> None:
        self._route = None

    def by_name(self, name: str) -> BreakerRuntime | None:
        for b in self.breakers.values():
            if b.name == name:
                return b
        return None

    def route(self) -> dict[str, dict[str, list[BreakerRuntime]]]:
        """router id (and name, as a fallback key) -> metric -> breakers."""
        if self._route is None:
            index: dict[str, dict[str, list[BreakerRuntime]]] = {}
            for r in self.routers.values():  # names first, so an id always wins
                index.setdefault(r.name, _metrics_of(r, self.breakers) if r.enabled else {})
            for r in self.routers.values():
                index[r.id] = _metrics_of(r, self.breakers) if r.enabled else {}
            self._route = index
        return self._route

    def ingest(self, samples: list[Any], now_ms: int, rejected: Counter[str]) -> int:
        """Route valid samples into breaker windows; count the invalid ones by reason."""
        route = self.route()
        accepted = 0
        for (rid, metric), (tss, values, oks) in group_samples(samples, now_ms, rejected).items():
            targets = route.get(rid)
            if targets is None:
                rejected["unknown_router"] += len(tss)
                continue
            accepted += len(tss)
            breakers = targets.get(metric)
            if breakers:
                apply_group(breakers, tss, values, oks)
        return accepted

    def evaluate(self, now_ms: int, changes: list[Change]) -> None:
        self.last_eval_ms = now_ms
        for b in self.breakers.values():
            if b.next_eval_ms <= now_ms:
                change = b.evaluate(now_ms)
                if change is not None:
                    changes.append(change)

    def counts(self) -> dict[str, int]:
        out = {"open": 0, "closed": 0, "half_open": 0}
        for b in self.breakers.values():
            out[b.state] += 1
        return out


def _metrics_of(
    router: RouterRuntime, breakers: dict[str, BreakerRuntime]
) -> dict[str, list[BreakerRuntime]]:
    by_metric: dict[str, list[BreakerRuntime]] = {}
    for bid in router.breaker_ids:
        b = breakers.get(bid)
        if b is not None:
            by_metric.setdefault(b.metric, []).append(b)
    return by_metric
