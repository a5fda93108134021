"""The transactional outbox: events written in the unit of work of the change they report, each
delivery a job enqueued in that same transaction (`event.deliver`, run by `coverline worker`).

An event carries the ids, the new state and a per-product sequence number (strictly increasing:
taken under the product's row lock), so a consumer can drop a stale one.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any

import msgspec
from sqlalchemy import Table, Text, bindparam, cast, func, insert, select, update

from entitlements import jobs
from entitlements.store.base import utcnow
from entitlements.store.tables import EventRow, ProductRow, WebhookEndpointRow

DELIVER = "event.deliver"  # the job: payload `Delivery`
# The catalogue (README, "Events"): every type an event may have.
EVENT_TYPES = frozenset(
    {
        "contract.created",
        "contract.activated",
        "contract.renewed",
        "contract.past_due",
        "contract.lapsed",
        "contract.cancelled",
        "contract.expired",
        "contract.abandoned",
        "contract.transferred",
        "contract.disputed",
        "contract.getting_started",
        "coverage.changed",
        "claim.filed",
        "claim.in_review",
        "claim.info_requested",
        "claim.approved",
        "claim.denied",
        "claim.voided",
        "claim.fulfilled",
        "claim.evidence_added",
        "service_order.offered",
        "service_order.assigned",
        "service_order.accepted",
        "service_order.product_received",
        "service_order.diagnosed",
        "service_order.estimate_approved",
        "service_order.repair_started",
        "service_order.repaired",
        "service_order.shipped",
        "service_order.closed",
        "service_order.cannot_repair",
        "service_order.cancelled",
        "benefit.redeemed",
        "benefit.voided",
        "payment.failed",
        "refund.created",
        "refund.failed",
        "renewal.upcoming",
        "coverage.ending",
        "offer.lead",
    }
)
VERSION = 1  # of the payloads' shape

events: Table = EventRow.__table__  # type: ignore[assignment]
endpoints: Table = WebhookEndpointRow.__table__  # type: ignore[assignment]
products: Table = ProductRow.__table__  # type: ignore[assignment]

_SEQUENCE = (
    update(products)
    .where(products.c.id == bindparam("product_id"))
    .values(event_sequence=products.c.event_sequence + bindparam("count"))
    .returning(products.c.event_sequence)
)
_INSERT = insert(events)
_SUBSCRIBED = select(endpoints.c.id, endpoints.c.event_types).where(endpoints.c.enabled.is_(True))
# The same, as one value that another statement can read along (a JSON array of [endpoint, event
# types]; NULL: none), so that the events need no read of their own and go with their jobs.
SUBSCRIBED = (
    select(cast(func.json_agg(func.json_build_array(endpoints.c.id, endpoints.c.event_types)), Text))
    .where(endpoints.c.enabled.is_(True))
    .scalar_subquery()
)
Subscribed = list[tuple[str, list[str] | None]]  # (endpoint, the event types it wants)


def subscribed_of(value: str | None) -> Subscribed:
    """`SUBSCRIBED`'s value, read."""
    return msgspec.json.decode(value, type=Subscribed) if value else []


class PendingEvent(msgspec.Struct, frozen=True):
    type: str
    data: dict[str, Any]
    product_id: str | None = None
    contract_id: str | None = None


class Delivery(msgspec.Struct, frozen=True):
    event_id: str
    endpoint_id: str


_last_ns = 0


def new_event_id() -> str:
    """`evt_` + the time in nanoseconds (hex, increasing in this process) + 4 random bytes: ids
    sort as the events were written, so a page of events is a range of ids."""
    global _last_ns
    _last_ns = max(time.time_ns(), _last_ns + 1)
    return f"evt_{_last_ns:016x}{secrets.token_hex(4)}"


def wants(event_types: list[str] | None, event_type: str) -> bool:
    """An endpoint with no filter receives every event; else those named (or `prefix.*`)."""
    if not event_types:
        return True
    return any(t == event_type or (t.endswith(".*") and event_type.startswith(t[:-1])) for t in event_types)


async def write(
    run: Any,
    pending: list[PendingEvent],
    at: dt.datetime | None = None,
    numbered: dict[str, int] | None = None,
    subscribed: Subscribed | None = None,
) -> list[str]:
    """Write the events and enqueue a delivery per subscribed endpoint, in the caller's
    transaction; their ids. A product's events take consecutive sequence numbers from one update
    of its row: the snapshot's, when `numbered` gives the last number it took for them, else one
    of their own; all the events go in with one statement. `subscribed`: the endpoints, when the
    caller read them along with another statement (else they are read with the events)."""
    if not pending:
        return []
    at = at or utcnow()
    last: dict[str, int] = {}
    for product_id in sorted({e.product_id for e in pending if e.product_id is not None}):
        count = sum(1 for e in pending if e.product_id == product_id)
        if numbered and product_id in numbered:
            last[product_id] = numbered[product_id] - count
            continue
        found = await run.row(_SEQUENCE, product_id=product_id, count=count)
        if found is not None:
            last[product_id] = int(found[0]) - count
    rows: list[dict[str, Any]] = []
    for event in pending:
        sequence = None
        if event.product_id in last:
            last[event.product_id] += 1
            sequence = last[event.product_id]
        rows.append(
            {
                "id": new_event_id(),
                "type": event.type,
                "product_id": event.product_id,
                "contract_id": event.contract_id,
                "sequence": sequence,
                "data": msgspec.json.encode(event.data).decode(),
                "created_at": at,
            }
        )
    await run.run_many(_INSERT, rows)
    for row in rows:
        if row["type"] in jobs.EMAIL_EVENTS:
            run.enqueue(jobs.SEND_EMAIL, row["id"].encode())
    if subscribed is None:
        subscribed = [(row[0], row[1]) for row in await run.rows(_SUBSCRIBED)]
    for endpoint_id, event_types in subscribed:
        for row in rows:
            if wants(event_types, row["type"]):
                run.enqueue(DELIVER, msgspec.json.encode(Delivery(row["id"], endpoint_id)))
    return [row["id"] for row in rows]
