"""Leases on calls to Stripe that must not be made twice at once: a contract's checkout, its
cancellation. Stripe's idempotency keys make a retry one request, but only on a server that keeps
them, and two concurrent requests under one key get Stripe's "in use" error rather than one
answer. So the first request takes the operation's lease and commits it before it calls Stripe
(no transaction is open across the network); a concurrent one waits for it or is refused. A
holder that died or failed is taken over once its lease has passed; what it planned to ask (a
cancellation's refunds) is kept with the lease, so the taker asks Stripe the same thing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing.tables import GatewayLeaseRow
from entitlements.store.unit_of_work import commit

_ROW = GatewayLeaseRow


# A holder may ask Stripe several times under one lease (a checkout: its customer, its price,
# its PaymentIntent or subscription, the confirmation; a cancellation: a refund per payment), each
# call within the lease setting (Stripe's timeout times its tries): a lease lasts this many.
CALLS = 8


class Waiting:
    """A request waiting for the holder of a lease: it looks again after 50 ms, then less and
    less often (at most every half second), for as long as one Stripe call may take; then it
    gives up (the caller answers 409), while the holder may still be at work."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.turns = 0

    async def another_turn(self) -> bool:
        if time.monotonic() >= self.deadline:
            return False
        await asyncio.sleep(min(0.05 * 2**self.turns, 0.5, max(self.deadline - time.monotonic(), 0)))
        self.turns += 1
        return True


class Lease(msgspec.Struct, frozen=True):
    key: str
    holder: str
    planned: bytes | None  # what an earlier holder planned to ask, when this lease was taken over


def _mine(lease: Lease) -> ColumnElement[bool]:
    return (_ROW.key == lease.key) & (_ROW.holder == lease.holder)


async def take(session: AsyncSession, key: str, seconds: float) -> Lease | None:
    """The operation's lease, in the session's transaction (commit it before calling Stripe), for
    `CALLS` Stripe calls of `seconds` each, or None while another request holds it. Time is the
    database's, shared by every host."""
    holder = secrets.token_hex(8)
    until = func.clock_timestamp() + dt.timedelta(seconds=seconds * CALLS)
    taken = insert(_ROW).values(key=key, holder=holder, until=until)
    statement = taken.on_conflict_do_update(
        index_elements=[_ROW.key],
        set_={"holder": taken.excluded.holder, "until": taken.excluded.until},
        where=_ROW.until <= func.clock_timestamp(),
    ).returning(_ROW.planned)
    row = (await session.execute(statement)).first()
    return None if row is None else Lease(key, holder, row.planned)


async def planned_of(session: AsyncSession, key: str) -> bytes | None:
    """What the operation's last holder planned, whoever holds the lease now, if anyone."""
    return await session.scalar(select(_ROW.planned).where(_ROW.key == key))


async def forget_planned(session: AsyncSession, lease: Lease) -> None:
    """Stripe refused what was planned, and made nothing: a retry plans afresh."""
    await session.execute(update(_ROW).where(_mine(lease)).values(planned=None))


async def keep_planned(session: AsyncSession, lease: Lease, planned: bytes) -> None:
    """What the holder is about to ask Stripe, kept for whoever takes the lease over."""
    await session.execute(update(_ROW).where(_mine(lease)).values(planned=planned))


@asynccontextmanager
async def held(session: AsyncSession, lease: Lease) -> AsyncIterator[None]:
    """Let the lease go when the block ends: removed when it succeeded; when it failed, kept
    with what was planned but passed, so that a retry takes it over at once and asks Stripe the
    same (the block's own uncommitted writes are rolled back first)."""
    try:
        yield
    except BaseException:
        await session.rollback()
        await session.execute(update(_ROW).where(_mine(lease)).values(until=func.clock_timestamp()))
        await session.commit()
        raise
    await session.execute(delete(_ROW).where(_mine(lease)))
    await commit(session)
