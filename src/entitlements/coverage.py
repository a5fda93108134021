"""The entitlement decision: is this product covered at this instant, for this incident?

A pure function of the contract's facts. Coverage comes from paid coverage periods
`[start, end)`, never from a status flag, so "was it covered on the incident date?" is answered
from the same facts as "is it covered now?".
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from enum import StrEnum

import msgspec

from entitlements.catalog import (
    BenefitKind,
    ClaimWindow,
    CoverageKind,
    CoverageStart,
    Plan,
    SupportChannel,
    SupportLevel,
)
from entitlements.money import Money
from entitlements.zones import UTC, day_start, local_day


class ContractStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    LAPSED = "lapsed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    ABANDONED = "abandoned"
    CHARGEBACK = "chargeback"  # a payment was disputed and the dispute lost: cover ended then


class Reason(StrEnum):
    """Why a product is not covered."""

    NO_CONTRACT = "no_contract"
    PENDING_PAYMENT = "pending_payment"
    ABANDONED = "abandoned"
    NOT_YET_STARTED = "not_yet_started"
    WAITING_PERIOD = "waiting_period"
    PAST_DUE_GRACE = "past_due_grace"
    LAPSED = "lapsed"
    CANCELLED = "cancelled"
    CHARGEBACK = "chargeback"
    EXPIRED = "expired"
    COVERAGE_NOT_INCLUDED = "coverage_not_included"
    MANUFACTURER_WARRANTY = "manufacturer_warranty"  # this coverage begins when the warranty ends
    LIMIT_REACHED = "limit_reached"


class PaidBy(StrEnum):
    """Who pays for a repair of one kind on a given day."""

    MANUFACTURER = "manufacturer"  # under the manufacturer's warranty
    PLAN = "plan"
    NONE = "none"


# What a manufacturer's warranty repairs: defects, not accidents, theft or liquid.
# No product we cover was bought, and no incident we hear of happened, before this day.
EARLIEST_DAY = dt.date(1990, 1, 1)
WARRANTY_KINDS = frozenset({CoverageKind.MECHANICAL_BREAKDOWN, CoverageKind.BATTERY})


class Period(msgspec.Struct, frozen=True, array_like=True):
    start: dt.datetime
    end: dt.datetime

    def contains(self, at: dt.datetime) -> bool:
        return self.start <= at < self.end


class ClaimUse(msgspec.Struct, frozen=True, array_like=True):
    """An approved (not voided) claim, as far as limits care."""

    incident_kind: CoverageKind
    incident_at: dt.datetime
    covered_amount: int


class BenefitUse(msgspec.Struct, frozen=True, array_like=True):
    """A redemption of an included service (not voided), as far as its count cares."""

    kind: BenefitKind
    at: dt.datetime


class BenefitLeft(msgspec.Struct, frozen=True):
    """An included service of the plan, and how many of it could be redeemed at the instant."""

    kind: BenefitKind
    count: int  # the plan's allowance in each window
    window: ClaimWindow
    remaining: int  # 0 outside the contract's cover
    fee: Money | None  # what the customer pays for each; None: nothing
    visit: bool  # delivered on site, through a service order


class ContractFacts(msgspec.Struct, frozen=True):
    contract_id: str
    status: ContractStatus
    plan: Plan
    currency: str
    product_price: Money
    sold_at: dt.datetime
    periods: tuple[Period, ...] = ()
    claims: tuple[ClaimUse, ...] = ()
    waiting_until: dt.datetime | None = None
    grace_until: dt.datetime | None = None
    time_zone: str = UTC  # the customer's: an incident known by its date happened on their day
    warranty_until: dt.datetime | None = None  # the manufacturer's warranty (parts) ends
    redemptions: tuple[BenefitUse, ...] = ()


class Decision(msgspec.Struct, frozen=True):
    covered: bool
    reason: Reason | None
    contract_id: str | None
    status: ContractStatus | None
    at: dt.datetime
    incident: CoverageKind | None = None
    coverages: tuple[CoverageKind, ...] = ()
    deductible: Money | None = None
    remaining_claims: int | None = None  # None: the plan sets no count
    remaining_aggregate: Money | None = None  # None: the plan sets no aggregate cap
    period_end: dt.datetime | None = None  # end of the continuous coverage around `at`
    waiting_until: dt.datetime | None = None
    grace_until: dt.datetime | None = None
    warranty_until: dt.datetime | None = None  # with `manufacturer_warranty`: when this cover begins
    claim_max: Money | None = None  # the most the incident's coverage pays for one claim
    benefits: tuple[BenefitLeft, ...] = ()  # the plan's included services, with what is left
    # The support the plan grants, while the contract is in a coverage period.
    support_level: SupportLevel | None = None
    support_channels: tuple[SupportChannel, ...] = ()


_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def add_months(at: dt.datetime, months: int) -> dt.datetime:
    """Calendar months, clamping the day (Jan 31 + 1 month = Feb 28/29)."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    if at.day <= 28:  # every month has the day: the common case, on every check
        return at.replace(year=year, month=month)
    last = 29 if month == 2 and calendar.isleap(year) else _DAYS_IN_MONTH[month - 1]
    return at.replace(year=year, month=month, day=min(at.day, last))


