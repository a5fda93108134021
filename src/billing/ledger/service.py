"""The ledger: each money movement written once by its key; filtered pages by id (a cursor), and CSV
with stable columns."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from sqlalchemy import Select, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.finance.rules import Movement, Position, positions
from billing.ledger.rules import LedgerKind, counts_as_revenue, held_for_the_customer
from billing.tables import LedgerEntryRow
from entitlements.contracts.rules import AFTER_COVER
from entitlements.money import Money
from entitlements.store.base import utcnow
from entitlements.store.statements import Statements
from entitlements.store.tables import ContractRow
from entitlements.store.unit_of_work import UnitOfWork

ledger_entries: Table = LedgerEntryRow.__table__  # type: ignore[assignment]


async def record_once(
    run: Statements, key: str, kind: LedgerKind, amount: int, currency: str, at: dt.datetime, **ids: Any
) -> bool:
    """A money movement, once by its key, whichever of our call and Stripe's webhook comes first;
    False when it was booked before."""
    stored = await run.insert_new(
        ledger_entries,
        entry_key=key,
        kind=kind,
        amount=amount,
        currency=currency.upper(),
        occurred_at=at,
        recorded_at=utcnow(),
        **ids,
    )
    told = _TOLD.get(kind)
    if stored and told is not None and isinstance(run, UnitOfWork):  # booked once, told once
        refunded = {
            "contract_id": ids.get("contract_id"),
            "refund": ids.get("stripe_refund"),
            "payment_intent": ids.get("stripe_payment_intent"),
            "amount": {"amount": abs(amount), "currency": currency.upper()},
        }
        run.emit(told, refunded, contract_id=ids.get("contract_id"))
    return stored


# What the endpoints are told of a refund: made, and (after it was told) failed or cancelled.
_TOLD = {LedgerKind.REFUND: "refund.created", LedgerKind.REFUND_REVERSAL: "refund.failed"}


CSV_COLUMNS = (
    "id",
    "occurred_at",
    "kind",
    "amount_minor",
    "amount",
    "currency",
    "contract_id",
    "period_start",
    "period_end",
    "stripe_payment_intent",
    "stripe_charge",
    "stripe_invoice",
    "stripe_refund",
    "stripe_dispute",
    "stripe_balance_transaction",
)


class LedgerFilter(msgspec.Struct, frozen=True):
    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive
    currency: str | None = None
    contract_id: str | None = None

    def query(self) -> Select[LedgerEntryRow]:
        query = select(LedgerEntryRow)
        if self.since is not None:
            query = query.where(LedgerEntryRow.occurred_at >= self.since)
        if self.until is not None:
            query = query.where(LedgerEntryRow.occurred_at < self.until)
        if self.currency is not None:
            query = query.where(LedgerEntryRow.currency == self.currency)
        if self.contract_id is not None:
            query = query.where(LedgerEntryRow.contract_id == self.contract_id)
        return query


async def ledger_page(
    session: AsyncSession, where: LedgerFilter, *, after_id: int, limit: int
) -> list[LedgerEntryRow]:
    rows = await session.scalars(
        where.query().where(LedgerEntryRow.id > after_id).order_by(LedgerEntryRow.id).limit(limit)
    )
    return list(rows)


async def ledger_rows(
    session: AsyncSession, where: LedgerFilter, chunk: int = 5000
) -> AsyncIterator[LedgerEntryRow]:
    """Every matching row, in id order, a chunk at a time (memory stays flat however long)."""
    after = 0
    while True:
        page = await ledger_page(session, where, after_id=after, limit=chunk)
        for row in page:
            yield row
        if len(page) < chunk:
            return
        after = page[-1].id


def _iso(value: dt.datetime | None) -> str:
    return "" if value is None else value.isoformat().replace("+00:00", "Z")


def csv_line(row: LedgerEntryRow) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(
        [
            row.id,
            _iso(row.occurred_at),
            row.kind,
            row.amount,
            Money(row.amount, row.currency).decimal_text(),
            row.currency,
            row.contract_id or "",
            _iso(row.period_start),
            _iso(row.period_end),
            row.stripe_payment_intent or "",
            row.stripe_charge or "",
            row.stripe_invoice or "",
            row.stripe_refund or "",
            row.stripe_dispute or "",
            row.stripe_balance_transaction or "",
        ]
    )
    return out.getvalue()


def csv_header(bom: bool) -> str:
    return ("\ufeff" if bom else "") + ",".join(CSV_COLUMNS) + "\r\n"


async def revenue_movements(session: AsyncSession, where: LedgerFilter) -> list[Movement]:
    """The ledger's rows that count as revenue (Stripe's fees do not), as the revenue rules read
    them: a payment that bought nothing (`Unwanted`: refunded by its job), and what moved on it
    since, is money owed back, never earned."""
    rows = [row async for row in ledger_rows(session, where) if counts_as_revenue(row.kind)]
    held = held_for_the_customer([(row.kind, row.stripe_payment_intent, row.occurred_at) for row in rows])
    ended = select(ContractRow.id, ContractRow.currency, ContractRow.ended_at).where(
        ContractRow.status.in_([status.value for status in AFTER_COVER]),
        ContractRow.ended_at.is_not(None),
        # Of the contracts these rows are about: not every contract that ever ended.
        ContractRow.id.in_(where.query().with_only_columns(LedgerEntryRow.contract_id).distinct()),
    )
    if where.until is not None:
        ended = ended.where(ContractRow.ended_at < where.until)
    ends = [
        Movement(contract_id, 0, currency, ended_at, ends_schedule=True)
        for contract_id, currency, ended_at in (await session.execute(ended)).all()
        if ended_at is not None  # as the query asks: for the type checker
    ]
    return ends + [
        Movement(
            row.contract_id,
            row.amount,
            row.currency,
            row.occurred_at,
            row.period_start,
            row.period_end,
            owed_back=owed_back,
        )
        for row, owed_back in zip(rows, held, strict=True)
    ]


async def revenue_positions(
    session: AsyncSession, as_of: dt.datetime, currency: str | None
) -> list[Position]:
    """Collected, recognized and deferred revenue per currency as of an instant, from every ledger
    row up to it that counts as revenue."""
    where = LedgerFilter(until=as_of + dt.timedelta(microseconds=1), currency=currency)
    return positions(await revenue_movements(session, where), as_of)
