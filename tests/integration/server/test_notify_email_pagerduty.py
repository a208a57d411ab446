"""Email (SMTP) and PagerDuty (Events API v2) delivery to real local receivers.

The SMTP server is aiosmtpd on 127.0.0.1; the PagerDuty Events API is a local HTTP server
whose URL the control plane is given through ``TRIPWISE_PAGERDUTY_URL``.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.integration.server.live import Api, assert_error, running_server
from tests.integration.server.scenario import Setup, wait_until
from tests.support.server_process import ServerProcess, free_port

SENDER = "alerts@tripwise.test"
ROUTING_KEY = "R0UT1NGKEY" + "x" * 22


class Mailbox:
    """aiosmtpd handler: keeps every accepted message."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted"


class EventsApi:
    """A local stand-in for https://events.pagerduty.com/v2/enqueue (answers 202 like it)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.statuses: list[int] = []  # answers to give first (then 202)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = outer.statuses.pop(0) if outer.statuses else 202
                if status < 300:
                    outer.received.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status":"success","message":"Event processed"}')

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v2/enqueue"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.controller = controller  # type: ignore[attr-defined]
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def events_api() -> Iterator[EventsApi]:
    receiver = EventsApi()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox, events_api: EventsApi
) -> Iterator[ServerProcess]:
    controller = mailbox.controller  # type: ignore[attr-defined]
    with running_server(
        tmp_path_factory.mktemp("notify-configured"),
        TRIPWISE_SMTP_HOST="127.0.0.1",
        TRIPWISE_SMTP_PORT=str(controller.port),
        TRIPWISE_SMTP_FROM=SENDER,
        TRIPWISE_PAGERDUTY_URL=events_api.url,
        TRIPWISE_NOTIFY_BACKOFF_S="0.05",
    ) as proc:
        yield proc


@pytest.fixture
def setup(server: ServerProcess) -> Setup:
    return Setup(server.url, server.admin_key, name=f"notify-{uuid.uuid4().hex[:6]}")


def _channel(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    r = api.request("POST", api.project_path("/notification-channels"), json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _test(api: Api, cid: str) -> httpx.Response:
    return api.request("POST", api.project_path(f"/notification-channels/{cid}/test"))


def test_email_delivery_through_a_real_smtp_server(
    server: ServerProcess, setup: Setup, mailbox: Mailbox
) -> None:
    api = Api(server, setup.pid)
    try:
        ch = _channel(
            api,
            {
                "name": "oncall mail",
                "channel": "email",
                "config": {"to": ["oncall@example.com", "lead@example.com"]},
                "events": ["trip", "recover"],
            },
        )
        _channel(  # subscribed to recoveries only: gets nothing for a trip
            api,
            {
                "name": "recoveries",
                "channel": "email",
                "config": {"to": "rec@example.com"},
                "events": ["recover"],
                "enabled": False,
            },
        )
        before = len(mailbox.messages)
        r = _test(api, ch["id"])
        assert r.status_code == 204, r.text
        sender, rcpts, msg = mailbox.messages[before]  # delivered before the 204
        assert sender == SENDER and rcpts == ["oncall@example.com", "lead@example.com"]
        assert msg["To"] == "oncall@example.com, lead@example.com"
        assert msg["Subject"] == (
            "[tripwise] breaker 'tripwise-test' closed -> open: test notification"
        )
        assert json.loads(msg.get_content())["event"] == "test"

        api.override(setup.bid, "force_open", "incident 7")
        wait_until(lambda: len(mailbox.messages) >= before + 2, 10, "trip mail")
        api.override(setup.bid, "force_closed", "all clear")
        wait_until(lambda: len(mailbox.messages) >= before + 3, 10, "recovery mail")
        trip, recover = (m for _, _, m in mailbox.messages[before + 1 : before + 3])
        assert trip["Subject"] == (
            "[tripwise] breaker 'checkout-latency' closed -> open: "
            "manual override: forced_open (incident 7)"
        )
        body = json.loads(trip.get_content())
        assert (body["event"], body["breaker_id"], body["project_id"]) == (
            "trip",
            setup.bid,
            setup.pid,
        )
        assert (body["from_state"], body["to_state"]) == ("closed", "open")
        assert recover["Subject"].startswith("[tripwise] breaker 'checkout-latency' open -> closed")
        assert json.loads(recover.get_content())["event"] == "recover"
        # the disabled recover-only channel sent nothing
        assert all(rcpts != ["rec@example.com"] for _, rcpts, _ in mailbox.messages)

        # a channel without an address is refused by name
        bad = _channel(api, {"name": "no-to", "channel": "email", "config": {}})
        assert "config.to" in assert_error(_test(api, bad["id"]), 422, "delivery_failed")["message"]
    finally:
        api.close()


def test_pagerduty_trigger_and_resolve(
    server: ServerProcess, setup: Setup, events_api: EventsApi
) -> None:
    api = Api(server, setup.pid)
    try:
        ch = _channel(
            api,
            {
                "name": "pd",
                "channel": "pagerduty",
                "config": {"routing_key": ROUTING_KEY, "severity": "critical"},
                "events": ["trip", "recover"],
            },
        )
        # the routing key is a secret: masked in answers, kept when the mask is sent back
        assert ch["config"]["routing_key"] == "****" + ROUTING_KEY[-4:]
        r = api.request(
            "PATCH",
            api.project_path(f"/notification-channels/{ch['id']}"),
            json={"config": ch["config"]},
        )
        assert r.status_code == 200 and r.json()["config"] == ch["config"]

        before = len(events_api.received)
        events_api.statuses = [503]  # the first trigger attempt fails and is retried
        api.override(setup.bid, "force_open", "incident 9")
        wait_until(lambda: len(events_api.received) >= before + 1, 10, "trigger")
        api.override(setup.bid, "force_closed")
        wait_until(lambda: len(events_api.received) >= before + 2, 10, "resolve")

        (path, headers, trigger), (_, _, resolve) = events_api.received[before : before + 2]
        assert path == "/v2/enqueue" and headers["Content-Type"] == "application/json"
        assert trigger["routing_key"] == ROUTING_KEY  # the stored key, not the mask
        assert trigger["event_action"] == "trigger"
        assert trigger["dedup_key"] == f"tripwise-{setup.bid}"
        assert trigger["payload"]["summary"] == (
            "[tripwise] breaker 'checkout-latency' closed -> open: "
            "manual override: forced_open (incident 9)"
        )
        assert trigger["payload"]["source"] and trigger["payload"]["severity"] == "critical"
        assert trigger["payload"]["custom_details"]["breaker_id"] == setup.bid
        # resolve closes the same alert
        assert resolve["event_action"] == "resolve"
        assert (resolve["routing_key"], resolve["dedup_key"]) == (ROUTING_KEY, trigger["dedup_key"])

        # the test endpoint delivers now; a failing Events API is a 502 naming the answer
        r = _test(api, ch["id"])
        assert r.status_code == 204 and events_api.received[-1][2]["routing_key"] == ROUTING_KEY
        events_api.statuses = [500]
        assert "500" in assert_error(_test(api, ch["id"]), 502, "delivery_failed")["message"]
        events_api.statuses = [400]  # PagerDuty's "invalid event": no use retrying
        assert "400" in assert_error(_test(api, ch["id"]), 422, "delivery_failed")["message"]
    finally:
        api.close()


def test_unconfigured_email_and_pagerduty_answer_clear_errors(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # no TRIPWISE_SMTP_HOST, and the PagerDuty URL switched off
    with running_server(
        tmp_path_factory.mktemp("notify-unconfigured"), TRIPWISE_PAGERDUTY_URL=""
    ) as server:
        s = Setup(server.url, server.admin_key, name="unconfigured")
        api = Api(server, s.pid)
        try:
            mail = _channel(api, {"name": "m", "channel": "email", "config": {"to": "a@b.c"}})
            body = assert_error(_test(api, mail["id"]), 422, "delivery_failed")
            assert "TRIPWISE_SMTP_HOST" in body["message"]
            pd = _channel(
                api, {"name": "p", "channel": "pagerduty", "config": {"routing_key": ROUTING_KEY}}
            )
            body = assert_error(_test(api, pd["id"]), 422, "delivery_failed")
            assert "TRIPWISE_PAGERDUTY_URL" in body["message"]
            no_key = _channel(api, {"name": "k", "channel": "pagerduty", "config": {}})
            body = assert_error(_test(api, no_key["id"]), 422, "delivery_failed")
            assert "routing_key" in body["message"]

            # a trip still happens, and the undeliverable notifications are counted as failed
            api.override(s.bid, "force_open")
            assert api.state(s.bid)["state"] == "open"

            def failed() -> float:
                for line in httpx.get(server.url + "/metrics").text.splitlines():
                    if line.startswith('tripwise_notifications_total{result="failed"}'):
                        return float(line.split()[-1])
                return 0.0

            wait_until(lambda: failed() >= 2, 5, "failed notifications counted")
        finally:
            api.close()


def test_line_breaks_in_a_reason_do_not_stop_the_mail(
    server: ServerProcess, setup: Setup, mailbox: Mailbox
) -> None:
    api = Api(server, setup.pid)
    try:
        _channel(api, {"name": "m", "channel": "email", "config": {"to": "oncall@example.com"}})
        before = len(mailbox.messages)
        api.override(setup.bid, "force_open", "db down\r\nBcc: attacker@example.com")
        wait_until(lambda: len(mailbox.messages) > before, 10, "trip mail")
        _, rcpts, msg = mailbox.messages[before]
        assert rcpts == ["oncall@example.com"] and msg["Bcc"] is None
        assert msg["Subject"].endswith("(db down Bcc: attacker@example.com)")
        assert "db down\r\nBcc" in json.loads(msg.get_content())["reason"]
    finally:
        api.close()


@pytest.mark.parametrize(
    ("channel", "config", "named"),
    [
        ("email", {"to": "oncall@example.com\nBcc: x@example.com"}, "config.to"),
        ("email", {"to": ["oncall@example.com", 5]}, "config.to"),
        ("email", {"to": {"x": "y"}}, "config.to"),
        ("webhook", {"url": "http://exa mple.com/\n"}, "invalid URL"),
        ("slack", {"url": "http://[::1"}, "invalid URL"),
        ("pagerduty", {"routing_key": ROUTING_KEY, "url": 5}, "config.url"),
        ("pagerduty", {"routing_key": ROUTING_KEY, "url": "ftp://x"}, "config.url"),
    ],
)
def test_malformed_channel_config_is_a_clear_422_not_a_500(
    server: ServerProcess, setup: Setup, channel: str, config: dict[str, Any], named: str
) -> None:
    api = Api(server, setup.pid)
    try:
        ch = _channel(api, {"name": "bad", "channel": channel, "config": config})
        assert named in assert_error(_test(api, ch["id"]), 422, "delivery_failed")["message"]
    finally:
        api.close()
