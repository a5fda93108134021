"""A contract's status is settled from every lifecycle fact applied, so the order in which
Stripe delivers them cannot change it."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from entitlements.contracts.rules import ENDINGS, PAYMENT, LifecycleEvent, Settlement, settle
from entitlements.coverage import ContractStatus as S

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(days: int) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


events = st.lists(
    st.builds(
        lambda kind, invoice, day: LifecycleEvent(
            f"inv_{invoice}" if kind in (S.PAST_DUE, PAYMENT) else f"{kind}_{invoice}",
            kind,
            at(day),
        ),
        st.sampled_from([PAYMENT, S.PAST_DUE.value, *(e.value for e in ENDINGS)]),
        st.integers(1, 4),
        st.integers(0, 400),
    ),
    max_size=12,
    unique_by=lambda e: (e.reference, e.kind),  # a fact is its reference and kind
)


@given(events, st.randoms(use_true_random=False), st.integers(0, 30))
def test_the_same_facts_in_any_order_settle_the_same(
    facts: list[LifecycleEvent], shuffler: object, grace_days: int
) -> None:
    shuffled = list(facts)
    shuffler.shuffle(shuffled)  # type: ignore[attr-defined]
    assert settle(shuffled, grace_days) == settle(facts, grace_days)


@given(events, st.integers(0, 30))
def test_an_ending_wins_and_ends_at_the_first_of_its_kind(facts: list[LifecycleEvent], grace: int) -> None:
    settled = settle(facts, grace)
    endings = [e for e in facts if e.kind in ENDINGS]
    if endings:
        winner = min(ENDINGS.index(S(e.kind)) for e in endings)
        assert settled.status is ENDINGS[winner]
        assert settled.ended_at == min(e.applied_at for e in endings if e.kind == ENDINGS[winner])
        assert settled.grace_until is None
    else:
        assert settled.status in (S.PENDING_PAYMENT, S.ACTIVE, S.PAST_DUE)
        assert settled.ended_at is None


def test_a_failed_payment_paid_since_is_not_past_due() -> None:
    failed = LifecycleEvent("inv_2", S.PAST_DUE, at(31))
    assert settle([LifecycleEvent("inv_1", PAYMENT, at(0)), failed], 14) == Settlement(
        S.PAST_DUE, grace_until=at(45)
    )
    assert settle([failed, LifecycleEvent("inv_2", PAYMENT, at(33))], 14) == Settlement(S.ACTIVE)


def test_grace_runs_from_the_first_failure_not_paid_since() -> None:
    facts = [
        LifecycleEvent("inv_3", S.PAST_DUE, at(62)),
        LifecycleEvent("inv_2", S.PAST_DUE, at(31)),
    ]
    assert settle(facts, 7) == Settlement(S.PAST_DUE, grace_until=at(38))


def test_nothing_applied_is_still_pending_payment() -> None:
    assert settle([], 14) == Settlement(S.PENDING_PAYMENT)
