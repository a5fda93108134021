"""Properties of the entitlement decision."""

import calendar
import datetime as dt

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from entitlements.catalog import (
    Billing,
    ClaimLimits,
    ClaimWindow,
    Coverage,
    CoverageKind,
    CoverageStart,
    Eligibility,
    Plan,
    PlanText,
    PriceBand,
    ProductCategory,
)
from entitlements.contracts.rules import coverage_start, next_period
from entitlements.coverage import (
    ClaimUse,
    ContractFacts,
    ContractStatus,
    PaidBy,
    Period,
    Reason,
    add_months,
    claims_headroom,
    decide_entitlement,
    decide_for_incident_day,
    payers,
    term_cycle,
)
from entitlements.money import Money

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
kinds = st.sampled_from(list(CoverageKind))
instants = st.integers(-400, 1500).map(lambda d: EPOCH + dt.timedelta(days=d, hours=7))
statuses = st.sampled_from(list(ContractStatus))


def plan(count: int | None, window: ClaimWindow, aggregate: bool = False, term: int = 12) -> Plan:
    return Plan(
        code="p",
        version=1,
        texts={"en": PlanText("P", "s", "t")},
        coverages=[Coverage(CoverageKind.SCREEN, {"USD": 1000}), Coverage(CoverageKind.MECHANICAL_BREAKDOWN)],
        term_months=term,
        billing=Billing.UPFRONT,
        eligibility=Eligibility([ProductCategory.PHONE]),
        prices=[PriceBand("USD", 0, 100)],
        claim_limits=ClaimLimits(count, window, aggregate),
    )


@st.composite
def contracts(draw: st.DrawFn) -> ContractFacts:
    start = draw(instants)
    periods = []
    cursor = start
    for _ in range(draw(st.integers(0, 4))):
        cursor += dt.timedelta(days=draw(st.integers(0, 40)))
        length = dt.timedelta(days=draw(st.integers(1, 400)))
        periods.append(Period(cursor, cursor + length))
        cursor += length
    limits = draw(st.sampled_from([None, 1, 2, 3]))
    window = draw(st.sampled_from(list(ClaimWindow)))
    claims = tuple(
        ClaimUse(draw(kinds), draw(instants), draw(st.integers(1, 50_000)))
        for _ in range(draw(st.integers(0, 5)))
    )
    waiting = draw(st.one_of(st.none(), st.integers(0, 60).map(lambda d: start + dt.timedelta(days=d))))
    return ContractFacts(
        contract_id="ctr_1",
        status=draw(statuses),
        plan=plan(limits, window, draw(st.booleans()), draw(st.sampled_from([1, 12, 24]))),
        currency="USD",
        product_price=Money(draw(st.integers(1, 200_000)), "USD"),
        sold_at=start,
        periods=tuple(periods),
        claims=claims,
        waiting_until=waiting,
        grace_until=start + dt.timedelta(days=draw(st.integers(0, 900))),
    )


@given(contracts(), instants, st.one_of(st.none(), kinds))
def test_never_covered_outside_every_period(
    facts: ContractFacts, at: dt.datetime, incident: CoverageKind | None
) -> None:
    decision = decide_entitlement(facts, at, incident)
    if decision.covered:
        assert any(p.start <= at < p.end for p in facts.periods)
        assert decision.reason is None
        assert decision.period_end is not None and decision.period_end > at
    else:
        assert decision.reason is not None


@given(contracts(), instants)
def test_remaining_is_never_negative(facts: ContractFacts, at: dt.datetime) -> None:
    decision = decide_entitlement(facts, at)
    assert decision.remaining_claims is None or decision.remaining_claims >= 0
    assert decision.remaining_aggregate is None or decision.remaining_aggregate.amount >= 0


