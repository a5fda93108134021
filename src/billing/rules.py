"""Billing's pure rules: what Stripe's facts mean for a contract and for the books."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from entitlements.coverage import ContractStatus

# Ledger kinds that are money the customer paid or got back. Stripe's fee is a cost of
# collecting it: not the plans' revenue, and not part of what a refund may return.
FEE = "fee"


def counts_as_revenue(kind: str) -> bool:
    return kind != FEE


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
