"""The ledger's pure rules: what each kind of entry is, and what counts as the customer's money."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from enum import StrEnum


class LedgerKind(StrEnum):
    """What a ledger entry is. All but two are money the customer paid or got back."""

    SALE = "sale"  # the first payment of a contract
    RENEWAL = "renewal"  # a subscription's later invoice
    REFUND = "refund"
    # A refund that failed or was cancelled after it was made: the money stayed (Stripe books a
    # `refund_failure` balance transaction, which this row matches).
    REFUND_REVERSAL = "refund_reversal"
    DISPUTE = "dispute"  # taken back by the card's bank while the dispute runs
    DISPUTE_REVERSAL = "dispute_reversal"  # given back: the dispute was won
    DUPLICATE_PAYMENT = "duplicate_payment"  # see `Unwanted`
    LATE_PAYMENT = "late_payment"
    MISMATCHED_PAYMENT = "mismatched_payment"
    # Stripe's fee is a cost of collecting the money: not the plans' revenue, and not part of
    # what a refund may return.
    FEE = "fee"
    # What a claim cost: a repair's parts, labour and shipping, a replacement at cost, what is
    # owed to the customer, a gift card. Money the plan spends, never revenue.
    CLAIM_COST = "claim_cost"


FEE = LedgerKind.FEE
CLAIM_COST = LedgerKind.CLAIM_COST
# Payments that bought nothing, each refunded in full by a job (the webhooks' `Unwanted`).
UNWANTED = frozenset(
    {LedgerKind.DUPLICATE_PAYMENT.value, LedgerKind.LATE_PAYMENT.value, LedgerKind.MISMATCHED_PAYMENT.value}
)


def held_for_the_customer(rows: Sequence[tuple[str, str | None, dt.datetime]]) -> list[bool]:
    """For each (kind, PaymentIntent, when) ledger row: whether it is money held for the customer,
    never earned. A payment that bought nothing (`UNWANTED`), and what moved on its PaymentIntent;
    a refund that failed (its reversal: the money came back, owed until it is paid back), and a
    refund made on that PaymentIntent after it (the paying back of what was held)."""
    unwanted = owed_back_intents((kind, intent) for kind, intent, _ in rows)
    reversed_at: dict[str, dt.datetime] = {}
    for kind, intent, at in rows:
        if (
            kind == LedgerKind.REFUND_REVERSAL
            and intent
            and (intent not in reversed_at or at < reversed_at[intent])
        ):
            reversed_at[intent] = at
    return [
        kind in UNWANTED
        or kind == LedgerKind.REFUND_REVERSAL
        or intent in unwanted
        or (kind == LedgerKind.REFUND and intent in reversed_at and at > reversed_at[intent])
        for kind, intent, at in rows
    ]


def owed_back_intents(rows: Iterable[tuple[str, str | None]]) -> set[str]:
    """The PaymentIntents of payments that bought nothing, among (kind, PaymentIntent) ledger
    rows: what moves on them is owed back, never the contract's own money."""
    return {intent for kind, intent in rows if kind in UNWANTED and intent}


def counts_as_revenue(kind: str) -> bool:
    return kind not in (LedgerKind.FEE, LedgerKind.CLAIM_COST)


def net_paid(entries: Iterable[tuple[str, int]]) -> int:
    """What the customer paid, net of what went back: (kind, signed amount) ledger entries, fees
    left out. Never below zero."""
    return max(sum(amount for kind, amount in entries if counts_as_revenue(kind)), 0)
