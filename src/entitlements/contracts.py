"""The contract's life: which status may follow which, and what a payment buys."""

from __future__ import annotations

import datetime as dt

from entitlements.catalog import Billing, CoverageStart, Plan
from entitlements.coverage import ContractStatus, Period, add_months
from entitlements.errors import Conflict

S = ContractStatus

TRANSITIONS: dict[ContractStatus, frozenset[ContractStatus]] = {
    S.PENDING_PAYMENT: frozenset({S.ACTIVE, S.ABANDONED, S.CANCELLED}),
    S.ACTIVE: frozenset({S.ACTIVE, S.PAST_DUE, S.CANCELLED, S.EXPIRED, S.LAPSED}),
    S.PAST_DUE: frozenset({S.ACTIVE, S.PAST_DUE, S.LAPSED, S.CANCELLED}),
    S.LAPSED: frozenset(),  # an ended subscription is not revived: a new sale is a new contract
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.ABANDONED: frozenset(),
}


def check_transition(current: ContractStatus, target: ContractStatus) -> None:
    if target not in TRANSITIONS[current]:
        raise Conflict(f"a {current.value} contract cannot become {target.value}", field="status")


def billing_interval_months(plan: Plan) -> int:
    """What one payment buys: the whole term upfront, else one month or one year."""
    return {Billing.UPFRONT: plan.term_months, Billing.MONTHLY: 1, Billing.ANNUAL: 12}[plan.billing]


def coverage_start(
    plan: Plan, purchase_date: dt.date, warranty_months: int, sold_at: dt.datetime
) -> dt.datetime:
    """When cover can first begin: the sale, or the day the manufacturer's warranty ends."""
    if plan.coverage_start is CoverageStart.AFTER_MANUFACTURER_WARRANTY:
        warranty_end = add_months(dt.datetime.combine(purchase_date, dt.time(), dt.UTC), warranty_months)
        return max(sold_at, warranty_end)
    return sold_at


def next_period(
    plan: Plan, existing: list[Period], earliest_start: dt.datetime, paid_at: dt.datetime
) -> Period:
    """The period a payment buys: it continues the last one if that has not ended yet, so early
    renewals never lose days; a late payment starts from when it was made."""
    start = max(earliest_start, paid_at)
    if existing:
        last_end = max(p.end for p in existing)
        if last_end >= paid_at:
            start = max(last_end, earliest_start)
    return Period(start, add_months(start, billing_interval_months(plan)))
