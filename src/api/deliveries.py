"""Outbound webhooks, to the Standard Webhooks specification: each event POSTed to each endpoint
that wants it, by the `event.deliver` job (`coverline worker`; several workers share the queue).

- Headers `webhook-id` (the event's id, the same on every attempt), `webhook-timestamp` and
  `webhook-signature` (`v1,` base64 HMAC-SHA256 over `id.timestamp.body`, keyed by the
  base64-decoded `whsec_` secret), signed again at every attempt with a fresh timestamp; during a
  secret rotation with the old secret too, for 24 hours.
- Body `{"type", "timestamp", "data", "version"}`; one event per request.
- At least once: 2xx is delivered; 410 disables the endpoint; anything else is retried with
  exponential backoff and jitter (no wait over an hour) until the event is 3 days old, and an
  endpoint that has failed that long is disabled, with the reason.
- No SSRF: in production an endpoint must be HTTPS and resolve to public addresses only (in
  development loopback is allowed too), checked at creation and again at each delivery;
  redirects are not followed, and at most a few bytes of the answer are read and logged.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import random
import re
import secrets
import socket
import time
import weakref
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import structlog
from sqlalchemy import Table, bindparam, func, insert, select, update

from api.database import Database
from api.settings import Settings
from entitlements.decisions import decision_of
from entitlements.store.base import utcnow
from entitlements.store.outbox import VERSION, Delivery
from entitlements.store.plans import plan_version
from entitlements.store.tables import EventRow, WebhookDeliveryRow, WebhookEndpointRow
from entitlements.summaries import summarize
from entitlements.zones import UTC

log = structlog.get_logger("api.deliveries")
deliveries: Table = WebhookDeliveryRow.__table__  # type: ignore[assignment]
endpoints: Table = WebhookEndpointRow.__table__  # type: ignore[assignment]
events_table: Table = EventRow.__table__  # type: ignore[assignment]
_LOG = insert(deliveries)


class Target(msgspec.Struct, frozen=True):
    """An attempt's event and endpoint, read in one statement."""

    id: str
    type: str
    data: str
    sequence: int | None
    created_at: dt.datetime
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_until: dt.datetime | None
    enabled: bool
    locale: str | None
    attempts: int


_ATTEMPTS = (
    select(func.count())
    .select_from(deliveries)
    .where(
        deliveries.c.event_id == bindparam("event_id"), deliveries.c.endpoint_id == bindparam("endpoint_id")
    )
    .scalar_subquery()
)
_TARGET = select(
    events_table.c.id,
    events_table.c.type,
    events_table.c.data,
    events_table.c.sequence,
    events_table.c.created_at,
    endpoints.c.url,
    endpoints.c.secret,
    endpoints.c.previous_secret,
    endpoints.c.previous_secret_until,
    endpoints.c.enabled,
    endpoints.c.locale,
    _ATTEMPTS,
).where(events_table.c.id == bindparam("event_id"), endpoints.c.id == bindparam("endpoint_id"))
_DISABLE = (
    update(endpoints)
    .where(endpoints.c.id == bindparam("endpoint_id"))
    .values(enabled=False, disabled_reason=bindparam("reason"), updated_at=bindparam("now"))
)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class UnsafeUrl(ValueError):
    pass


# A DNS name (ASCII labels; an IDN in its xn-- form) or an IP address (IPv6 unbracketed by urlsplit).
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?|[0-9A-Fa-f:.]+"
)


