"""How each notification channel type delivers one message."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import time
from email.message import EmailMessage
from typing import Any

import httpx

from tripwise.server.settings import Settings


class DeliveryError(Exception):
    """A message could not be delivered; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def _summary(event: dict[str, Any]) -> str:
    return (
        f"[tripwise] breaker {event['breaker_name']!r} {event['from_state']} -> "
        f"{event['to_state']}: {event['reason']}"
    )


def check_configured(channel: str, config: dict[str, Any], settings: Settings) -> None:
    """Raise a non-retryable DeliveryError naming what is missing for this channel."""
    if channel in ("webhook", "slack"):
        url = config.get("url") or config.get("webhook_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise DeliveryError(
                f"{channel} channel needs config.url (an http(s) URL)", retryable=False
            )
    elif channel == "email":
        if not settings.smtp_host:
            raise DeliveryError(
                "email delivery is not configured on this server: set TRIPWISE_SMTP_HOST "
                "(and TRIPWISE_SMTP_PORT, TRIPWISE_SMTP_FROM)",
                retryable=False,
            )
        to = config.get("to")
        addresses = to if isinstance(to, list) else [to]
        if not to or not all(isinstance(a, str) and a and a.isprintable() for a in addresses):
            raise DeliveryError(
                "email channel needs config.to: an address or a list of addresses "
                f"(strings without line breaks), got {to!r}",
                retryable=False,
            )
    elif channel == "pagerduty":
        if not isinstance(config.get("routing_key"), str) or not config.get("routing_key"):
            raise DeliveryError(
                "pagerduty channel needs config.routing_key (Events API v2 integration key)",
                retryable=False,
            )
        url = config.get("url")
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("http://", "https://"))
        ):
            raise DeliveryError(
                f"pagerduty config.url must be an http(s) URL, got {url!r}", retryable=False
            )
        if not (url or settings.pagerduty_url):
            raise DeliveryError(
                "PagerDuty delivery is not configured: set TRIPWISE_PAGERDUTY_URL "
                "or config.url (Events API v2 endpoint)",
                retryable=False,
            )


async def _post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        resp = await client.post(url, content=body, headers=headers)
    except httpx.InvalidURL as exc:  # not an HTTPError: a bad configuration, not a failure
        raise DeliveryError(f"invalid URL {url!r}: {exc}", retryable=False) from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"POST {url} failed: {exc.__class__.__name__}: {exc}") from exc
    if resp.status_code >= 400:
        raise DeliveryError(
            f"POST {url} answered {resp.status_code}", retryable=resp.status_code >= 500
        )


async def deliver(
    client: httpx.AsyncClient,
    settings: Settings,
    channel: str,
    config: dict[str, Any],
    event: dict[str, Any],
) -> None:
    """Deliver ``event`` once through a channel of type ``channel``."""
    check_configured(channel, config, settings)
    if channel == "webhook":
        body = json.dumps(event, separators=(",", ":")).encode()
        ts = str(int(time.time() * 1000))
        headers = {"Content-Type": "application/json", "X-Tripwise-Timestamp": ts}
        secret = config.get("secret")
        if isinstance(secret, str) and secret:
            sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256)
            headers["X-Tripwise-Signature"] = "v1=" + sig.hexdigest()
        await _post(client, config.get("url") or config["webhook_url"], body, headers)
    elif channel == "slack":
        body = json.dumps({"text": _summary(event)}).encode()
        url = config.get("url") or config["webhook_url"]
        await _post(client, url, body, {"Content-Type": "application/json"})
    elif channel == "pagerduty":
        action = "trigger" if event["to_state"] == "open" else "resolve"
        body = json.dumps(
            {
                "routing_key": config["routing_key"],
                "event_action": action,
                "dedup_key": f"tripwise-{event['breaker_id']}",
                "payload": {
                    "summary": _summary(event),
                    "source": "tripwise",
                    "severity": config.get("severity", "error"),
                    "custom_details": event,
                },
            }
        ).encode()
        url = config.get("url") or settings.pagerduty_url
        if not url:  # check_configured refused this already; narrows the type to str
            raise DeliveryError("PagerDuty delivery is not configured", retryable=False)
        await _post(client, url, body, {"Content-Type": "application/json"})
    elif channel == "email":
        await asyncio.to_thread(_send_mail, settings, config, event)
    else:
        raise DeliveryError(f"unknown channel type {channel!r}", retryable=False)


def _send_mail(settings: Settings, config: dict[str, Any], event: dict[str, Any]) -> None:
    msg = EmailMessage()
    # one line: a line break in a name or reason would make the header invalid (ValueError)
    msg["Subject"] = " ".join(_summary(event).split())
    msg["From"] = settings.smtp_from
    to = config["to"]
    msg["To"] = ", ".join(to) if isinstance(to, list) else str(to)
    msg.set_content(json.dumps(event, indent=2))
    try:
        with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=10) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP delivery failed: {exc}") from exc
