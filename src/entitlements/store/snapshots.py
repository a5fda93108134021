"""Entitlement snapshots: everything a check needs about one product, in one row.

The normalized tables (contracts, coverage_periods, claims) are the record. The unit of work that
changes them rewrites the product's snapshot in the same transaction, just before it commits
(`unit_of_work.UnitOfWork.before_commit`), so a check is one indexed read that is never staler
than the last commit, from any worker or instance.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import Table, bindparam, func, or_, select, update

from entitlements.benefits.rules import RedemptionStatus
from entitlements.catalog import BenefitKind, CoverageKind, Plan
from entitlements.claims.rules import AWAITING_REVIEW, COUNTED, ClaimStatus
from entitlements.coalescing import Gathered
from entitlements.contracts.rules import warranty_end
from entitlements.coverage import (
    BenefitUse,
    ClaimUse,
    ContractFacts,
    ContractStatus,
    Period,
    incident_instant,
)
from entitlements.identifiers import mask_email, mask_phone
from entitlements.money import Money
from entitlements.store import outbox
from entitlements.store.statements import Row, Statements
from entitlements.store.tables import (
    BenefitRedemptionRow,
    ClaimRow,
    ContractRow,
    CoveragePeriodRow,
    CustomerRow,
    ProductRow,
    ServiceOrderRow,
)
from entitlements.zones import UTC


class ContractSnapshot(msgspec.Struct, frozen=True, array_like=True):
    contract_id: str
    status: ContractStatus
    plan_code: str
    plan_version: int
    currency: str
    sold_at: dt.datetime
    coverage_starts_at: dt.datetime
    ended_at: dt.datetime | None
    waiting_until: dt.datetime | None
    grace_until: dt.datetime | None
    periods: tuple[Period, ...]
    claims: tuple[ClaimUse, ...]
    # Last, with defaults: snapshots written before them still decode.
    disputed: bool = False
    redemptions: tuple[BenefitUse, ...] = ()  # of included services, not voided

    def facts(
        self,
        plan: Plan,
        product_price: Money,
        time_zone: str = UTC,
        warranty_until: dt.datetime | None = None,
    ) -> ContractFacts:
        return ContractFacts(
            contract_id=self.contract_id,
            status=self.status,
            plan=plan,
            currency=self.currency,
            product_price=product_price,
            sold_at=self.sold_at,
            periods=self.periods,
            claims=self.claims,
            waiting_until=self.waiting_until,
            grace_until=self.grace_until,
            time_zone=time_zone,
            warranty_until=warranty_until,
            redemptions=self.redemptions,
        )


class OpenClaim(msgspec.Struct, frozen=True, array_like=True):
    """A claim still in motion: waiting for a reviewer, or approved and not yet fulfilled (with
    its repair's service order, when there is one)."""

    claim_id: str
    contract_id: str
    status: str
    incident_kind: CoverageKind
    incident_date: dt.date
    service_order_id: str | None = None
    service_order_status: str | None = None
    servicer_id: str | None = None


class ProductSnapshot(msgspec.Struct, frozen=True):
    product_id: str
    customer_id: str
    sku: str
    category: str
    price: Money
    serial: str | None
    imei: str | None
    contact: str | None  # masked: the only customer detail a check shows
    contracts: tuple[ContractSnapshot, ...]
    # The owner's: the dates a check shows are theirs (last, with a default: snapshots written
    # before it still decode).
    time_zone: str = UTC
    locale: str | None = None  # the owner's language: a check in no language asked is in theirs
    open_claims: tuple[OpenClaim, ...] = ()
    # The manufacturer's warranty ends, on parts and on labour (None: snapshots written before).
    warranty_parts_until: dt.datetime | None = None
    warranty_labour_until: dt.datetime | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ProductSnapshot)


def decode_snapshot(raw: str | bytes) -> ProductSnapshot:
    return _decoder.decode(raw)


def masked_contact(email: str | None, phone: str | None) -> str | None:
    if email:
        return mask_email(email)
    return mask_phone(phone) if phone else None


products: Table = ProductRow.__table__  # type: ignore[assignment]
customers: Table = CustomerRow.__table__  # type: ignore[assignment]
contracts: Table = ContractRow.__table__  # type: ignore[assignment]
periods: Table = CoveragePeriodRow.__table__  # type: ignore[assignment]
claims: Table = ClaimRow.__table__  # type: ignore[assignment]
orders: Table = ServiceOrderRow.__table__  # type: ignore[assignment]
redemptions: Table = BenefitRedemptionRow.__table__  # type: ignore[assignment]
# Claims a snapshot holds: those that use the limits, and those still open.
_HELD = (*COUNTED, *AWAITING_REVIEW)