async def check_url(url: str, *, allow_loopback: bool) -> None:
    """Raise `UnsafeUrl` unless the URL may receive events: HTTPS (plain HTTP only to loopback in
    development), and every address its host resolves to public."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # a port that is not one
        raise UnsafeUrl(f"not a URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not host or not _HOST.fullmatch(host):
        raise UnsafeUrl("an endpoint URL is https://host/path, the host a DNS name or an IP address")
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=5
        )
    except (OSError, UnicodeError, TimeoutError) as exc:
        raise UnsafeUrl(f"{host} does not resolve") from exc
    addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    for address in addresses:
        if address.is_loopback and allow_loopback:
            continue
        if not address.is_global or address.is_multicast:
            raise UnsafeUrl(f"{parts.hostname} resolves to {address}, which is not a public address")
    if parts.scheme == "http" and not (allow_loopback and all(a.is_loopback for a in addresses)):
        raise UnsafeUrl("an endpoint URL must be https")


def backoff(attempt: int, settings: Settings) -> float:
    """Seconds before the next attempt: doubling from the first delay, capped, with jitter."""
    ceiling = min(settings.webhook_retry_seconds * 2 ** (attempt - 1), settings.webhook_retry_max_seconds)
    return float(ceiling * random.uniform(0.5, 1.0))


def payload(event: EventRow | Target, texts: dict[str, str] | None = None) -> bytes:
    body: dict[str, Any] = {
        "type": event.type,
        "timestamp": event.created_at.isoformat(),
        "data": msgspec.json.decode(event.data),
        "version": VERSION,
        "sequence": event.sequence,
    }
    if texts is not None:
        body["texts"] = texts
    return msgspec.json.encode(body)


async def coverage_texts(db: Database, data: dict[str, Any], locale: str) -> dict[str, str]:
    """`coverage.changed`'s summary in the endpoint's language, rendered at delivery from the
    locale-neutral data (the answer as of the change)."""
    decision, entry = decision_of(data)
    name = None
    if entry is not None:
        async with db.unit_of_work() as run:
            plan = await plan_version(run, entry["plan_code"], entry["plan_version"])
        name = plan.text(locale).name if plan else None

    def instant(key: str) -> dt.datetime | None:
        value = entry.get(key) if entry else None
        return dt.datetime.fromisoformat(value) if value else None

    summary = summarize(
        decision,
        locale,
        plan_name=name,
        starts_at=instant("starts_at"),
        ended_at=instant("ended_at"),
        time_zone=data.get("time_zone") or UTC,
    )
    return {"locale": locale, "summary": summary}


# One HTTP client per event loop (a worker has one): building a client costs ~30 ms of CPU (its
# TLS context), as much as 40 deliveries, and a kept-alive connection saves a handshake per event.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def _client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = _clients[loop] = httpx.AsyncClient(
            follow_redirects=False, limits=httpx.Limits(max_connections=100, max_keepalive_connections=20)
        )
    return client


async def deliver(db: Database, settings: Settings, delivery: Delivery) -> None:
    """One attempt; raises PgQueuer's `RetryRequested` to be tried again later."""
    from pgqueuer.domain.errors import RetryRequested

    async with db.unit_of_work() as run:  # one statement on asyncpg, no session
        found = await run.row(_TARGET, event_id=delivery.event_id, endpoint_id=delivery.endpoint_id)
    if found is None or not found[9]:
        return  # deleted or disabled meanwhile: nothing to send
    target = Target(*found)
    attempt = target.attempts + 1
    texts = None
    if target.type == "coverage.changed" and target.locale:
        texts = await coverage_texts(db, msgspec.json.decode(target.data), target.locale)
    body = payload(target, texts)
    now = utcnow()
    stamp = int(time.time())
    signatures = [sign(target.secret, target.id, stamp, body)]
    if target.previous_secret and target.previous_secret_until and target.previous_secret_until > now:
        signatures.append(sign(target.previous_secret, target.id, stamp, body))
    headers = {
        "content-type": "application/json",
        "user-agent": "Coverline-Webhooks/1",
        "webhook-id": target.id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": " ".join(signatures),
    }
    status: int | None = None
    excerpt = error = None
    started = time.monotonic()
    try:
        await check_url(target.url, allow_loopback=not settings.production)
        async with _client().stream(
            "POST", target.url, content=body, headers=headers, timeout=settings.webhook_timeout_seconds
        ) as response:
            status = response.status_code
            read = b""
            async for chunk in response.aiter_bytes():
                read += chunk
                if len(read) >= settings.webhook_response_bytes:
                    break
            excerpt = read[: settings.webhook_response_bytes].decode("utf-8", "replace")
    except UnsafeUrl as exc:
        error = f"refused: {exc}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    latency = int((time.monotonic() - started) * 1000)
    delivered = status is not None and 200 <= status < 300
    outcome = "delivered" if delivered else "gone" if status == 410 else "failed"
    disable: str | None = None
    if status == 410:
        disable = "the endpoint answered 410 Gone"
    elif error and error.startswith("refused"):
        disable = error
    elif not delivered and now - target.created_at >= dt.timedelta(seconds=settings.webhook_give_up_seconds):
        disable = f"deliveries failed for {settings.webhook_give_up_seconds // 3600} hours"
    async with db.unit_of_work() as run:  # the attempt's log row, and the endpoint disabled with it
        await run.run(
            _LOG,
            event_id=target.id,
            endpoint_id=delivery.endpoint_id,
            attempt=attempt,
            status=outcome,
            http_status=status,
            latency_ms=latency,
            response_excerpt=excerpt,
            error=error,
            attempted_at=now,
        )
        if disable is not None:
            await run.run(_DISABLE, endpoint_id=delivery.endpoint_id, reason=disable, now=now)
    log.info(
        "event delivery",
        event_id=target.id,
        endpoint_id=delivery.endpoint_id,
        attempt=attempt,
        outcome=outcome,
        status=status,
    )
    if delivered or disable is not None:
        return
    raise RetryRequested(
        delay=dt.timedelta(seconds=backoff(attempt, settings)), reason=error or f"HTTP {status}"
    )
