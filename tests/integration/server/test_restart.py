"""Persistence across a restart: definitions, states and events survive; SDK clients resync."""

from __future__ import annotations

from pathlib import Path

from tripswitch.admin.types import ListEventsParams

from tests.integration.server.scenario import Setup, wait_until
from tests.support.server_process import ServerProcess


def test_state_and_events_survive_restart_and_clients_resync(
    db_url: str, admin_key: str, tmp_path: Path
) -> None:
    server = ServerProcess(db_url, admin_key)
    server.start(tmp_path / "server.log")
    try:
        s = Setup(server.url, admin_key)
        seen: list[tuple[str, str, str]] = []
        ts = s.client(timeout=10, on_state_change=lambda *a: seen.append(a))
        ts.connect()
        try:
            for _ in range(500):
                ts.execute(
                    lambda: None,
                    breakers=["checkout-latency"],
                    router=s.rid,
                    metrics={"latency_ms": 900.0},
                )
            wait_until(lambda: ts.get_state("checkout-latency").state == "open", what="trip")
            reconnects = ts.stats.sse_reconnects

            server.stop()
            server.start(tmp_path / "server.log")

            # Definitions, state and the event log came back from the database.
            assert s.admin.get_breaker(s.pid, s.bid).name == "checkout-latency"
            assert s.admin.get_breaker_state(s.pid, s.bid).state == "open"
            events = s.admin.list_events(s.pid, ListEventsParams(breaker_id=s.bid))
            assert [(e.from_state, e.to_state) for e in events] == [("closed", "open")]
            # The connected client reconnects on its own and takes the new snapshot.
            wait_until(lambda: ts.stats.sse_reconnects > reconnects, 15, "SSE reconnect")
            wait_until(lambda: ts.stats.sse_connected, 15, "SSE connected again")
            assert ts.get_state("checkout-latency").state == "open"
            # ...and follows changes made after the restart (manual override).
            import httpx

            r = httpx.post(
                f"{server.url}/v1/projects/{s.pid}/breakers/{s.bid}/override",
                json={"mode": "force_closed", "reason": "restart test"},
                headers={"Authorization": f"Bearer {admin_key}"},
            )
            assert r.status_code == 200, r.text
            wait_until(lambda: ts.get_state("checkout-latency").state == "closed", 5, "resync")
            assert ("checkout-latency", "open", "closed") in seen
        finally:
            ts.close(timeout=1)
    finally:
        server.stop()
