"""The in-memory projection the hot paths use: projects, routers, breakers, the routing index.

Admin writes go to the database first and are then mirrored here; ingest and evaluation never
touch the database. Samples are routed by (router id or name, metric) to breaker runtimes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tripwise.server.evaluator.batch import SummaryCache, group_samples
from tripwise.server.evaluator.breaker import BreakerRuntime, Change

log = logging.getLogger("tripwise.server.evaluator")
MAX_HINTS = 5


@dataclass
class RouterRuntime:
    id: str
    name: str
    enabled: bool
    breaker_ids: set[str] = field(default_factory=set)
    # samples accepted for this router whose metric no linked breaker watches, by metric
    unmatched: Counter[str] = field(default_factory=Counter)


class ProjectRuntime:
    """One project's keys for ingest, its breakers and routers, and the routing index."""

    def __init__(self, row: Any) -> None:
        self.id: str = row.id
        self.org_id: str = row.org_id
        self.breakers: dict[str, BreakerRuntime] = {}
        self.routers: dict[str, RouterRuntime] = {}
        self.last_eval_ms: int | None = None
        self._route: dict[str, dict[str, list[BreakerRuntime]]] | None = None
        self.failures = 0  # breaker evaluations or sample additions that raised (logged)
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

    def ingest(
        self,
        samples: list[Any],
        now_ms: int,
        rejected: Counter[str],
        hints: list[str] | None = None,
        forward: Callable[[list[Any]], None] | None = None,
    ) -> tuple[int, int]:
        """Route valid samples into breaker windows; count the invalid ones by reason.

        Returns (accepted, unmatched): unmatched samples were accepted for a known router but
        no breaker linked to it watches their metric (counted per router, with a hint).
        Validation happens for the whole batch before any window changes; adding to one
        breaker's window cannot stop the others from receiving the batch. With ``forward``
        (replica mode, another replica evaluates the project) the routed groups are handed
        to it instead of being added here.
        """
        route = self.route()
        accepted = unmatched = 0
        outgoing: list[Any] = []
        for (rid, metric), (tss, values, oks) in group_samples(samples, now_ms, rejected).items():
            targets = route.get(rid)
            if targets is None:
                rejected["unknown_router"] += len(tss)
                if hints is not None and len(hints) < MAX_HINTS:
                    hints.append(f"router {rid!r} does not exist in this project")
                continue
            accepted += len(tss)
            breakers = targets.get(metric)
            if breakers and forward is not None:
                outgoing.append([rid, metric, tss, values, oks])
                continue
            if breakers:
                cache: SummaryCache = {}
                for b in breakers:
                    self._add_to(b, tss, values, oks, cache)
                continue
            unmatched += len(tss)
            router = self.routers.get(rid) or self._router_named(rid)
            if router is not None:
                router.unmatched[metric] += len(tss)
                if hints is not None and len(hints) < MAX_HINTS:
                    if not router.enabled:
                        hints.append(f"router {router.name!r} is disabled")
                    elif not router.breaker_ids:
                        hints.append(f"router {router.name!r} has no linked breakers")
                    else:
                        hints.append(
                            f"no breaker linked to router {router.name!r} watches metric {metric!r}"
                        )
        if outgoing and forward is not None:
            forward(outgoing)
        return accepted, unmatched

    def apply_groups(self, groups: list[Any]) -> None:
        """Add groups validated (and routed) by another replica to this one's windows."""
        route = self.route()
        for rid, metric, tss, values, oks in groups:
            breakers = route.get(rid, {}).get(metric)
            if breakers:
                cache: SummaryCache = {}
                for b in breakers:
                    self._add_to(b, tss, values, oks, cache)

    def _add_to(
        self,
        b: BreakerRuntime,
        tss: list[int],
        values: list[float],
        oks: list[bool],
        cache: SummaryCache,
    ) -> None:
        try:
            b.add_batch(tss, values, oks, cache)
        except Exception:
            self.failures += 1
            log.exception("breaker %s could not take a batch", b.name)

    def _evaluate_one(self, b: BreakerRuntime, now_ms: int) -> Change | None:
        try:
            return b.evaluate(now_ms)
        except Exception:
            self.failures += 1
            b.next_eval_ms = now_ms + max(b.eval_interval_ms, 1000)
            log.exception("evaluation of breaker %s failed", b.name)
            return None

    def _router_named(self, name: str) -> RouterRuntime | None:
        for r in self.routers.values():
            if r.name == name:
                return r
        return None

    def evaluate(self, now_ms: int, changes: list[Change]) -> None:
        """Evaluate every due breaker; one breaker that raises is logged and skipped, so it
        can never hold back the changes of the others."""
        self.last_eval_ms = now_ms
        for b in self.breakers.values():
            if b.next_eval_ms <= now_ms:
                change = self._evaluate_one(b, now_ms)
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
