"""A claim's payout, the contract it applies to, what goes to review and the moves of review:
pure rules, property-tested."""

import datetime as dt

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from entitlements.catalog import ClaimReview, CoverageKind
from entitlements.claims.rules import (
    Candidate,
    ClaimStatus,
    FraudFlag,
    ReviewAction,
    ReviewReason,
    claim_payout,
    contract_for_incident,
    filed_in_time,
    fraud_flags,
    next_status,
    review_reasons,
)
from entitlements.coverage import ClaimUse, Decision, Reason
from entitlements.money import Money

AT = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
amounts = st.integers(0, 10**9)


def decision(
    covered: bool, deductible: int | None, remaining: int | None, most: int | None = None
) -> Decision:
    return Decision(
        covered=covered,
        reason=None if covered else Reason.NO_CONTRACT,
        contract_id="ctr",
        status=None,
        at=AT,
        deductible=None if deductible is None else Money(deductible, "USD"),
        remaining_aggregate=None if remaining is None else Money(remaining, "USD"),
        claim_max=None if most is None else Money(most, "USD"),
    )


@given(
    claimed=amounts, deductible=st.none() | amounts, remaining=st.none() | amounts, most=st.none() | amounts
)
def test_a_payout_never_passes_the_coverages_cap_the_aggregate_left_or_the_claim_less_deductible(
    claimed: int, deductible: int | None, remaining: int | None, most: int | None
) -> None:
    payout = claim_payout(claimed, decision(True, deductible, remaining, most))
    caps = [max(claimed - (deductible or 0), 0)] + [c for c in (remaining, most) if c is not None]
    assert payout.covered_amount == min(caps)  # the least of every bound, and nothing less


@given(claimed=amounts, deductible=st.none() | amounts, remaining=st.none() | amounts)
def test_a_covered_claim_pays_the_claim_less_the_deductible_within_what_the_limit_has_left(
    claimed: int, deductible: int | None, remaining: int | None
) -> None:
    payout = claim_payout(claimed, decision(True, deductible, remaining))
    assert payout.deductible == (deductible or 0)
    assert 0 <= payout.covered_amount <= max(claimed - (deductible or 0), 0)
    if remaining is not None:
        assert payout.covered_amount <= remaining
    assert payout.covered_amount == min(
        max(claimed - (deductible or 0), 0), remaining if remaining is not None else claimed
    )


@given(claimed=amounts, deductible=st.none() | amounts, remaining=st.none() | amounts)
def test_a_claim_not_covered_pays_nothing(
    claimed: int, deductible: int | None, remaining: int | None
) -> None:
    assert claim_payout(claimed, decision(False, deductible, remaining)).covered_amount == 0


candidates = st.lists(
    st.builds(
        Candidate,
        contract_id=st.text("abc123", min_size=1, max_size=4),
        sold_at=st.datetimes(
            min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)
        ),
        covers_incident=st.booleans(),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda c: c.contract_id,
)


@given(candidates=candidates, order=st.randoms(use_true_random=False))
def test_a_claim_by_serial_goes_to_the_latest_contract_that_covers_it_whatever_the_order(
    candidates: list[Candidate], order: object
) -> None:
    chosen = contract_for_incident(candidates)
    shuffled = list(candidates)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    assert contract_for_incident(shuffled) == chosen
    pool = [c for c in candidates if c.covers_incident] or candidates
    latest = max(c.sold_at for c in pool)
    assert next(c for c in candidates if c.contract_id == chosen).sold_at == latest
    assert (any(c.covers_incident for c in candidates)) == next(
        c.covers_incident for c in candidates if c.contract_id == chosen
    )


def test_no_contract_to_choose_from_is_an_error() -> None:
    with pytest.raises(ValueError, match="no contract"):
        contract_for_incident([])


# --- review ---------------------------------------------------------------------------------------

KINDS = st.sampled_from(list(CoverageKind))
INSTANTS = st.datetimes(
    min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)
)
USES = st.lists(st.builds(ClaimUse, KINDS, INSTANTS, st.integers(0, 10**6)), max_size=6)