# The product row is locked in the statement that reads the record: `FOR NO KEY UPDATE`, the lock
# an UPDATE of the row takes (a writer that inserted a contract or a claim holds `FOR KEY SHARE` on
# the product through its foreign key, and two of them asking for `FOR UPDATE` would deadlock).
# A writer that waited there for another gets the product row as that one committed it, but the
# rows joined to it as they were when the statement began. Every writer of a product's record
# rewrites its snapshot and advances its `event_sequence` under this lock, so the statement also
# reads the number as it began (`_SEEN`): when the locked row's differs, another writer committed
# in between, and the record is read again, under the lock now held.
_AS_BEGUN = products.alias("as_begun")
_SEEN = select(_AS_BEGUN.c.event_sequence).where(_AS_BEGUN.c.id == bindparam("product_id")).scalar_subquery()
# What a contract holds, each an array of rows (NULL: none): its coverage periods (start, end);
# its claims that use the limits or are still open (kind, day, amount, claim, status, order,
# order status, servicer); its redemptions of included services that count (kind, instant).
_PERIODS = (
    select(func.array_agg(func.row(periods.c.starts_at, periods.c.ends_at)))
    .where(periods.c.contract_id == contracts.c.id)
    .scalar_subquery()
)
_CLAIMS = (
    select(
        func.array_agg(
            func.row(
                claims.c.incident_kind,
                claims.c.incident_date,
                claims.c.covered_amount,
                claims.c.id,
                claims.c.status,
                orders.c.id,
                orders.c.status,
                orders.c.servicer_id,
            )
        )
    )
    .select_from(claims.outerjoin(orders, orders.c.claim_id == claims.c.id))
    .where(claims.c.contract_id == contracts.c.id, or_(*(claims.c.status == s for s in _HELD)))
    .scalar_subquery()
)
_REDEMPTIONS = (
    select(func.array_agg(func.row(redemptions.c.kind, redemptions.c.redeemed_at)))
    .where(
        redemptions.c.contract_id == contracts.c.id,
        redemptions.c.product_id == products.c.id,
        redemptions.c.status == RedemptionStatus.REDEEMED.value,
    )
    .scalar_subquery()
)
# The product, its owner's contact and its contracts, with what each holds, in one statement (no
# contract: one row of NULLs for it).
_PRODUCT = (
    select(
        products.c.customer_id,
        products.c.sku,
        products.c.category,
        products.c.price_amount,
        products.c.currency,
        products.c.serial,
        products.c.imei,
        customers.c.email,
        customers.c.phone,
        customers.c.time_zone,
        customers.c.locale,
        products.c.purchase_date,
        products.c.warranty_months,
        products.c.warranty_labour_months,
        contracts.c.id,
        contracts.c.status,
        contracts.c.plan_code,
        contracts.c.plan_version,
        contracts.c.currency,
        contracts.c.sold_at,
        contracts.c.coverage_starts_at,
        contracts.c.ended_at,
        contracts.c.waiting_until,
        contracts.c.grace_until,
        contracts.c.disputed,
        _PERIODS,
        _CLAIMS,
        _REDEMPTIONS,
        products.c.event_sequence,
    )
    .select_from(
        products.join(customers, customers.c.id == products.c.customer_id).outerjoin(
            contracts, contracts.c.product_id == products.c.id
        )
    )
    .where(products.c.id == bindparam("product_id"))
    .order_by(contracts.c.sold_at, contracts.c.id)
)
_SEQUENCE = len(_PRODUCT.selected_columns) - 1  # the product's event_sequence; `_SEEN` follows
# It also reads the endpoints subscribed to events, which the unit writes next (`outbox.write`).
_LOCK_AND_READ = _PRODUCT.add_columns(_SEEN, outbox.SUBSCRIBED).with_for_update(key_share=True, of=products)
# The snapshot, and the numbers of the events the same unit writes about the product taken in the
# same statement: under the lock, the number read with the record is the row's, so the write needs
# no answer, and the unit sends it with its next statement.
_WRITE = (
    update(products)
    .where(products.c.id == bindparam("product_id"))
    .values(entitlement=bindparam("snapshot"), event_sequence=bindparam("event_sequence"))
)


async def build_snapshot(statements: Statements, product_id: str) -> ProductSnapshot | None:
    """The product's snapshot from the record, its row locked until the transaction ends."""
    read = await _locked_record(statements, product_id)
    return read.snapshot if read is not None else None