@given(contracts(), instants, instants, kinds, st.integers(1, 50_000))
def test_an_approved_claim_never_increases_what_remains(
    facts: ContractFacts, at: dt.datetime, incident_at: dt.datetime, kind: CoverageKind, amount: int
) -> None:
    before = decide_entitlement(facts, at)
    after = decide_entitlement(
        ContractFacts(
            **{
                **{f: getattr(facts, f) for f in facts.__struct_fields__},
                "claims": (*facts.claims, ClaimUse(kind, incident_at, amount)),
            }
        ),
        at,
    )
    if before.remaining_claims is not None:
        assert after.remaining_claims is not None
        assert after.remaining_claims <= before.remaining_claims
    if before.remaining_aggregate is not None:
        assert after.remaining_aggregate is not None
        assert after.remaining_aggregate.amount <= before.remaining_aggregate.amount


@given(contracts(), st.integers(1, 24 * 90))
def test_the_waiting_period_is_honoured(facts: ContractFacts, hours_before: int) -> None:
    if facts.waiting_until is None:
        return
    at = facts.waiting_until - dt.timedelta(hours=hours_before)
    decision = decide_entitlement(facts, at)
    assert not decision.covered
    if any(p.contains(at) for p in facts.periods):
        assert decision.reason is Reason.WAITING_PERIOD


@given(
    st.dates(dt.date(2024, 1, 1), dt.date(2027, 1, 1)),
    st.integers(0, 36),
    st.integers(0, 400),
)
def test_after_warranty_plans_cover_nothing_before_the_warranty_ends(
    purchase: dt.date, warranty: int, sold_after: int
) -> None:
    p = Plan(
        **{
            **{f: getattr(plan(None, ClaimWindow.TERM), f) for f in Plan.__struct_fields__},
            "coverage_start": CoverageStart.AFTER_MANUFACTURER_WARRANTY,
        }
    )
    sold_at = dt.datetime.combine(purchase, dt.time(9), dt.UTC) + dt.timedelta(days=sold_after)
    warranty_end = add_months(dt.datetime.combine(purchase, dt.time(), dt.UTC), warranty)
    period = next_period(p, [], coverage_start(p, purchase, warranty, sold_at), sold_at)
    assert period.start >= warranty_end
    facts = ContractFacts("c", ContractStatus.ACTIVE, p, "USD", Money(1, "USD"), sold_at, (period,))
    day_before = warranty_end - dt.timedelta(seconds=1)
    assert not decide_entitlement(facts, day_before).covered


@given(contracts(), st.dates(dt.date(2025, 1, 1), dt.date(2030, 1, 1)), kinds)
def test_a_covered_incident_day_is_covered_at_some_moment_of_it(
    facts: ContractFacts, day: dt.date, kind: CoverageKind
) -> None:
    decision = decide_for_incident_day(facts, day, kind)
    if decision.covered:
        assert decision.at.date() == day


@given(st.integers(1, 3), st.lists(instants, max_size=6), instants)
def test_rolling_headroom_keeps_every_twelve_month_span_within_the_limit(
    limit: int, claim_times: list[dt.datetime], at: dt.datetime
) -> None:
    facts = ContractFacts(
        "c",
        ContractStatus.ACTIVE,
        plan(limit, ClaimWindow.ROLLING_12_MONTHS),
        "USD",
        Money(1, "USD"),
        EPOCH,
        (Period(EPOCH - dt.timedelta(days=999), EPOCH + dt.timedelta(days=2000)),),
        tuple(ClaimUse(CoverageKind.SCREEN, t, 1) for t in claim_times),
    )
    headroom = claims_headroom(facts, at)
    assert headroom is not None
    if headroom > 0:  # approving one more at `at` keeps every span within the limit
        times = sorted([*claim_times, at])
        for end in times:
            assert sum(1 for t in times if add_months(end, -12) < t <= end) <= max(limit, _worst(claim_times))


def _worst(times: list[dt.datetime]) -> int:
    return max((sum(1 for t in times if add_months(e, -12) < t <= e) for e in times), default=0)


@given(
    st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)),
    st.integers(-240, 240),
)
def test_adding_months_keeps_the_day_when_the_month_has_it_and_else_takes_its_last(
    at: dt.datetime, months: int
) -> None:
    moved = add_months(at, months)
    assert (moved.year * 12 + moved.month) - (at.year * 12 + at.month) == months
    assert moved.day == min(at.day, calendar.monthrange(moved.year, moved.month)[1])
    assert (moved.time(), moved.tzinfo) == (at.time(), at.tzinfo)


