"""A claim's payout and the contract it applies to: pure rules, property-tested."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entitlements.claims.rules import Candidate, claim_payout, contract_for_incident
from entitlements.coverage import Decision, Reason
from entitlements.money import Money

AT = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
amounts = st.integers(0, 10**9)


def decision(covered: bool, deductible: int | None, remaining: int | None) -> Decision:
    return Decision(
        covered=covered,
        reason=None if covered else Reason.NO_CONTRACT,
        contract_id="ctr",
        status=None,
        at=AT,
        deductible=None if deductible is None else Money(deductible, "USD"),
        remaining_aggregate=None if remaining is None else Money(remaining, "USD"),
    )


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
