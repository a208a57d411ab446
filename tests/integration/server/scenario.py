"""The contract's §5 end-to-end scenario, driven through the real tripswitch-py SDK."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Callable

import httpx
import tripswitch
from tripswitch.admin import AdminClient
from tripswitch.admin.types import (
    BreakerKind,
    BreakerOp,
    CreateBreakerInput,
    CreateProjectInput,
    CreateProjectKeyInput,
    CreateRouterInput,
    LinkBreakerInput,
    ListEventsParams,
    RouterMode,
    UpdateProjectInput,
)
from tripswitch.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def signed_ingest(url: str, pid: str, secret: str, body: bytes, ts_ms: int) -> httpx.Response:
    import hashlib
    import hmac

    raw = gzip.compress(body, mtime=0)  # deterministic bytes: the same batch, the same signature
    sig = hmac.new(bytes.fromhex(secret), str(ts_ms).encode() + b"." + raw, hashlib.sha256)
    return httpx.post(
        f"{url}/v1/projects/{pid}/ingest",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "X-EB-Timestamp": str(ts_ms),
            "X-EB-Signature": "v1=" + sig.hexdigest(),
        },
    )


class Setup:
    """Steps 1-7: project, key, secret, breaker, router, link."""

    def __init__(self, url: str, admin_key: str, name: str = "e2e") -> None:
        self.url = url
        self.admin = AdminClient(api_key=admin_key, base_url=url)
        project = self.admin.create_project(CreateProjectInput(name=name))
        self.pid = project.id
        self.name = name
        self.pk = self.admin.create_project_key(self.pid, CreateProjectKeyInput(name="sdk")).key
        self.secret = self.admin.rotate_ingest_secret(self.pid).ingest_secret
        bytes.fromhex(self.secret)
        self.admin.update_project(self.pid, UpdateProjectInput(enable_signed_ingest=True))
        breaker = self.admin.create_breaker(
            self.pid,
            CreateBreakerInput(
                name="checkout-latency",
                metric="latency_ms",
                kind=BreakerKind.P95,
                op=BreakerOp.GT,
                threshold=500,
                window_ms=60000,
                min_count=5,
                eval_interval_ms=500,
                cooldown_ms=60000,
            ),
        )
        self.bid = breaker.id
        router = self.admin.create_router(
            self.pid, CreateRouterInput(name="checkout-router", mode=RouterMode.STATIC)
        )
        self.rid = router.id
        self.admin.link_breaker(self.pid, self.rid, LinkBreakerInput(breaker_ids=[self.bid]))

    def client(self, **kw: object) -> tripswitch.Client:
        return tripswitch.Client(
            self.pid, api_key=self.pk, ingest_secret=self.secret, base_url=self.url, **kw
        )


def run_scenario(url: str, admin_key: str) -> None:
    s = Setup(url, admin_key, name=f"e2e-{uuid.uuid4().hex[:6]}")
    admin, pid, bid, rid = s.admin, s.pid, s.bid, s.rid
    assert admin.get_breaker(pid, bid).router_id == rid
    router = admin.get_router(pid, rid)
    assert router.breakers[0].id == bid
    assert router.breaker_count == 1

    changes: list[tuple[str, str, str]] = []
    ts = s.client(
        timeout=10, metadata_sync_interval=1, on_state_change=lambda *a: changes.append(a)
    )
    ts.connect()
    try:
        assert ts.get_state("checkout-latency").state == "closed"
        assert ts.stats.sse_connected
        wait_until(
            lambda: any(b.id == bid for b in (ts.get_breakers_metadata() or [])),
            what="breaker metadata",
        )
        for _ in range(500):
            ts.execute(
                lambda: "ok",
                breakers=["checkout-latency"],
                router=rid,
                metrics={"latency_ms": 900.0},
            )
        wait_until(lambda: ts.get_state("checkout-latency").state == "open", what="trip over SSE")
        assert ("checkout-latency", "closed", "open") in changes

        called = []
        try:
            ts.execute(
                lambda: called.append(1),
                breakers=["checkout-latency"],
                router=rid,
                metrics={"latency_ms": tripswitch.Latency},
            )
            raise AssertionError("execute ran although the breaker is open")
        except tripswitch.BreakerOpenError as exc:
            assert exc.breaker == "checkout-latency"
        assert not called

        state = admin.get_breaker_state(pid, bid)
        assert state.state == "open"
        assert state.allow_rate == 0.0
        events = admin.list_events(pid, ListEventsParams(breaker_id=bid))
        assert [(e.from_state, e.to_state) for e in events] == [("closed", "open")]
        status = ts.get_status()
        assert (status.open_count, status.closed_count) == (1, 0)

        # 15: negative checks
        body = json.dumps({"samples": []}).encode()
        now = int(time.time() * 1000)
        bad = signed_ingest(url, pid, "00" * 32, body, now)
        assert bad.status_code == 401, bad.text
        stale = signed_ingest(url, pid, s.secret, body, now - 600_000)
        assert stale.status_code == 401, stale.text
        good = signed_ingest(url, pid, s.secret, body, now)
        assert good.status_code == 202, good.text
        try:
            AdminClient(api_key="bad", base_url=url).get_project(pid)
            raise AssertionError("unknown key accepted")
        except UnauthorizedError:
            pass
        try:
            AdminClient(api_key=s.pk, base_url=url).list_projects()
            raise AssertionError("project key accepted on an admin endpoint")
        except ForbiddenError:
            pass
        try:
            admin.get_project(str(uuid.uuid4()))
            raise AssertionError("unknown project found")
        except NotFoundError:
            pass
    finally:
        ts.close()

    try:
        admin.delete_router(pid, rid)
        raise AssertionError("deleted a router with linked breakers")
    except ConflictError:
        pass
    admin.unlink_breaker(pid, rid, bid)
    admin.delete_router(pid, rid)
    admin.delete_breaker(pid, bid)
    admin.delete_project(pid, confirm_name=s.name)
    try:
        admin.get_project(pid)
        raise AssertionError("deleted project still found")
    except NotFoundError:
        pass
