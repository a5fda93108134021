"""Reconciliation: the ledger against the gateway's balance transactions, streamed.

Each balance transaction is matched to the ledger by the Stripe id of what moved the money
(charge or PaymentIntent, refund, dispute). Both sides are read in pages; memory holds the
unmatched ledger keys of the range, not the rows.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Protocol

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.rules import CLAIM_COST
from billing.tables import LedgerEntryRow


class BalanceTransaction(msgspec.Struct, frozen=True):
    id: str
    reporting_category: str  # charge | refund | dispute | dispute_reversal | fee | payout | …
    amount: int  # gross, signed minor units
    fee: int
    net: int
    currency: str
    status: str  # available | pending
    created: dt.datetime
    source_ids: tuple[str, ...]  # ids the ledger may know it by (charge, PaymentIntent, refund, dispute)


class BalanceSource(Protocol):
    def balance_transactions(
        self, since: dt.datetime, until: dt.datetime
    ) -> AsyncIterator[BalanceTransaction]: ...


class Category(StrEnum):
    MATCHED = "matched"
    MISSING_IN_LEDGER = "missing_in_ledger"
    MISSING_IN_STRIPE = "missing_in_stripe"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    STATUS_MISMATCH = "status_mismatch"
    # A charge that bought nothing, refunded by a job: one for a period paid already, or one that
    # arrived for a contract abandoned unpaid. Matched, and still reported.
    DUPLICATE_PAYMENT = "duplicate_payment"
    LATE_PAYMENT = "late_payment"


class Finding(msgspec.Struct, frozen=True):
    category: Category
    currency: str
    ledger_id: int | None
    ledger_amount: int | None
    stripe_id: str | None
    stripe_amount: int | None
    stripe_ids: str  # the ids that matched or were looked for


class Totals(msgspec.Struct):
    currency: str
    gross: int = 0
    fee: int = 0
    net: int = 0
    ledger: int = 0


class Reconciliation(msgspec.Struct, frozen=True):
    since: dt.datetime
    until: dt.datetime
    counts: dict[str, int]
    totals: list[Totals]
    findings: list[Finding]  # everything but the matched


_KINDS = {
    "charge": {"sale", "renewal", "duplicate_payment", "late_payment"},
    "refund": {"refund"},
    "dispute": {"dispute"},
    "dispute_reversal": {"dispute_reversal"},
}


_UNWANTED = {"duplicate_payment": Category.DUPLICATE_PAYMENT, "late_payment": Category.LATE_PAYMENT}


async def _ledger_keys(
    session: AsyncSession, since: dt.datetime, until: dt.datetime
) -> AsyncIterator[tuple[int, str, int, str, tuple[str, ...]]]:
    """(id, kind, amount, currency, Stripe ids) of the ledger rows in the range, streamed from a
    server-side cursor: a million rows never sit in memory as objects."""
    t = LedgerEntryRow
    query = select(
        t.id,
        t.kind,
        t.amount,
        t.currency,
        t.stripe_charge,
        t.stripe_payment_intent,
        t.stripe_refund,
        t.stripe_dispute,
    ).where(t.occurred_at >= since, t.occurred_at < until, t.kind != CLAIM_COST)  # never through Stripe
    result = await session.stream(query.execution_options(yield_per=10_000))
    async for row_id, kind, amount, currency, charge, intent, refund, dispute in result:
        if kind in _KINDS["charge"]:
            keys = tuple(k for k in (charge, intent) if k)
        elif kind == "refund":
            keys = (refund,) if refund else ()
        else:
            keys = (dispute,) if dispute else ()
        yield row_id, kind, amount, currency, keys


async def reconcile(
    session: AsyncSession,
    gateway: BalanceSource,
    since: dt.datetime,
    until: dt.datetime,
    progress: Callable[[int], None] | None = None,
) -> Reconciliation:
    # Stripe id → (row, amount, currency, kind); Stripe's ids are unique across objects.
    index: dict[str, tuple[int, int, str, str]] = {}
    totals: dict[str, Totals] = {}
    async for row_id, kind, amount, currency, keys in _ledger_keys(session, since, until):
        kind = sys.intern(kind)  # a million rows, a handful of kinds: one string each
        currency = sys.intern(currency)
        for key in keys:
            index[key] = (row_id, amount, currency, kind)
        totals.setdefault(currency, Totals(currency)).ledger += amount
    counts: dict[str, int] = defaultdict(int)
    findings: list[Finding] = []
    used: set[int] = set()
    seen = 0
    async for tx in gateway.balance_transactions(since, until):
        seen += 1
        if progress is not None and seen % 1000 == 0:
            progress(seen)
        total = totals.setdefault(tx.currency, Totals(tx.currency))
        total.gross += tx.amount
        total.fee += tx.fee
        total.net += tx.net
        failed_refund = tx.reporting_category == "refund_failure"
        group = "refund" if failed_refund else tx.reporting_category
        if group not in _KINDS:
            continue  # fees, payouts, adjustments: in the totals, not in our ledger
        match = next((index[k] for k in tx.source_ids if k in index and index[k][3] in _KINDS[group]), None)
        if match is None and failed_refund:
            continue  # a failed refund we never recorded: nothing disagrees
        if match is None:
            category = Category.MISSING_IN_LEDGER
            ledger_id = ledger_amount = None
        else:
            ledger_id, ledger_amount, currency, kind = match
            used.add(ledger_id)
            if currency != tx.currency:
                category = Category.CURRENCY_MISMATCH
            elif failed_refund:
                category = Category.STATUS_MISMATCH  # the ledger says refunded; Stripe says it failed
            elif ledger_amount != tx.amount:
                category = Category.AMOUNT_MISMATCH
            elif kind in _UNWANTED:
                category = _UNWANTED[kind]
            else:
                category = Category.MATCHED
        counts[category] += 1
        if category is not Category.MATCHED:
            findings.append(
                Finding(
                    category, tx.currency, ledger_id, ledger_amount, tx.id, tx.amount, ",".join(tx.source_ids)
                )
            )
    reported: set[int] = set()
    for key, (ledger_id, amount, currency, _) in index.items():
        if ledger_id in used or ledger_id in reported:
            continue
        reported.add(ledger_id)
        counts[Category.MISSING_IN_STRIPE] += 1
        findings.append(Finding(Category.MISSING_IN_STRIPE, currency, ledger_id, amount, None, None, key))
    if progress is not None:
        progress(seen)
    return Reconciliation(
        since,
        until,
        {c.value: counts[c] for c in Category},
        sorted(totals.values(), key=lambda t: t.currency),
        findings,
    )
