"""What a cancellation may give back, read from the contract's ledger: pure rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from billing.ledger.rules import UNWANTED, LedgerKind, counts_as_revenue, owed_back_intents

PAYMENTS = frozenset({LedgerKind.SALE.value, LedgerKind.RENEWAL.value})


class Entry(NamedTuple):
    """A ledger row of the contract, in the order it occurred."""

    kind: str
    amount: int  # signed minor units
    currency: str
    payment_intent: str | None


def own_money(entries: Iterable[Entry], currency: str) -> list[Entry]:
    """The contract's own money: rows in its currency, and none of a payment that bought nothing
    (a duplicate, a late or mismatched payment: its job refunds it in full), nor what moved on
    such a payment since (its refund)."""
    rows = list(entries)
    unwanted = owed_back_intents((e.kind, e.payment_intent) for e in rows)
    return [
        e
        for e in rows
        if e.currency == currency and e.kind not in UNWANTED and e.payment_intent not in unwanted
    ]


def refundable(entries: Sequence[Entry]) -> list[tuple[str, int]]:
    """Each Stripe payment (PaymentIntent) among the contract's own money, newest first, with what
    is left of it to refund: its amount less what went back on it (in whatever order the rows
    arrived). A payment with nothing left is left out."""
    paid: dict[str, int] = {}
    moved: dict[str, int] = {}
    for e in entries:
        if e.payment_intent is None or not counts_as_revenue(e.kind):
            continue
        into = paid if e.kind in PAYMENTS else moved
        into[e.payment_intent] = into.get(e.payment_intent, 0) + e.amount
    left = ((intent, amount + moved.get(intent, 0)) for intent, amount in reversed(paid.items()))
    return [(intent, amount) for intent, amount in left if amount > 0]


def allocate(amount: int, payments: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """A refund of `amount` spread over the payments, newest first, none refunded beyond what is
    left of it (Stripe refuses more than a charge's amount): one refund per payment touched."""
    refunds = []
    for intent, left in payments:
        if amount <= 0:
            break
        part = min(left, amount)
        refunds.append((intent, part))
        amount -= part
    return refunds
