"""The cancellation policy: what a customer gets back, in the contract's minor units."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import msgspec

from entitlements.catalog import Plan
from entitlements.coverage import Period
from entitlements.money import Money


class RefundBasis(StrEnum):
    FREE_LOOK = "free_look"  # within the free-look days and no approved claim: everything back
    PRO_RATA = "pro_rata"  # the unused share of the current paid period, less the plan's fee
    NONE = "none"  # the plan refunds nothing after the free look, or nothing is left


class RefundQuote(msgspec.Struct, frozen=True):
    amount: Money
    basis: RefundBasis
    fee: Money
    unused_days: int
    period_days: int


def refund_quote(
    plan: Plan,
    *,
    paid_total: Money,
    current_payment: Money,
    current_period: Period | None,
    sold_at: dt.datetime,
    any_approved_claim: bool,
    at: dt.datetime,
) -> RefundQuote:
    """Full within the free look if no claim was approved; after it, the unused days of the
    current paid period pro rata, minus the fee; never negative, and never more than is left of
    what was paid (`paid_total`: paid less every refund so far). Integer minor units throughout,
    rounded down (a VND amount stays whole dong)."""
    currency = paid_total.currency
    fee = plan.cancellation.fee(currency)
    zero = Money(0, currency)
    if at < sold_at + dt.timedelta(days=plan.cancellation.free_look_days) and not any_approved_claim:
        return RefundQuote(paid_total, RefundBasis.FREE_LOOK, zero, 0, 0)
    if not plan.cancellation.pro_rata or current_period is None or at >= current_period.end:
        return RefundQuote(zero, RefundBasis.NONE, zero, 0, 0)
    total = current_period.end - current_period.start
    unused = current_period.end - max(at, current_period.start)
    share = current_payment.amount * int(unused.total_seconds()) // int(total.total_seconds())
    amount = min(max(share - fee.amount, 0), paid_total.amount)
    basis = RefundBasis.PRO_RATA if amount > 0 else RefundBasis.NONE
    return RefundQuote(Money(amount, currency), basis, fee if amount > 0 else zero, unused.days, total.days)
