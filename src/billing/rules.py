"""Billing's pure rules: what Stripe's facts mean for a contract and for the books."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from enum import StrEnum

from entitlements.coverage import ContractStatus, Period


class LedgerKind(StrEnum):
    """What a ledger entry is. All but two are money the customer paid or got back."""

    SALE = "sale"  # the first payment of a contract
    RENEWAL = "renewal"  # a subscription's later invoice
    REFUND = "refund"
    DISPUTE = "dispute"  # taken back by the card's bank while the dispute runs
    DISPUTE_REVERSAL = "dispute_reversal"  # given back: the dispute was won
    DUPLICATE_PAYMENT = "duplicate_payment"  # see `Unwanted`
    LATE_PAYMENT = "late_payment"
    # Stripe's fee is a cost of collecting the money: not the plans' revenue, and not part of
    # what a refund may return.
    FEE = "fee"
    # What a claim cost: a repair's parts, labour and shipping, a replacement at cost, what is
    # owed to the customer, a gift card. Money the plan spends, never revenue.
    CLAIM_COST = "claim_cost"


FEE = LedgerKind.FEE
CLAIM_COST = LedgerKind.CLAIM_COST


def counts_as_revenue(kind: str) -> bool:
    return kind not in (LedgerKind.FEE, LedgerKind.CLAIM_COST)


def net_paid(entries: Iterable[tuple[str, int]]) -> int:
    """What the customer paid, net of what went back: (kind, signed amount) ledger entries, fees
    left out. Never below zero."""
    return max(sum(amount for kind, amount in entries if counts_as_revenue(kind)), 0)


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
    LATE_PAYMENT = "late_payment"  # for a contract abandoned unpaid before it arrived


def paid_already(upfront: bool, periods: Sequence[Period], period: Period | None) -> Period | None:
    """The period a new payment would pay a second time, if any: an upfront contract is paid
    once for its whole term; a subscription's invoice pays its own service period, which must
    not overlap one already paid (periods that only touch, end to start, do not)."""
    if upfront:
        return periods[0] if periods else None
    if period is None:
        return None
    return next((p for p in periods if p.start < period.end and period.start < p.end), None)


class AttemptStatus(StrEnum):
    """Where one try to pay a contract's first payment stands."""

    STARTED = "started"  # committed before Stripe was asked: no Stripe object known yet
    CREATED = "created"  # Stripe's object exists (its id stored), its outcome not yet known
    REQUIRES_ACTION = "requires_action"  # the shopper must authenticate (3-D Secure) on the page
    AWAITING_PAGE = "awaiting_page"  # the page confirms it (Stripe.js or Stripe's hosted page)
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"


# A new payment method may replace an attempt in these; a paid or paying one never.
_REPLACEABLE = frozenset(
    {AttemptStatus.STARTED, AttemptStatus.CREATED, AttemptStatus.REQUIRES_ACTION, AttemptStatus.AWAITING_PAGE}
)


def needs_new_attempt(latest: AttemptStatus | None, latest_method: str | None, method: str | None) -> bool:
    """A checkout asked again resumes its latest attempt (a retry, or a crash's recovery: the
    same Stripe object, never a second charge) unless that attempt was declined, or is still
    unpaid and the shopper now pays with another payment method."""
    if latest is None or latest is AttemptStatus.DECLINED:
        return True
    return latest in _REPLACEABLE and method is not None and method != latest_method


def attempt_status(stripe_status: str, decline_code: str | None) -> AttemptStatus:
    """A PaymentIntent's or first invoice's status, as an attempt's."""
    if decline_code is not None:
        return AttemptStatus.DECLINED
    return {
        "succeeded": AttemptStatus.SUCCEEDED,
        "active": AttemptStatus.SUCCEEDED,
        "trialing": AttemptStatus.SUCCEEDED,
        "processing": AttemptStatus.PROCESSING,
        "requires_action": AttemptStatus.REQUIRES_ACTION,
        "requires_payment_method": AttemptStatus.AWAITING_PAGE,
        "requires_confirmation": AttemptStatus.CREATED,
        "incomplete": AttemptStatus.AWAITING_PAGE,
    }.get(stripe_status, AttemptStatus.CREATED)


# The languages Stripe's receipts, invoices and hosted pages speak, of ours. Stripe has no
# Arabic or Hindi: those customers get the account's default language (English).
STRIPE_LOCALES = {"en": "en", "sv": "sv", "vi": "vi", "fil": "fil"}


def stripe_locales(locale: str) -> list[str]:
    """`preferred_locales` for a customer in our `locale` (a BCP 47 tag such as sv or sv-SE)."""
    language = locale.replace("_", "-").split("-")[0].lower()
    return [STRIPE_LOCALES[language]] if language in STRIPE_LOCALES else []
