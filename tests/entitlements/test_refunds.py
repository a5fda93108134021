import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from entitlements.catalog import (
    Billing,
    Cancellation,
    Coverage,
    CoverageKind,
    Eligibility,
    Plan,
    PlanText,
    PriceBand,
    ProductCategory,
)
from entitlements.coverage import Period
from entitlements.money import Money
from entitlements.refunds import RefundBasis, refund_quote

SOLD = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
YEAR = Period(SOLD, dt.datetime(2027, 1, 1, tzinfo=dt.UTC))


def plan(fee: int = 0, pro_rata: bool = True, free_look: int = 30, currency: str = "VND") -> Plan:
    return Plan(
        code="p",
        version=1,
        texts={"en": PlanText("P", "s", "t")},
        coverages=[Coverage(CoverageKind.SCREEN)],
        term_months=12,
        billing=Billing.UPFRONT,
        eligibility=Eligibility([ProductCategory.PHONE]),
        prices=[PriceBand(currency, 0, 100)],
        cancellation=Cancellation(free_look, pro_rata, {currency: fee}),
    )


def quote(
    p: Plan, paid: int, at: dt.datetime, claim: bool = False, currency: str = "VND"
) -> tuple[int, RefundBasis]:
    q = refund_quote(
        p,
        paid_total=Money(paid, currency),
        current_payment=Money(paid, currency),
        current_period=YEAR,
        sold_at=SOLD,
        any_approved_claim=claim,
        at=at,
    )
    return q.amount.amount, q.basis


def test_free_look_refunds_everything_unless_a_claim_was_approved() -> None:
    assert quote(plan(fee=50_000), 1_500_000, SOLD + dt.timedelta(days=10)) == (
        1_500_000,
        RefundBasis.FREE_LOOK,
    )
    amount, basis = quote(plan(fee=50_000), 1_500_000, SOLD + dt.timedelta(days=10), claim=True)
    assert basis is RefundBasis.PRO_RATA
    assert amount < 1_500_000


def test_pro_rata_by_unused_days_less_the_fee_in_whole_dong() -> None:
    half = SOLD + (YEAR.end - YEAR.start) / 2
    assert quote(plan(fee=50_000), 1_500_000, half) == (750_000 - 50_000, RefundBasis.PRO_RATA)
    assert quote(plan(fee=2_000_000), 1_500_000, half) == (0, RefundBasis.NONE)  # never negative
    assert quote(plan(pro_rata=False), 1_500_000, half) == (0, RefundBasis.NONE)
    assert quote(plan(), 1_500_000, YEAR.end) == (0, RefundBasis.NONE)


@given(st.integers(0, 10**9), st.integers(31, 400), st.integers(0, 10**6), st.booleans())
def test_a_quote_is_never_negative_nor_more_than_was_paid(paid: int, day: int, fee: int, claim: bool) -> None:
    amount, _ = quote(plan(fee=fee), paid, SOLD + dt.timedelta(days=day), claim)
    assert 0 <= amount <= paid


@given(st.integers(1, 10**9), st.integers(31, 364), st.integers(1, 60))
def test_later_cancellations_never_get_more(paid: int, day: int, later: int) -> None:
    earlier, _ = quote(plan(), paid, SOLD + dt.timedelta(days=day))
    after, _ = quote(plan(), paid, SOLD + dt.timedelta(days=day + later))
    assert after <= earlier


@given(st.integers(1, 10**9), st.integers(0, 10**9), st.integers(31, 364), st.integers(0, 10**6))
def test_a_quote_never_pays_back_more_than_is_left_after_earlier_refunds(
    payment: int, refunded: int, day: int, fee: int
) -> None:
    """A partial refund made before (a goodwill credit, a dispute won back) leaves less to give."""
    left = max(payment - refunded, 0)
    q = refund_quote(
        plan(fee=fee),
        paid_total=Money(left, "VND"),
        current_payment=Money(payment, "VND"),
        current_period=YEAR,
        sold_at=SOLD,
        any_approved_claim=False,
        at=SOLD + dt.timedelta(days=day),
    )
    assert 0 <= q.amount.amount <= left
    if left == 0:
        assert q.basis is RefundBasis.NONE