def _stepped_cycle(first: dt.datetime, term: int, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The cycle found by stepping one term at a time from the first."""
    cycles = 0
    while add_months(first, (cycles + 1) * term) <= at:
        cycles += 1
    return add_months(first, cycles * term), add_months(first, (cycles + 1) * term)


@given(
    st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)),
    st.sampled_from([1, 3, 12, 24, 36]),
    st.datetimes(dt.datetime(2019, 1, 1), dt.datetime(2040, 1, 1), timezones=st.just(dt.UTC)),
)
def test_the_term_cycle_is_the_one_found_by_stepping_through_the_terms(
    first: dt.datetime, term: int, at: dt.datetime
) -> None:
    assert term_cycle(first, term, at) == _stepped_cycle(first, term, at)


# --- coverage per peril, and who pays ---------------------------------------------------------------


@st.composite
def per_peril(draw: st.DrawFn) -> ContractFacts:
    """A plan whose breakdown cover begins when the manufacturer's warranty ends, while its screen
    cover begins with the plan; a product whose warranty ends somewhere around the contract."""
    facts = draw(contracts())
    plan = msgspec.structs.replace(
        facts.plan,
        coverages=[
            Coverage(CoverageKind.SCREEN, {"USD": 1000}),
            Coverage(CoverageKind.MECHANICAL_BREAKDOWN, starts=CoverageStart.AFTER_MANUFACTURER_WARRANTY),
            Coverage(CoverageKind.ACCIDENTAL_DAMAGE),
        ],
    )
    warranty = draw(st.one_of(st.none(), instants))
    return msgspec.structs.replace(facts, plan=plan, warranty_until=warranty)


@given(per_peril(), instants)
def test_a_coverage_that_begins_after_the_warranty_is_the_plans_coverage_from_then_on(
    facts: ContractFacts, at: dt.datetime
) -> None:
    breakdown = decide_entitlement(facts, at, CoverageKind.MECHANICAL_BREAKDOWN)
    from_the_start = msgspec.structs.replace(
        facts,
        plan=msgspec.structs.replace(
            facts.plan,
            coverages=[
                Coverage(CoverageKind.SCREEN, {"USD": 1000}),
                Coverage(CoverageKind.MECHANICAL_BREAKDOWN),
            ],
        ),
    )
    same_plan_without_rule = decide_entitlement(from_the_start, at, CoverageKind.MECHANICAL_BREAKDOWN)
    if facts.warranty_until is not None and at < facts.warranty_until:
        assert not breakdown.covered
        assert breakdown.reason in (Reason.MANUFACTURER_WARRANTY, same_plan_without_rule.reason)
    else:
        assert (
            breakdown.covered == same_plan_without_rule.covered
            and breakdown.reason == same_plan_without_rule.reason
        )
    # Screens never wait for the warranty.
    assert decide_entitlement(facts, at, CoverageKind.SCREEN).reason is not Reason.MANUFACTURER_WARRANTY


@given(per_peril(), instants, st.one_of(st.none(), kinds))
def test_who_pays_agrees_with_deciding_each_coverage_on_its_own(
    facts: ContractFacts, at: dt.datetime, incident: CoverageKind | None
) -> None:
    """`payers` reads every coverage's payer off one decision; deciding each kind anew must agree."""
    found = dict(payers(facts, decide_entitlement(facts, at, incident)))
    assert list(found) == [c.kind for c in facts.plan.coverages]
    for kind, payer in found.items():
        in_warranty = facts.warranty_until is not None and at < facts.warranty_until
        if in_warranty and kind in (CoverageKind.MECHANICAL_BREAKDOWN, CoverageKind.BATTERY):
            assert payer is PaidBy.MANUFACTURER
        else:
            assert (payer is PaidBy.PLAN) == decide_entitlement(facts, at, kind).covered, (kind, payer)