class Refreshed(NamedTuple):
    snapshot: ProductSnapshot
    sequence: int  # the product's last event number
    subscribed: outbox.Subscribed  # the endpoints subscribed to events, read along


async def _locked_record(statements: Statements, product_id: str) -> Refreshed | None:
    """The product's snapshot, its last event number and the endpoints subscribed to events, its
    row locked until the transaction ends; None when there is no such product."""
    rows = await statements.rows(_LOCK_AND_READ, product_id=product_id)
    if not rows:
        return None
    subscribed = outbox.subscribed_of(rows[0][_SEQUENCE + 2])
    if rows[0][_SEQUENCE] != rows[0][_SEQUENCE + 1]:  # a writer committed as this one waited
        rows = await statements.rows(_PRODUCT, product_id=product_id)
    return Refreshed(_snapshot(product_id, rows), int(rows[0][_SEQUENCE]), subscribed)


def _snapshot(product_id: str, rows: Sequence[Row]) -> ProductSnapshot:
    customer_id, sku, category, price, currency, serial, imei, email, phone, time_zone, locale = rows[0][:11]
    purchased, parts_months, labour_months = rows[0][11:14]
    time_zone = time_zone or UTC
    open_claims: list[OpenClaim] = []
    held: list[ContractSnapshot] = []
    for row in rows:
        (c_id, status, plan_code, plan_version, c_currency, sold_at, starts_at, ended_at, waiting_until) = (
            row[14:23]
        )
        grace_until, disputed, spans, claimed, redeemed = row[23:28]
        if c_id is None:
            continue
        used: list[ClaimUse] = []
        for kind, day, amount, claim_id, claim_status, order_id, order_status, servicer in claimed or ():
            if claim_status in COUNTED:
                used.append(ClaimUse(CoverageKind(kind), incident_instant(day, time_zone), amount))
            if claim_status != ClaimStatus.FULFILLED:  # waiting for review, or for its fulfilment
                open_claims.append(
                    OpenClaim(
                        claim_id,
                        c_id,
                        claim_status,
                        CoverageKind(kind),
                        day,
                        order_id,
                        order_status,
                        servicer,
                    )
                )
        held.append(
            ContractSnapshot(
                contract_id=c_id,
                status=ContractStatus(status),
                plan_code=plan_code,
                plan_version=plan_version,
                currency=c_currency,
                sold_at=sold_at,
                coverage_starts_at=starts_at,
                ended_at=ended_at,
                waiting_until=waiting_until,
                grace_until=grace_until,
                periods=tuple(sorted((Period(start, end) for start, end in spans or ()), key=_in_order)),
                claims=tuple(sorted(used, key=lambda u: (u.incident_at, u.incident_kind, u.covered_amount))),
                disputed=disputed,
                redemptions=tuple(
                    sorted(
                        (BenefitUse(BenefitKind(kind), at) for kind, at in redeemed or ()), key=_by_instant
                    )
                ),
            )
        )
    return ProductSnapshot(
        product_id=product_id,
        customer_id=customer_id,
        sku=sku,
        category=category,
        price=Money(price, currency),
        serial=serial,
        imei=imei,
        contact=masked_contact(email, phone),
        time_zone=time_zone,
        locale=locale,
        open_claims=tuple(sorted(open_claims, key=lambda c: (c.incident_date, c.claim_id))),
        warranty_parts_until=warranty_end(purchased, parts_months),
        warranty_labour_until=warranty_end(
            purchased, parts_months if labour_months is None else labour_months
        ),
        contracts=tuple(held),
    )


def _in_order(period: Period) -> tuple[dt.datetime, dt.datetime]:
    return period.start, period.end


def _by_instant(use: BenefitUse) -> tuple[dt.datetime, str]:
    return use.at, use.kind


async def refresh_snapshot(statements: Statements, product_id: str, events: int = 0) -> Refreshed | None:
    """Rewrite the product's snapshot from the record (inside the caller's transaction), taking
    `events` sequence numbers for the events about it that the caller writes next; the snapshot,
    the last number taken and the endpoints subscribed to events (None: no such product)."""
    read = await _locked_record(statements, product_id)
    if read is None:
        return None
    last = read.sequence + events
    await statements.run(
        _WRITE, product_id=product_id, snapshot=_encoder.encode(read.snapshot).decode(), event_sequence=last
    )
    return read._replace(sequence=last)


# --- reading snapshots ---------------------------------------------------------------------------