@given(KINDS, st.integers(1, 10**7), INSTANTS, INSTANTS, USES)
def test_a_plan_with_no_review_rules_sends_nothing_to_review(
    kind: CoverageKind, amount: int, incident: dt.datetime, sold: dt.datetime, approved: list[ClaimUse]
) -> None:
    assert (
        review_reasons(
            ClaimReview(),
            kind=kind,
            amount=Money(amount, "USD"),
            incident_at=incident,
            sold_at=sold,
            approved=approved,
        )
        == ()
    )


@given(st.integers(0, 10**6), st.integers(1, 10**6), st.sampled_from(["USD", "SEK"]))
def test_only_a_claim_above_the_threshold_in_its_currency_goes_to_review(
    threshold: int, amount: int, currency: str
) -> None:
    at = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    reasons = review_reasons(
        ClaimReview(amount_over={"USD": threshold}),
        kind=CoverageKind.SCREEN,
        amount=Money(amount, currency),
        incident_at=at,
        sold_at=at - dt.timedelta(days=400),
        approved=(),
    )
    assert (ReviewReason.AMOUNT in reasons) == (currency == "USD" and amount > threshold)


@given(KINDS, INSTANTS, USES, st.integers(1, 400))
def test_a_repeat_is_an_approved_claim_of_the_same_kind_within_the_window_before(
    kind: CoverageKind, incident: dt.datetime, approved: list[ClaimUse], days: int
) -> None:
    reasons = review_reasons(
        ClaimReview(repeat_within_days=days),
        kind=kind,
        amount=Money(1, "USD"),
        incident_at=incident,
        sold_at=incident - dt.timedelta(days=1000),
        approved=approved,
    )
    earlier = [
        u
        for u in approved
        if u.incident_kind is kind and dt.timedelta(0) <= incident - u.incident_at <= dt.timedelta(days=days)
    ]
    assert (ReviewReason.REPEAT in reasons) == bool(earlier)


@given(st.dates(), st.integers(-5, 400), st.one_of(st.none(), st.integers(1, 365)))
def test_the_filing_window_counts_days_from_the_incident(
    incident: dt.date, later: int, window: int | None
) -> None:
    assume(dt.date.min + dt.timedelta(days=5) <= incident <= dt.date.max - dt.timedelta(days=400))
    assert filed_in_time(incident, incident + dt.timedelta(days=later), window) == (
        window is None or later <= window
    )


@given(st.sampled_from(list(ClaimStatus)), st.lists(st.sampled_from(list(ReviewAction)), max_size=8))
def test_a_decided_claim_takes_no_review_action_and_review_ends_only_in_a_decision(
    start: ClaimStatus, actions: list[ReviewAction]
) -> None:
    status = start
    for action in actions:
        moved = next_status(status, action)
        if status not in (ClaimStatus.IN_REVIEW, ClaimStatus.INFO_REQUESTED):
            assert moved is None
        if moved is not None:
            assert moved in (
                ClaimStatus.IN_REVIEW,
                ClaimStatus.INFO_REQUESTED,
                ClaimStatus.APPROVED,
                ClaimStatus.DENIED,
            )
            status = moved


@given(st.integers(0, 50), st.one_of(st.none(), st.integers(1, 20)))
def test_a_frequent_claimant_is_flagged_only_past_the_plans_count(recent: int, limit: int | None) -> None:
    flagged = fraud_flags(ClaimReview(claims_in_30_days=limit), recent)
    assert (FraudFlag.FREQUENT_CLAIMS in flagged) == (limit is not None and recent > limit)


@given(st.text(alphabet="0123456789", min_size=1, max_size=20), st.booleans())
def test_an_imei_is_flagged_unless_it_is_fifteen_digits_with_a_right_check_digit(
    imei: str, elsewhere: bool
) -> None:
    flags = fraud_flags(ClaimReview(), 0, serial_elsewhere=elsewhere, device_imei=imei)
    real = (
        len(imei) == 15
        and sum(
            (d if i % 2 == 0 else (2 * d - 9 if 2 * d > 9 else 2 * d))
            for i, d in enumerate(int(c) for c in reversed(imei))
        )
        % 10
        == 0
    )
    assert (FraudFlag.IMEI_FAILS_LUHN in flags) is not real
    assert (FraudFlag.SERIAL_OF_ANOTHER_CUSTOMER in flags) is elsewhere
    assert FraudFlag.FREQUENT_CLAIMS not in flags  # the plan sets no count
