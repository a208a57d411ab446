"""A restart in the middle of a (backed-off) cooldown resumes it from the persisted state.

Not restarted from zero at start-up, not forgotten (open -> half_open at once), and the
doubled cooldown of a failed half-open survives too.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.integration.server.live import FAST_ENV, Api
from tests.integration.server.scenario import Setup, signed_ingest, wait_until
from tests.support.server_process import ServerProcess

COOLDOWN_MS = 5_000  # the backed-off cooldown must outlast a restart on a loaded machine
BACKED_OFF_MS = 2 * COOLDOWN_MS  # after one failed half-open


def _ms(event: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp() * 1000)


def _send(s: Setup, ok: bool, n: int = 5) -> None:
    now = int(time.time() * 1000)
    samples = [{"router_id": s.rid, "metric": "errors", "ts_ms": now, "value": 1, "ok": ok}] * n
    r = signed_ingest(s.url, s.pid, s.secret, json.dumps(samples).encode(), now)
    assert r.json() == {"accepted": n, "rejected": 0}, r.text


def test_restart_mid_cooldown_resumes_the_backed_off_cooldown(tmp_path: Path) -> None:
    server = ServerProcess(
        f"sqlite:///{tmp_path / 'tripwise.db'}", "eb_admin_" + secrets.token_hex(16), env=FAST_ENV
    )
    server.start(tmp_path / "server.log")
    try:
        s = Setup(server.url, server.admin_key, name="cooldown")
        api = Api(server, s.pid)
        bid = api.create_breaker(
            "errors",
            metric="errors",
            kind="error_rate",
            op="gt",
            threshold=0.5,
            eval_interval_ms=100,
            cooldown_ms=COOLDOWN_MS,
            recovery_allow_rate_ramp_steps=1,
        )["id"]
        r = api.request(
            "POST", api.project_path(f"/routers/{s.rid}/breakers"), json={"breaker_id": bid}
        )
        assert r.status_code == 204, r.text

        # trip, wait out the first cooldown, fail the half-open: open again, cooldown doubled
        _send(s, ok=False)
        wait_until(lambda: api.state(bid)["state"] == "open", 5, "trip")
        wait_until(lambda: api.state(bid)["state"] == "half_open", 10, "first half-open")
        _send(s, ok=False)
        wait_until(lambda: api.state(bid)["state"] == "open", 5, "failed half-open")
        api.close()
        reopened = int(time.time() * 1000)  # the re-open happened just before this

        server.stop()
        # restart well inside the cooldown, so a cooldown restarted at start-up would show
        time.sleep(max(0.0, (reopened + 1_000 - time.time() * 1000) / 1000))
        restarted = int(time.time() * 1000)
        server.start(tmp_path / "server.log")
        api = Api(server, s.pid)
        assert int(time.time() * 1000) < reopened + BACKED_OFF_MS - 500, "restart too slow"
        assert api.state(bid)["state"] == "open"  # not half-open at once

        wait_until(lambda: api.state(bid)["state"] == "half_open", 15, "half-open after restart")
        r = api.request("GET", api.project_path("/events"), params={"breaker_id": bid})
        history = list(reversed(r.json()["events"]))  # oldest first
        assert [(e["from_state"], e["to_state"]) for e in history] == [
            ("closed", "open"),
            ("open", "half_open"),
            ("half_open", "open"),
            ("open", "half_open"),
        ]
        reopen_ms, half_open_ms = _ms(history[2]), _ms(history[3])
        # the persisted failure count doubled the cooldown...
        assert history[3]["reason"] == f"cooldown {BACKED_OFF_MS} ms elapsed"
        assert half_open_ms - reopen_ms >= BACKED_OFF_MS
        # ...and it ran from the persisted re-open time, not from the restart
        assert half_open_ms < restarted + BACKED_OFF_MS

        # the evaluator carries on: healthy traffic closes the breaker
        _send(s, ok=True)
        wait_until(lambda: api.state(bid)["state"] == "closed", 5, "recovery after restart")
        api.close()
    finally:
        server.stop()
