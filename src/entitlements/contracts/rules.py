"""The contract's life: which status may follow which, and what a payment buys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

from entitlements.catalog import Billing, CoverageStart, Plan
from entitlements.coverage import ContractStatus, Period, add_months
from entitlements.errors import Conflict

S = ContractStatus

TRANSITIONS: dict[ContractStatus, frozenset[ContractStatus]] = {
    S.PENDING_PAYMENT: frozenset({S.ACTIVE, S.ABANDONED, S.CANCELLED}),
    S.ACTIVE: frozenset({S.ACTIVE, S.PAST_DUE, S.CANCELLED, S.EXPIRED, S.LAPSED, S.CHARGEBACK}),
    S.PAST_DUE: frozenset({S.ACTIVE, S.PAST_DUE, S.LAPSED, S.CANCELLED, S.CHARGEBACK}),
    S.LAPSED: frozenset(),  # an ended subscription is not revived: a new sale is a new contract
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.ABANDONED: frozenset(),
    S.CHARGEBACK: frozenset(),
}


def check_transition(current: ContractStatus, target: ContractStatus) -> None:
    if target not in TRANSITIONS[current]:
        raise Conflict(f"a {current.value} contract cannot become {target.value}", field="status")


def billing_interval_months(plan: Plan) -> int:
    """What one payment buys: the whole term upfront, else one month or one year."""
    return {Billing.UPFRONT: plan.term_months, Billing.MONTHLY: 1, Billing.ANNUAL: 12}[plan.billing]


def warranty_end(purchase_date: dt.date, warranty_months: int) -> dt.datetime:
    """When the manufacturer's warranty ends: its months from the purchase date."""
    return add_months(dt.datetime.combine(purchase_date, dt.time(), dt.UTC), warranty_months)


def coverage_start(
    plan: Plan, purchase_date: dt.date, warranty_months: int, sold_at: dt.datetime
) -> dt.datetime:
    """When cover can first begin: the sale, or the day the manufacturer's warranty ends."""
    if plan.coverage_start is CoverageStart.AFTER_MANUFACTURER_WARRANTY:
        return max(sold_at, warranty_end(purchase_date, warranty_months))
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


# A contract's endings, the one that wins first: a cancellation over a lapse over an expiry.
ENDINGS = (S.CANCELLED, S.CHARGEBACK, S.LAPSED, S.EXPIRED, S.ABANDONED)
# The endings of a contract that was paid for (an abandoned one never was): no cover past them,
# what it kept is earned, and a payment after them buys nothing.
AFTER_COVER = frozenset({S.CANCELLED, S.CHARGEBACK, S.LAPSED, S.EXPIRED})
PAYMENT = "payment"


class LifecycleEvent(msgspec.Struct, frozen=True):
    """A fact applied to a contract: a payment, a failed payment (`past_due`) or an ending. A
    payment and a failed payment of one invoice share its reference: the payment clears the
    failure. A fact is known by its reference and kind together."""

    reference: str
    kind: str  # PAYMENT or a ContractStatus value
    applied_at: dt.datetime

    @classmethod
    def payment(cls, reference: str, paid_at: dt.datetime) -> LifecycleEvent:
        return cls(reference, PAYMENT, paid_at)


class Settlement(msgspec.Struct, frozen=True):
    status: ContractStatus
    grace_until: dt.datetime | None = None
    ended_at: dt.datetime | None = None


def ending_rank(kind: str, applied_at: dt.datetime, reference: str) -> tuple[int, dt.datetime, str]:
    """Which of a contract's endings wins, the lowest first: by `ENDINGS`, then the earliest."""
    return ENDINGS.index(S(kind)), applied_at, reference


def settle(events: Iterable[LifecycleEvent], grace_days: int) -> Settlement:
    """What every lifecycle event applied so far adds up to, in whatever order they came: an
    ending wins (by `ENDINGS`, then the earliest); else a failed payment not paid since makes
    the contract past due, with grace from the first such failure; else a payment makes it
    active; else it is still pending payment."""
    events = list(events)
    endings = [e for e in events if e.kind in ENDINGS]
    if endings:
        first = min(endings, key=lambda e: ending_rank(e.kind, e.applied_at, e.reference))
        return Settlement(S(first.kind), ended_at=first.applied_at)
    paid = {e.reference for e in events if e.kind == PAYMENT}
    unpaid = [e.applied_at for e in events if e.kind == S.PAST_DUE and e.reference not in paid]
    if unpaid:
        return Settlement(S.PAST_DUE, grace_until=min(unpaid) + dt.timedelta(days=grace_days))
    return Settlement(S.ACTIVE if paid else S.PENDING_PAYMENT)
