"""Leads: found by their token's hash, and consumed, once, by the sale made from their offer."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import Table, bindparam, select, update

from entitlements.errors import Conflict
from entitlements.store.statements import Statements
from entitlements.store.tables import LeadRow

leads: Table = LeadRow.__table__  # type: ignore[assignment]

# A lead by its token (only the token's SHA-256 is kept).
LEAD = select(leads.c.id, leads.c.product_id, leads.c.expires_at, leads.c.consumed_at).where(
    leads.c.token_hash == bindparam("token_hash")
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_CONSUME = (
    update(leads)
    .where(
        leads.c.id == bindparam("lead_id"),
        leads.c.product_id == bindparam("product_id"),
        leads.c.consumed_at.is_(None),
    )
    .values(consumed_at=bindparam("now"), contract_id=bindparam("contract_id"))
    .returning(leads.c.id)
)


async def consume_lead(
    run: Statements, lead_id: str, product_id: str, contract_id: str, now: dt.datetime
) -> None:
    """Mark the lead used by this sale; a problem if another sale used it first."""
    if (
        await run.row(_CONSUME, lead_id=lead_id, product_id=product_id, contract_id=contract_id, now=now)
        is None
    ):
        raise Conflict("this lead has been used for a sale", field="offer_token")
