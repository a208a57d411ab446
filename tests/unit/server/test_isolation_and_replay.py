"""One breaker or project that raises cannot hold back the others' changes; the replay guard
is per project and bounded by the timestamp window; stored idempotency answers are sealed."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="needs tripwise[server]")

from tests.unit.server.test_breaker_runtime import T0, make
from tripwise.server.control import ControlPlane
from tripwise.server.evaluator.breaker import BreakerRuntime, State
from tripwise.server.evaluator.projects import ProjectRuntime, RouterRuntime
from tripwise.server.ingest import ReplayGuard
from tripwise.server.middleware import _record_key, seal, unseal
from tripwise.server.settings import Settings


def _project(pid: str, *breakers: BreakerRuntime) -> ProjectRuntime:
    p = ProjectRuntime(
        SimpleNamespace(
            id=pid, org_id="o", name=pid, enable_signed_ingest=True, ingest_secret="00" * 32
        )
    )
    router = RouterRuntime("r", "r", True)
    for b in breakers:
        p.breakers[b.id] = b
        router.breaker_ids.add(b.id)
    p.routers["r"] = router
    return p


def _plane() -> ControlPlane:
    from sqlalchemy.ext.asyncio import create_async_engine

    return ControlPlane(Settings(), create_async_engine("sqlite+aiosqlite://"))


def _boom(now_ms: int) -> Any:
    raise OverflowError("math range error")


class _Broken(BreakerRuntime):
    """A breaker whose window arithmetic raises (what 1e308 samples used to do)."""

    __slots__ = ()

    def evaluate(self, now_ms: int) -> Any:
        return _boom(now_ms)

    def add_batch(self, *args: Any) -> None:
        _boom(0)


def _broken(**kw: Any) -> BreakerRuntime:
    b = make(**kw)
    b.__class__ = _Broken
    return b


def test_a_raising_breaker_or_project_does_not_drop_the_others_changes() -> None:
    plane = _plane()
    published: list[tuple[str, bytes]] = []
    plane.hub.publish = lambda pid, data: published.append((pid, data))  # type: ignore[method-assign]
    broken = _broken(id="bad", project_id="p1", name="bad")
    healthy = [make(id=f"b{i}", project_id=f"p{i}", name=f"b{i}") for i in range(1, 4)]
    for b in healthy:
        b.add(50.0, True, T0)  # avg 50 > 10: trips on the next evaluation
    plane.projects["p1"] = _project("p1", broken, healthy[0])
    plane.projects["p2"] = _project("p2", healthy[1])
    plane.projects["p3"] = _project("p3", healthy[2])
    plane.projects["p2"].evaluate = lambda now, changes: _boom(now)  # type: ignore[method-assign]
    changes = plane.tick(T0 + 200)
    assert sorted(c.breaker.id for c in changes) == ["b1", "b3"]
    assert [pid for pid, _ in published] == ["p1", "p3"]
    assert healthy[0].state is State.OPEN and healthy[2].state is State.OPEN
    assert plane.metrics.evaluation_errors._value.get() == 2  # one breaker, one project


def test_a_breaker_that_cannot_take_a_batch_does_not_stop_the_others() -> None:
    bad, good = _broken(id="bad", name="bad", metric="m"), make(id="good", name="good", metric="m")
    p = _project("p", bad, good)
    rejected: Counter[str] = Counter()
    sample = {"router_id": "r", "metric": "m", "ts_ms": T0, "value": 5.0, "ok": True}
    assert p.ingest([sample], T0, rejected) == (1, 0)
    assert good.window.count == 1 and p.failures == 1


def test_values_beyond_the_bound_are_refused_with_their_reason() -> None:
    b = make(metric="m")
    p = _project("p", b)
    rejected: Counter[str] = Counter()
    batch = [
        {"router_id": "r", "metric": "m", "ts_ms": T0, "value": v, "ok": True}
        for v in (1e308, -1e308, 1e16, 3.0)
    ]
    assert p.ingest(batch, T0, rejected) == (1, 0)
    assert rejected == {"value_out_of_range": 3}


def test_replay_guard_is_per_project_and_bounded_by_the_window() -> None:
    guard = ReplayGuard(window_ms=300_000)
    guard.remember("victim", "t:sig", T0)
    for i in range(20_000):  # other projects' traffic cannot push the victim's entry out
        guard.remember("other", f"{i}:x", T0 + i)
    assert guard.seen("victim", "t:sig", T0 + 1_000)
    assert not guard.seen("other", "t:sig", T0 + 1_000)
    # once its timestamp is outside the window, the window check refuses the batch anyway
    assert not guard.seen("victim", "t:sig", T0 + 300_001)
    assert not guard.seen("other", "0:x", T0 + 300_001)
    assert guard.seen("other", "19999:x", T0 + 300_001)


def test_sealed_idempotency_answers_open_only_with_the_request_keys() -> None:
    secret = b'{"key": "eb_pk_secret"}'
    key = _record_key("Bearer eb_admin_x", "idem-1")
    sealed = seal(key, secret)
    assert b"eb_pk_secret" not in sealed.encode() and "eb_pk_secret" not in sealed
    assert unseal(key, sealed) == secret
    assert unseal(_record_key("Bearer eb_admin_x", "idem-2"), sealed) is None
    assert unseal(key, seal(key, b"")) == b""
