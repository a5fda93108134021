"""Included services' pure rules, property-tested: what is left per term and per rolling 12
months, nothing outside the contract's cover, and why a redemption is refused."""

from __future__ import annotations

import datetime as dt

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from entitlements.benefits.rules import Unredeemable, redemption_refusal
from entitlements.catalog import Benefit, BenefitKind, ClaimWindow
from entitlements.coverage import (
    BenefitUse,
    ContractFacts,
    ContractStatus,
    Period,
    Reason,
    add_months,
    benefits_left,
    term_cycle,
)
from entitlements.money import Money
from tests.entitlements.test_coverage import EPOCH, instants, plan

KIND = BenefitKind.TECH_SUPPORT_SESSION
COVER = Period(EPOCH - dt.timedelta(days=999), EPOCH + dt.timedelta(days=2000))


def facts(
    count: int,
    window: ClaimWindow,
    uses: list[dt.datetime],
    periods: tuple[Period, ...] = (COVER,),
    *,
    term: int = 12,
    status: ContractStatus = ContractStatus.ACTIVE,
    fee: int = 0,
) -> ContractFacts:
    benefit = Benefit(KIND, count, window, fees={"USD": fee} if fee else {})
    return ContractFacts(
        "ctr_1",
        status,
        msgspec.structs.replace(plan(None, ClaimWindow.TERM, term=term), benefits=[benefit]),
        "USD",
        Money(1, "USD"),
        EPOCH,
        periods,
        redemptions=tuple(BenefitUse(KIND, t) for t in uses),
    )


def left(contract: ContractFacts, at: dt.datetime) -> int:
    [found] = benefits_left(contract, at)
    return found.remaining


@given(st.integers(1, 4), st.sampled_from([1, 12, 24]), st.lists(instants, max_size=8), instants)
def test_a_term_window_counts_the_uses_of_the_term_around_the_instant(
    count: int, term: int, uses: list[dt.datetime], at: dt.datetime
) -> None:
    contract = facts(count, ClaimWindow.TERM, uses, term=term)
    start, end = term_cycle(COVER.start, term, at)
    start = start.replace(hour=0)  # counted from the day cover began (UTC here)
    assert left(contract, at) == max(count - sum(1 for u in uses if start <= u < end), 0)


@given(st.integers(1, 4), st.lists(instants, max_size=8), instants)
def test_a_rolling_window_allows_exactly_what_keeps_every_twelve_months_within_the_count(
    count: int, uses: list[dt.datetime], at: dt.datetime
) -> None:
    remaining = left(facts(count, ClaimWindow.ROLLING_12_MONTHS, uses), at)

    def fullest(times: list[dt.datetime]) -> int:  # the most uses any 12 months containing `at` hold
        ends = [t for t in times if at <= t < add_months(at, 12)]
        return max(sum(1 for t in times if add_months(e, -12) < t <= e) for e in ends)

    if remaining > 0:  # `remaining` more at `at` keep every span holding it within the count
        assert fullest(uses + [at] * remaining) <= count
    assert fullest(uses + [at] * (remaining + 1)) > count  # one more would not


@given(st.integers(1, 4), st.sampled_from(list(ClaimWindow)), st.lists(instants, max_size=4), instants)
def test_nothing_is_left_outside_the_contracts_cover(
    count: int, window: ClaimWindow, uses: list[dt.datetime], at: dt.datetime
) -> None:
    periods = (Period(EPOCH, EPOCH + dt.timedelta(days=365)),)
    contract = facts(count, window, uses, periods)
    if not periods[0].contains(at):
        assert left(contract, at) == 0
        assert isinstance(redemption_refusal(contract, KIND, at), Reason)


def test_a_redemption_is_refused_for_a_service_not_included_none_left_or_no_cover() -> None:
    at = EPOCH + dt.timedelta(days=10)
    assert redemption_refusal(facts(1, ClaimWindow.TERM, []), BenefitKind.INSTALLATION, at) is (
        Unredeemable.NOT_INCLUDED
    )
    assert redemption_refusal(facts(1, ClaimWindow.TERM, [at]), KIND, at) is Unredeemable.USED_UP
    assert redemption_refusal(facts(2, ClaimWindow.TERM, [at]), KIND, at) is None
    unpaid = facts(1, ClaimWindow.TERM, [], (), status=ContractStatus.PENDING_PAYMENT)
    assert redemption_refusal(unpaid, KIND, at) is Reason.PENDING_PAYMENT


def test_the_fee_is_in_the_contracts_currency_and_none_when_nothing_is_charged() -> None:
    at = EPOCH + dt.timedelta(days=10)
    [charged] = benefits_left(facts(1, ClaimWindow.TERM, [], fee=1500), at)
    [free] = benefits_left(facts(1, ClaimWindow.TERM, []), at)
    assert (charged.fee, free.fee) == (Money(1500, "USD"), None)
