"""Reconciliation: the ledger against the gateway's balance transactions, streamed.

Each balance transaction is matched to the ledger by the Stripe id of what moved the money
(charge or PaymentIntent, refund, dispute). The ledger's rows of the range are read from a
server-side cursor into flat arrays and an id → position map; the balance transactions are
streamed past them, never held.
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Protocol

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from billing.ledger.rules import CLAIM_COST
from billing.webhooks.rules import Unwanted
from entitlements.store.unit_of_work import unit_of_work


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
    # A charge that bought nothing, refunded by a job (`Unwanted`): one for a period paid
    # already, one that arrived for a contract that had ended, one that is not the contract's
    # price. Matched, and still reported.
    DUPLICATE_PAYMENT = "duplicate_payment"
    LATE_PAYMENT = "late_payment"
    MISMATCHED_PAYMENT = "mismatched_payment"


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
    "charge": {"sale", "renewal", *(kind.value for kind in Unwanted)},
    "refund": {"refund"},
    "dispute": {"dispute"},
}
# A reversal names the refund or dispute it reverses, as that one's own row does: it is kept
# under the category of the balance transaction it matches (`dispute_reversal:dp_…`), so that a
# dispute and its reversal, or a refund and its failure, are two rows for two transactions.
_REVERSAL_OF = {"refund_failure": "refund_reversal", "dispute_reversal": "dispute_reversal"}
_MATCHED_BY = {kind: category for category, kind in _REVERSAL_OF.items()}


_UNWANTED = {kind.value: Category(kind.value) for kind in Unwanted}


_LEDGER_RANGE = (
    "SELECT id, kind, amount, currency, stripe_charge, stripe_payment_intent, stripe_refund, stripe_dispute"
    " FROM ledger_entries WHERE occurred_at >= $1 AND occurred_at < $2 AND kind <> $3"
)


class Ledger:
    """The range's ledger rows, held compactly: each Stripe id maps to a row's position, and a
    position's id, amount, currency and kind sit in flat arrays (a million rows in a few tens of
    MB, where a tuple per row took hundreds)."""

    def __init__(self) -> None:
        self.by_key: dict[str, int] = {}  # Stripe id → position; Stripe's ids are unique across objects
        self.ids = array("q")
        self.amounts = array("q")
        self.currency = bytearray()  # position → index into `currencies`
        self.kind = bytearray()  # position → index into `kinds`
        self.currencies: list[str] = []
        self.kinds: list[str] = []
        self.used = bytearray()  # position → 1 once a balance transaction matched it

    @staticmethod
    def _code(names: list[str], name: str) -> int:
        try:
            return names.index(name)
        except ValueError:
            names.append(name)
            return len(names) - 1

    def add(self, row_id: int, kind: str, amount: int, currency: str, keys: tuple[str | None, ...]) -> None:
        position = len(self.ids)
        self.ids.append(row_id)
        self.amounts.append(amount)
        self.currency.append(self._code(self.currencies, currency))
        self.kind.append(self._code(self.kinds, kind))
        self.used.append(0)
        for key in keys:
            if key:
                self.by_key[key] = position

    def match(self, source_ids: tuple[str, ...], kinds: set[str]) -> int | None:
        """The position of the first id's row of one of `kinds`, if any."""
        for key in source_ids:
            position = self.by_key.get(key)
            if position is not None and self.kinds[self.kind[position]] in kinds:
                return position
        return None


async def ledger_of(session: AsyncSession, since: dt.datetime, until: dt.datetime) -> Ledger:
    """The range's ledger rows (claim costs never go through Stripe), read from a server-side
    cursor on the session's own connection, in its transaction. The caller ends that
    transaction before `reconcile` pages through Stripe."""
    ledger = Ledger()
    connection = (await unit_of_work(session)).connection
    async for row_id, kind, amount, currency, charge, intent, refund, dispute in connection.cursor(
        _LEDGER_RANGE, since, until, CLAIM_COST, prefetch=10_000
    ):
        if kind in _KINDS["charge"]:
            keys: tuple[str | None, ...] = (charge, intent)
        elif kind == "refund":
            keys = (refund,)
        elif kind in _MATCHED_BY:  # the refund's or the dispute's id, whichever it reverses
            keys = (f"{_MATCHED_BY[kind]}:{refund or dispute}",)
        else:
            keys = (dispute,)
        ledger.add(row_id, kind, amount, currency, keys)
    return ledger


async def reconcile(
    ledger: Ledger,
    gateway: BalanceSource,
    since: dt.datetime,
    until: dt.datetime,
    progress: Callable[[int], None] | None = None,
) -> Reconciliation:
    """The range's balance transactions, streamed from the gateway (no database transaction
    open), matched against its ledger rows read before (`ledger_of`)."""
    totals: dict[str, Totals] = {}
    for row, amount in enumerate(ledger.amounts):
        currency = ledger.currencies[ledger.currency[row]]
        totals.setdefault(currency, Totals(currency)).ledger += amount
    counts: dict[str, int] = defaultdict(int)
    findings: list[Finding] = []
    seen = 0
    async for tx in gateway.balance_transactions(since, until):
        seen += 1
        if progress is not None and seen % 1000 == 0:
            progress(seen)
        total = totals.get(tx.currency) or totals.setdefault(tx.currency, Totals(tx.currency))
        total.gross += tx.amount
        total.fee += tx.fee
        total.net += tx.net
        failed_refund = tx.reporting_category == "refund_failure"
        if tx.reporting_category in _REVERSAL_OF:
            reversal = _REVERSAL_OF[tx.reporting_category]
            position = ledger.match(tuple(f"{tx.reporting_category}:{s}" for s in tx.source_ids), {reversal})
            if position is None and failed_refund:  # the ledger holds the refund as made, or nothing
                position = ledger.match(tx.source_ids, _KINDS["refund"])
                if position is None:
                    continue  # a failed refund we never recorded: nothing disagrees
        elif tx.reporting_category in _KINDS:
            position = ledger.match(tx.source_ids, _KINDS[tx.reporting_category])
        else:
            continue  # fees, payouts, adjustments: in the totals, not in our ledger
        if position is None:
            category = Category.MISSING_IN_LEDGER
            ledger_id = ledger_amount = None
        else:
            ledger.used[position] = 1
            ledger_id, ledger_amount = ledger.ids[position], ledger.amounts[position]
            kind = ledger.kinds[ledger.kind[position]]
            if ledger.currencies[ledger.currency[position]] != tx.currency:
                category = Category.CURRENCY_MISMATCH
            elif failed_refund and kind == "refund":
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
    for key, position in ledger.by_key.items():
        if ledger.used[position]:
            continue
        ledger.used[position] = 1  # a row known by two ids is reported once
        counts[Category.MISSING_IN_STRIPE] += 1
        currency = ledger.currencies[ledger.currency[position]]
        findings.append(
            Finding(
                Category.MISSING_IN_STRIPE,
                currency,
                ledger.ids[position],
                ledger.amounts[position],
                None,
                None,
                key,
            )
        )
    if progress is not None:
        progress(seen)
    return Reconciliation(
        since,
        until,
        {c.value: counts[c] for c in Category},
        sorted(totals.values(), key=lambda t: t.currency),
        findings,
    )