class SnapshotSource(Protocol):
    async def fetch(self, lookups: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """(kind, looked-up value, snapshot JSON) for every product that a (kind, value) in
        `lookups` names, once however often it is asked."""
        ...


# Each kind of lookup: what it selects, from where, and what it matches against its array.
_LOOKUPS = {
    "serial": "p.serial, p.entitlement, p.created_at, p.id FROM products p WHERE p.serial",
    "imei": "p.imei, p.entitlement, p.created_at, p.id FROM products p WHERE p.imei",
    "customer_id": "p.customer_id, p.entitlement, p.created_at, p.id FROM products p WHERE p.customer_id",
    "order_ref": "p.order_ref, p.entitlement, p.created_at, p.id FROM products p WHERE p.order_ref",
    "contract_id": "c.id, p.entitlement, p.created_at, p.id FROM contracts c"
    " JOIN products p ON p.id = c.product_id WHERE c.id",
}


@functools.cache
def _read_statement(kinds: tuple[str, ...]) -> str:
    """One statement for the kinds asked at once, each over an array of its own ($1, $2, ... in
    the order of `kinds`): lookups of different kinds gathered together cost one round trip. A
    value's products come in the order they were recorded."""
    branches = " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, {_LOOKUPS[kind]} = ANY(${n}::text[])" for n, kind in enumerate(kinds, 1)
    )
    # Built only from the constant `_LOOKUPS`; the values travel as parameters.
    found = f"({branches}) AS found (kind, value, entitlement, created_at, id)"
    return f"SELECT kind, value, entitlement FROM {found} ORDER BY created_at, id"  # noqa: S608


class PgSnapshots:
    """Straight through asyncpg with prepared statements: the hot path."""

    def __init__(self, connection: asyncpg.Connection[Any] | PoolConnectionProxy[Any]) -> None:
        self.connection = connection

    async def fetch(self, lookups: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        by_kind: dict[str, list[str]] = {kind: [] for kind in _LOOKUPS}
        for kind, value in lookups:
            by_kind[kind].append(value)
        asked = tuple(kind for kind, values in by_kind.items() if values)
        if not asked:
            return []
        rows = await self.connection.fetch(_read_statement(asked), *(by_kind[kind] for kind in asked))
        return [(row[0], row[1], row[2]) for row in rows]


def _lookup(row: tuple[str, str, str]) -> tuple[str, str]:
    return row[0], row[1]


def _usable(connection: Any) -> bool:
    try:
        return not connection.is_closed()
    except asyncpg.InterfaceError:  # the pool already took it back when it closed
        return False


class SharedReads:
    """Snapshot reads on PostgreSQL that concurrent checks in one process share
    (`entitlements.coalescing.Gathered`): a burst of checks costs one round trip instead of one
    each, whatever kinds of lookup it mixes, and every answer is as fresh as a read of its own.

    One read is out at a time, on a connection it keeps (taking one from the pool and giving it
    back cost more than the read it carried); what arrives meanwhile gathers into the next. Two
    out at once answered no more checks and widened the tail: the check's p99 12.6-23.6 ms against
    9.2-10.0, its p99.9 32-68 against 13-14 (`docs/performance.md`, session 17).
    """

    MAX_LOOKUPS = 1000
    IN_FLIGHT = 1
    KEEP_FOR = 1000  # reads, then a kept connection goes back, for the pool's recycling and trimming

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.sent = 0  # reads sent so far
        self._kept: list[Any] = []  # connections between reads
        self._closed = False
        self._gathered: Gathered[tuple[str, str], tuple[str, str, str]] = Gathered(
            self._read, _lookup, max_keys=self.MAX_LOOKUPS, in_flight=self.IN_FLIGHT
        )

    async def fetch(self, lookups: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        return await self._gathered.fetch(lookups)

    async def _read(self, lookups: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        connection = None
        while self._kept and connection is None:
            kept = self._kept.pop()
            if _usable(kept):
                connection = kept
            else:  # closed between reads (a restart, an idle timeout): the pool takes it back
                await self.pool.release(kept)
        if connection is None:
            connection = await self.pool.acquire()
        try:
            rows = await PgSnapshots(connection).fetch(lookups)
        except BaseException:
            await self.pool.release(connection)  # the pool knows whether it can be used again
            raise
        self.sent += 1
        if self._closed or self.sent % self.KEEP_FOR == 0:
            await self.pool.release(connection)
        else:
            self._kept.append(connection)
        return rows

    async def close(self) -> None:
        """Give the kept connections back, so the pool can close (a read still out gives its
        connection back when it ends)."""
        self._closed = True
        while self._kept:
            await self.pool.release(self._kept.pop())
