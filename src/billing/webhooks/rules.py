"""The webhooks' pure rules: what Stripe's facts mean for a contract and for the books."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from enum import StrEnum

from billing.ledger.rules import LedgerKind
from entitlements.coverage import ContractStatus, Period
from entitlements.money import Money


def subscription_ending(
    reason: str | None, ended_at: dt.datetime, cancel_at: dt.datetime | None
) -> ContractStatus:
    """How a contract ends when its subscription does: lapsed when Stripe gave up collecting,
    expired when a fixed term paid in instalments reached its planned end, cancelled otherwise."""
    if reason == "payment_failed":
        return ContractStatus.LAPSED
    if cancel_at is not None and ended_at >= cancel_at:
        return ContractStatus.EXPIRED
    return ContractStatus.CANCELLED


def invoice_kind(
    billing_reason: str | None, period_start: dt.datetime | None, period_starts: Iterable[dt.datetime]
) -> LedgerKind:
    """Whether a paid subscription invoice is the sale or a renewal. Stripe says so in
    `billing_reason`; where it is missing (older API versions, Stripe-compatible servers), the
    first invoice is the one paying the contract's first coverage period: none of the contract's
    periods (`period_starts`, this invoice's included) starts before it."""
    if billing_reason is not None:
        return LedgerKind.SALE if billing_reason == "subscription_create" else LedgerKind.RENEWAL
    if period_start is None:
        return LedgerKind.RENEWAL
    return LedgerKind.SALE if all(start >= period_start for start in period_starts) else LedgerKind.RENEWAL


class Unwanted(StrEnum):
    """A payment Stripe took that buys nothing, refunded by a job and reported by reconciliation:
    its ledger kind."""

    DUPLICATE_PAYMENT = "duplicate_payment"  # for a period that was paid already
    # For a contract abandoned unpaid, or for cover after its contract was cancelled or charged
    # back: a renewal Stripe took as the customer cancelled, 3-D Secure finished after a cancel.
    LATE_PAYMENT = "late_payment"
    # Not what the contract costs: another currency, or (a PaymentIntent) another amount. A
    # PaymentIntent made elsewhere that names the contract buys nothing with it.
    MISMATCHED_PAYMENT = "mismatched_payment"


def mismatched(currency: str, amount: int, price: Money, *, whole_price: bool) -> bool:
    """Whether a payment is not the contract's price: its currency always; its amount where the
    payment is the whole price (a PaymentIntent; an invoice may carry tax, a discount, proration)."""
    return currency != price.currency or (whole_price and amount != price.amount)


def paid_already(upfront: bool, periods: Sequence[Period], period: Period | None) -> Period | None:
    """The period a new payment would pay a second time, if any: an upfront contract is paid
    once for its whole term; a subscription's invoice pays its own service period, which must
    not overlap one already paid (periods that only touch, end to start, do not)."""
    if upfront:
        return periods[0] if periods else None
    if period is None:
        return None
    return next((p for p in periods if p.start < period.end and period.start < p.end), None)
