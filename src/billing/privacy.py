"""Stripe's copies of a person, as we keep them: the events Stripe sent (stored raw, once each).
On erasure, every stored event that names the person's Stripe customer loses what identifies
them — names, emails, phones, addresses, card details — and keeps its ids, amounts and dates, so
the ledger still reconciles. (The Stripe Customer itself gets the tombstone through the
`customer.changed` job.)"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.tables import StripeEventRow

PERSONAL = frozenset(
    {
        "name",
        "email",
        "phone",
        "address",
        "shipping",
        "billing_details",
        "customer_name",
        "customer_email",
        "customer_phone",
        "customer_address",
        "customer_shipping",
        "customer_details",
        "receipt_email",
        "description",
    }
)


def redacted(value: Any) -> Any:
    """The value with every personal field, at any depth, emptied."""
    if isinstance(value, dict):
        return {k: (None if k in PERSONAL else redacted(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


async def redact_stripe_events(session: AsyncSession, stripe_customer_id: str) -> int:
    """How many stored events named the customer (each now redacted)."""
    rows = await session.scalars(
        select(StripeEventRow).where(StripeEventRow.payload.contains(f'"{stripe_customer_id}"'))
    )
    count = 0
    for row in rows:
        row.payload = msgspec.json.encode(redacted(msgspec.json.decode(row.payload))).decode()
        count += 1
    return count
