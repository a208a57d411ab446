"""Contract §5 with the real tripswitch-py SDK against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.integration.server.scenario import run_scenario
from tests.support.server_process import ServerProcess


def test_sdk_end_to_end_scenario(server: ServerProcess) -> None:
    run_scenario(server.url, server.admin_key)
