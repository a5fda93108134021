"""Webhook endpoints and the events log, in a unit of work: an endpoint registered, changed,
rotated or removed (the caller checks its URL and hands the secret); its delivery log; the
events of the last 30 days; and an event delivered again to every enabled endpoint that wants it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.clock import utcnow
from entitlements.errors import Conflict, InvalidInput
from entitlements.fields import new_id
from entitlements.store.base import found
from entitlements.store.outbox import DELIVER, EVENT_TYPES, Delivery, wants
from entitlements.store.tables import EventRow, WebhookDeliveryRow, WebhookEndpointRow
from entitlements.store.unit_of_work import commit, unit_of_work

MAX_ENDPOINTS = 25
# The class of the advisory lock registrations take (the two-key form: a space of its own).
REGISTRATION_LOCKS = 0x0FFD
RETENTION = dt.timedelta(days=30)
ROTATION = dt.timedelta(hours=24)  # the old secret still signs this long after a rotation
PAGE = 100


def check_event_types(event_types: list[str]) -> None:
    unknown = sorted({t for t in event_types if not t.endswith(".*") and t not in EVENT_TYPES})
    if unknown:
        raise InvalidInput(
            f"unknown event types {unknown}; see GET /v1/events' catalogue", field="event_types"
        )


async def endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpointRow:
    return await found(session, WebhookEndpointRow, endpoint_id, "webhook endpoint", "endpoint_id")


async def register(
    session: AsyncSession,
    *,
    url: str,
    event_types: list[str],
    locale: str | None,
    description: str | None,
    secret: str,
) -> WebhookEndpointRow:
    # Registrations take turns (a lock in a key space of its own, held until commit), so that
    # many at once cannot each count 24 and all be added.
    await session.execute(select(func.pg_advisory_xact_lock(REGISTRATION_LOCKS, 0)))
    if (await session.scalar(select(func.count()).select_from(WebhookEndpointRow)) or 0) >= MAX_ENDPOINTS:
        raise Conflict(f"at most {MAX_ENDPOINTS} webhook endpoints", field="url")
    now = utcnow()
    row = WebhookEndpointRow(
        id=new_id("we"),
        url=url,
        event_types=sorted(set(event_types)),
        locale=locale,
        description=description,
        enabled=True,
        disabled_reason=None,
        secret=secret,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await commit(session)
    return row


async def endpoints(session: AsyncSession) -> list[WebhookEndpointRow]:
    return list(await session.scalars(select(WebhookEndpointRow).order_by(WebhookEndpointRow.created_at)))


async def change(session: AsyncSession, row: WebhookEndpointRow, **changes: Any) -> WebhookEndpointRow:
    """`url`, `event_types`, `locale`, `description`, `enabled`: each given one set."""
    if "event_types" in changes:
        changes["event_types"] = sorted(set(changes["event_types"]))
    if "enabled" in changes:
        changes["disabled_reason"] = None if changes["enabled"] else "disabled by an admin"
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    await commit(session)
    return row


async def remove(session: AsyncSession, endpoint_id: str) -> None:
    await session.delete(await endpoint(session, endpoint_id))
    await commit(session)


async def rotate(session: AsyncSession, endpoint_id: str, secret: str) -> WebhookEndpointRow:
    """A new secret; the one it replaces still signs for `ROTATION`, while receivers move over.
    Rotated again within that window (a double click, a second thought), the secret from
    before the first rotation, the one receivers still hold, keeps signing until its window
    ends; the secret in between, never yet in use, is dropped. Rotations of one endpoint take
    turns (its row is locked)."""
    row = await found(session, WebhookEndpointRow, endpoint_id, "webhook endpoint", "endpoint_id", lock=True)
    now = utcnow()
    if row.previous_secret is None or row.previous_secret_until is None or row.previous_secret_until <= now:
        row.previous_secret, row.previous_secret_until = row.secret, now + ROTATION
    row.secret, row.updated_at = secret, now
    await commit(session)
    return row


async def deliveries(
    session: AsyncSession, endpoint_id: str, cursor: int | None
) -> tuple[list[WebhookDeliveryRow], str | None]:
    """A page of the endpoint's delivery log, newest first, and the next page's cursor."""
    await endpoint(session, endpoint_id)
    query = select(WebhookDeliveryRow).where(WebhookDeliveryRow.endpoint_id == endpoint_id)
    if cursor is not None:
        query = query.where(WebhookDeliveryRow.id < cursor)
    rows = list(await session.scalars(query.order_by(WebhookDeliveryRow.id.desc()).limit(PAGE + 1)))
    return rows[:PAGE], str(rows[PAGE - 1].id) if len(rows) > PAGE else None


async def events(
    session: AsyncSession,
    *,
    type: str | None,
    product_id: str | None,
    contract_id: str | None,
    cursor: str | None,
) -> tuple[list[EventRow], str | None]:
    """A page of the last 30 days' events, newest first, and the next page's cursor."""
    query = select(EventRow).where(EventRow.created_at >= utcnow() - RETENTION)
    if type is not None:
        query = query.where(EventRow.type == type)
    if product_id is not None:
        query = query.where(EventRow.product_id == product_id)
    if contract_id is not None:
        query = query.where(EventRow.contract_id == contract_id)
    if cursor is not None:
        query = query.where(EventRow.id < cursor)  # ids sort as the events were written
    rows = list(await session.scalars(query.order_by(EventRow.id.desc()).limit(PAGE + 1)))
    return rows[:PAGE], rows[PAGE - 1].id if len(rows) > PAGE else None


async def event(session: AsyncSession, event_id: str) -> EventRow:
    return await found(session, EventRow, event_id, "event", "event_id")


async def redeliver(session: AsyncSession, event_id: str) -> int:
    """The event queued again for every enabled endpoint that wants it; how many."""
    row = await event(session, event_id)
    enabled = await session.scalars(select(WebhookEndpointRow).where(WebhookEndpointRow.enabled.is_(True)))
    unit = await unit_of_work(session)
    queued = 0
    for receiver in enabled:
        if wants(list(receiver.event_types), row.type):
            unit.enqueue(DELIVER, msgspec.json.encode(Delivery(row.id, receiver.id)))
            queued += 1
    await commit(session)
    return queued