def incident_instant(day: dt.date, time_zone: str = UTC) -> dt.datetime:
    """Where an incident known only by its date sits in time: the start of that day where the
    customer lives."""
    return day_start(day, time_zone)


def _continuous_end(periods: Sequence[Period], at: dt.datetime) -> dt.datetime | None:
    ordered = sorted(periods, key=lambda p: p.start)
    end: dt.datetime | None = None
    for period in ordered:
        if end is None:
            if period.contains(at):
                end = period.end
        elif period.start <= end:
            end = max(end, period.end)
    return end


def term_cycle(first: dt.datetime, term_months: int, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The term-long cycle, counted from `first`, that holds `at` (the first one before it)."""
    months = (at.year - first.year) * 12 + at.month - first.month
    cycles = max(months // term_months, 0)
    start = add_months(first, cycles * term_months)
    if cycles and start > at:  # earlier in its month than `first`
        cycles -= 1
        start = add_months(first, cycles * term_months)
    return start, add_months(first, (cycles + 1) * term_months)


def uses_left(
    facts: ContractFacts, limit: int, window: ClaimWindow, uses: Sequence[dt.datetime], at: dt.datetime
) -> int:
    """How many more uses (claims, or redemptions of a service) a limit of `limit` per window
    allows at `at`, given the instants of those counted so far.

    A term window counts every use in the term cycle around `at`. A rolling window must stay
    within the limit for every 12-month span that would contain the new use, so the fullest such
    span decides.
    """
    if not facts.periods:
        return limit
    if not uses:  # nothing counted yet, in any window: most contracts, on every check
        return max(limit, 0)
    if window is ClaimWindow.TERM:
        start, end = term_cycle(min(p.start for p in facts.periods), facts.plan.term_months, at)
        # Claims are dated by day: a claim on the day cover began belongs to that term.
        start = incident_instant(local_day(start, facts.time_zone), facts.time_zone)
        used = sum(1 for u in uses if start <= u < end)
    else:
        ends = [at] + [u for u in uses if at < u < add_months(at, 12)]
        used = max(sum(1 for u in uses if add_months(end, -12) < u <= end) for end in ends)
    return max(limit - used, 0)


def claims_headroom(facts: ContractFacts, at: dt.datetime) -> int | None:
    """How many more claims could be approved for an incident at `at` (None: no count limit)."""
    limit = facts.plan.claim_limits.count
    if limit is None:
        return None
    return uses_left(facts, limit, facts.plan.claim_limits.window, [c.incident_at for c in facts.claims], at)


def benefits_left(facts: ContractFacts, at: dt.datetime) -> tuple[BenefitLeft, ...]:
    """Each service the plan includes, and how many could be redeemed at `at`: while the contract
    is in a coverage period (its waiting period aside: that guards against damage done before
    the sale, which an installation or a lesson does not repair), within the benefit's count."""
    if not facts.plan.benefits:
        return ()
    in_cover = any(p.contains(at) for p in facts.periods)
    found = []
    for benefit in facts.plan.benefits:
        remaining = 0
        if in_cover:
            uses = [r.at for r in facts.redemptions if r.kind == benefit.kind]
            remaining = uses_left(facts, benefit.count, benefit.window, uses, at)
        fee = benefit.fee(facts.currency)
        found.append(
            BenefitLeft(
                benefit.kind,
                benefit.count,
                benefit.window,
                remaining,
                fee if fee.amount else None,
                benefit.visit,
            )
        )
    return tuple(found)


def aggregate_headroom(facts: ContractFacts) -> Money | None:
    if not facts.plan.claim_limits.aggregate_up_to_product_price:
        return None
    used = sum(c.covered_amount for c in facts.claims)
    return Money(max(facts.product_price.amount - used, 0), facts.product_price.currency)


def no_contract(at: dt.datetime, incident: CoverageKind | None = None) -> Decision:
    return Decision(False, Reason.NO_CONTRACT, None, None, at, incident)


def decide_entitlement(
    facts: ContractFacts, at: dt.datetime, incident: CoverageKind | None = None
) -> Decision:
    plan = facts.plan
    kinds = tuple(c.kind for c in plan.coverages)
    in_period = any(p.contains(at) for p in facts.periods)
    remaining_claims = claims_headroom(facts, at)
    remaining_aggregate = aggregate_headroom(facts)
    coverage = plan.coverage(incident) if incident else None

    def answer(reason: Reason | None) -> Decision:
        warranty = facts.warranty_until if reason is Reason.MANUFACTURER_WARRANTY else None
        return Decision(
            covered=reason is None,
            reason=reason,
            contract_id=facts.contract_id,
            status=facts.status,
            at=at,
            incident=incident,
            coverages=kinds,
            deductible=coverage.deductible(facts.currency) if coverage else None,
            claim_max=coverage.most_per_claim(facts.currency) if coverage else None,
            remaining_claims=remaining_claims,
            remaining_aggregate=remaining_aggregate,
            period_end=_continuous_end(facts.periods, at) if in_period else None,
            waiting_until=facts.waiting_until,
            grace_until=facts.grace_until,
            warranty_until=warranty,
            benefits=benefits,
            support_level=support.level if support and in_period else None,
            support_channels=tuple(support.channels) if support and in_period else (),
        )

    benefits, support = benefits_left(facts, at), plan.support
    if not in_period:
        return answer(_why_not_in_period(facts, at))
    if facts.waiting_until is not None and at < facts.waiting_until:
        return answer(Reason.WAITING_PERIOD)
    if incident is not None and coverage is None:
        return answer(Reason.COVERAGE_NOT_INCLUDED)
    if coverage is not None and not coverage_begun(facts, coverage.starts, at):
        return answer(Reason.MANUFACTURER_WARRANTY)
    if remaining_claims == 0 or (remaining_aggregate is not None and remaining_aggregate.amount == 0):
        return answer(Reason.LIMIT_REACHED)
    return answer(None)


def why_not_in_cover(facts: ContractFacts, at: dt.datetime) -> Reason | None:
    """Why the contract is in no coverage period at `at`; None: it is in one."""
    if any(p.contains(at) for p in facts.periods):
        return None
    return _why_not_in_period(facts, at)


def coverage_begun(facts: ContractFacts, starts: CoverageStart | None, at: dt.datetime) -> bool:
    """Whether a coverage with its own start has begun at `at` (the plan's cover aside)."""
    if starts is not CoverageStart.AFTER_MANUFACTURER_WARRANTY or facts.warranty_until is None:
        return True
    return at >= facts.warranty_until


def payers(facts: ContractFacts, decision: Decision) -> tuple[tuple[CoverageKind, PaidBy], ...]:
    """Who pays, for each coverage of the plan, at the decision's instant: the manufacturer while
    its warranty covers a defect, else the plan when it covers that kind, else no one. From the
    contract's decision (for any incident, or none) without deciding again per kind: what sets
    kinds apart comes after every check of the contract itself but its limits."""
    at = decision.at
    under_warranty = facts.warranty_until is not None and at < facts.warranty_until
    limits_left = decision.remaining_claims != 0 and (
        decision.remaining_aggregate is None or decision.remaining_aggregate.amount > 0
    )
    contract_covers = decision.covered or (
        decision.reason in (Reason.COVERAGE_NOT_INCLUDED, Reason.MANUFACTURER_WARRANTY) and limits_left
    )
    found = []
    for coverage in facts.plan.coverages:
        if under_warranty and coverage.kind in WARRANTY_KINDS:
            payer = PaidBy.MANUFACTURER
        elif contract_covers and coverage_begun(facts, coverage.starts, at):
            payer = PaidBy.PLAN
        else:
            payer = PaidBy.NONE
        found.append((coverage.kind, payer))
    return tuple(found)


def decide_for_incident_day(facts: ContractFacts, day: dt.date, incident: CoverageKind | None) -> Decision:
    """A date-only incident is covered if the product was covered at any moment of that day in
    the customer's time zone: the day's start, or the moment cover (or the end of the waiting
    period) began within it."""
    start = incident_instant(day, facts.time_zone)
    end = incident_instant(day + dt.timedelta(days=1), facts.time_zone)  # 23 or 25 hours at DST
    moments = sorted(
        {start}
        | {p.start for p in facts.periods if start < p.start < end}
        | {m for m in (facts.waiting_until, facts.warranty_until) if m is not None and start < m < end}
    )
    decisions = [decide_entitlement(facts, moment, incident) for moment in moments]
    return next((d for d in decisions if d.covered), decisions[-1])


def _why_not_in_period(facts: ContractFacts, at: dt.datetime) -> Reason:
    status = facts.status
    if not facts.periods:
        if status is ContractStatus.ABANDONED:
            return Reason.ABANDONED
        if status is ContractStatus.PENDING_PAYMENT:
            return Reason.PENDING_PAYMENT
        if status is ContractStatus.CANCELLED:
            return Reason.CANCELLED
        if status is ContractStatus.CHARGEBACK:
            return Reason.CHARGEBACK
        return Reason.NOT_YET_STARTED
    if at < min(p.start for p in facts.periods):
        return Reason.NOT_YET_STARTED
    if status is ContractStatus.PAST_DUE and (facts.grace_until is None or at < facts.grace_until):
        return Reason.PAST_DUE_GRACE
    if status is ContractStatus.CANCELLED:
        return Reason.CANCELLED
    if status is ContractStatus.CHARGEBACK:
        return Reason.CHARGEBACK
    if status in (ContractStatus.LAPSED, ContractStatus.PAST_DUE):
        return Reason.LAPSED
    if at < max(p.end for p in facts.periods):
        return Reason.LAPSED  # a gap between paid periods
    return Reason.EXPIRED


# A precedence for picking the one answer for a product with several contracts.
_PREFERENCE = {reason: rank for rank, reason in enumerate(Reason)}


def best_decision(decisions: Sequence[Decision]) -> Decision:
    """A covered contract wins; otherwise the most telling reason (a later one in `Reason`)."""
    covered = [d for d in decisions if d.covered]
    if covered:
        return max(covered, key=lambda d: d.period_end or d.at)
    return max(decisions, key=lambda d: _PREFERENCE[d.reason] if d.reason else -1)
