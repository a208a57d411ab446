"""Revoking a project key (or deleting its project) ends its open state streams for good."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import tripswitch
from tripswitch.admin.types import CreateProjectKeyInput

from tests.integration.server.live import Api, StreamListener, assert_error, running_server
from tests.integration.server.scenario import Setup, wait_until
from tests.support.server_process import ServerProcess

OPEN = {"breaker": "checkout-latency", "state": "open", "allow_rate": 0.0}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("revocation")) as proc:
        yield proc


def _stream_url(server: ServerProcess, pid: str) -> str:
    return f"{server.url}/v1/projects/{pid}/breakers/state:stream"


def test_revoked_key_loses_its_streams_and_cannot_reconnect(server: ServerProcess) -> None:
    s = Setup(server.url, server.admin_key, name=f"revoke-{uuid.uuid4().hex[:6]}")
    api = Api(server, s.pid)
    doomed = s.admin.create_project_key(s.pid, CreateProjectKeyInput(name="doomed"))
    listeners = {
        "doomed": StreamListener(server.url, s.pid, doomed.key),
        "doomed-2": StreamListener(server.url, s.pid, doomed.key),
        "other key": StreamListener(server.url, s.pid, s.pk),
        "admin key": StreamListener(server.url, s.pid, server.admin_key),
    }
    try:
        for listener in listeners.values():
            listener.wait_connected(1)
            assert listener.status == 200
        assert not any(listener.ended.is_set() for listener in listeners.values())

        s.admin.delete_project_key(s.pid, doomed.id)

        # both streams of the revoked key end; the others stay open and keep receiving
        assert listeners["doomed"].ended.wait(5), "stream of the revoked key still open"
        assert listeners["doomed-2"].ended.wait(5), "second stream of the revoked key still open"
        api.override(s.bid, "force_open")
        for name in ("other key", "admin key"):
            listeners[name].wait_for(OPEN)
            assert not listeners[name].ended.is_set(), name
        assert OPEN not in listeners["doomed"].events

        # the key is refused everywhere from now on
        headers = {"Authorization": f"Bearer {doomed.key}"}
        r = httpx.get(_stream_url(server, s.pid), headers=headers, timeout=5)
        assert_error(r, 401, "unauthorized")
        for path in ("/status", "/breakers/metadata", f"/breakers/{s.bid}/state"):
            assert_error(httpx.get(server.url + api.project_path(path), headers=headers), 401)
        assert doomed.id not in {k.id for k in s.admin.list_project_keys(s.pid)}
        # unknown key ids: 404, also when the key belongs to another project
        assert_error(api.request("DELETE", api.project_path(f"/keys/{doomed.id}")), 404)
        other = Setup(server.url, server.admin_key, name=f"other-{uuid.uuid4().hex[:6]}")
        other_key = other.admin.list_project_keys(other.pid)[0].id
        assert_error(api.request("DELETE", api.project_path(f"/keys/{other_key}")), 404)
    finally:
        for listener in listeners.values():
            listener.close()
        api.close()


def test_sdk_client_with_a_revoked_key_disconnects_and_stays_out(server: ServerProcess) -> None:
    s = Setup(server.url, server.admin_key, name=f"revoke-sdk-{uuid.uuid4().hex[:6]}")
    api = Api(server, s.pid)
    doomed = s.admin.create_project_key(s.pid, CreateProjectKeyInput(name="doomed"))
    ts = tripswitch.Client(
        s.pid, api_key=doomed.key, ingest_secret=s.secret, base_url=server.url, timeout=10
    )
    witness = StreamListener(server.url, s.pid, s.pk)
    ts.connect()
    try:
        assert ts.stats.sse_connected and ts.get_state("checkout-latency").state == "closed"
        s.admin.delete_project_key(s.pid, doomed.id)
        # the server ends the stream; the SDK re-opens at once, gets 401 and backs off
        wait_until(lambda: ts.stats.sse_reconnects >= 1, 5, "SDK sees the refusal")
        assert not ts.stats.sse_connected
        api.override(s.bid, "force_open")
        witness.wait_for(OPEN)  # a client with a valid key hears the trip...
        assert ts.get_state("checkout-latency").state == "closed"  # ...the revoked one not
    finally:
        ts.close(timeout=1)
        witness.close()
        api.close()


def test_deleting_a_project_ends_its_streams(server: ServerProcess) -> None:
    s = Setup(server.url, server.admin_key, name=f"gone-{uuid.uuid4().hex[:6]}")
    by_project_key = StreamListener(server.url, s.pid, s.pk)
    by_admin_key = StreamListener(server.url, s.pid, server.admin_key)
    try:
        by_project_key.wait_connected(1)
        by_admin_key.wait_connected(1)
        s.admin.delete_project(s.pid, confirm_name=s.name)
        assert by_project_key.ended.wait(5) and by_admin_key.ended.wait(5)
        r = httpx.get(
            _stream_url(server, s.pid), headers={"Authorization": f"Bearer {s.pk}"}, timeout=5
        )
        assert_error(r, 401)  # the project's keys went with it
        r = httpx.get(
            _stream_url(server, s.pid),
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=5,
        )
        assert_error(r, 404, "not_found")
    finally:
        by_project_key.close()
        by_admin_key.close()
