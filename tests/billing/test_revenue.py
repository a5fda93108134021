import datetime as dt
import itertools

from hypothesis import given
from hypothesis import strategies as st

from billing.finance.rules import (
    Movement,
    Position,
    earned_by_month,
    loss_ratios,
    months_between,
    positions,
    recognized_by_contract,
)
from billing.ledger.rules import held_for_the_customer

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
YEAR = dt.timedelta(days=365)


def sale(
    amount: int,
    contract: str = "c1",
    currency: str = "VND",
    start: dt.datetime = T0,
    length: dt.timedelta = YEAR,
) -> Movement:
    return Movement(contract, amount, currency, start, start, start + length)


def test_a_sale_is_earned_straight_line_over_its_period() -> None:
    half = T0 + YEAR / 2
    assert positions([sale(1_500_000)], half) == [Position("VND", 1_500_000, 750_000, 750_000)]
    assert positions([sale(1_500_000)], T0 + YEAR) == [Position("VND", 1_500_000, 1_500_000, 0)]
    assert positions([sale(1_500_000)], T0 - dt.timedelta(days=1)) == []


def test_a_refund_releases_what_was_not_yet_earned() -> None:
    quarter = T0 + YEAR / 4
    refund = Movement("c1", -1_000_000, "VND", quarter)
    assert positions([sale(1_500_000), refund], quarter) == [Position("VND", 500_000, 500_000, 0)]
    full = Movement("c1", -1_500_000, "VND", quarter)
    assert positions([sale(1_500_000), full], T0 + YEAR) == [Position("VND", 0, 0, 0)]


def test_a_contract_that_ended_without_a_refund_earns_what_it_kept_when_it_ended() -> None:
    """Cancelled after its free look (nothing back), lapsed or charged back before a refund: no
    cover is owed past the end, so nothing stays deferred (it went on earning for the rest of the
    original period)."""
    quarter = T0 + YEAR / 4
    ended = Movement("c1", 0, "VND", quarter, ends_schedule=True)
    assert positions([sale(1_500_000), ended], quarter - dt.timedelta(days=1))[0].deferred > 0
    assert positions([sale(1_500_000), ended], quarter) == [Position("VND", 1_500_000, 1_500_000, 0)]
    other = sale(7900, "c2", "USD")
    assert positions([other, Movement("c1", 0, "USD", quarter, ends_schedule=True)], quarter)[0].deferred > 0


def test_a_payment_that_bought_nothing_is_owed_back_and_leaves_the_schedule_alone() -> None:
    """A duplicate payment and its refund: deferred until refunded, never recognized, and the
    contract's own sale is still earned day by day (its refund once ended the schedule)."""
    quarter = T0 + YEAR / 4
    duplicate = Movement("c1", 1_500_000, "VND", quarter, owed_back=True)
    assert positions([sale(1_500_000), duplicate], quarter) == [
        Position("VND", 3_000_000, 375_000, 2_625_000)
    ]
    refunded = Movement("c1", -1_500_000, "VND", quarter + dt.timedelta(days=1), owed_back=True)
    half = T0 + YEAR / 2
    assert positions([sale(1_500_000), duplicate, refunded], half) == [
        Position("VND", 1_500_000, 750_000, 750_000)
    ]


def test_currencies_are_never_mixed() -> None:
    result = positions([sale(1_500_000), sale(7900, "c2", "USD")], T0 + YEAR / 2)
    assert [p.currency for p in result] == ["USD", "VND"]


movements = st.lists(
    st.builds(
        Movement,
        contract_id=st.sampled_from(["c1", "c2", "c3", None]),
        amount=st.integers(-500_000, 2_000_000),
        currency=st.sampled_from(["VND", "USD", "KWD"]),
        occurred_at=st.integers(0, 800).map(lambda d: T0 + dt.timedelta(days=d)),
        period_start=st.one_of(st.none(), st.integers(0, 800).map(lambda d: T0 + dt.timedelta(days=d))),
        period_end=st.one_of(st.none(), st.integers(1, 1200).map(lambda d: T0 + dt.timedelta(days=d))),
        owed_back=st.booleans(),
    ),
    max_size=30,
)


@given(movements, st.integers(-10, 1300))
def test_recognized_plus_deferred_is_net_collected_at_every_date(moves: list[Movement], day: int) -> None:
    as_of = T0 + dt.timedelta(days=day)
    for position in positions(moves, as_of):
        assert position.recognized + position.deferred == position.collected
        net = sum(m.amount for m in moves if m.currency == position.currency and m.occurred_at <= as_of)
        assert position.collected == net


@given(st.lists(st.integers(1, 10**9), min_size=1, max_size=10), st.integers(0, 400), st.integers(1, 100))
def test_without_refunds_recognition_only_grows_and_deferral_is_never_negative(
    amounts: list[int], day: int, later: int
) -> None:
    moves = [sale(a, f"c{i}") for i, a in enumerate(amounts)]
    [before] = positions(moves, T0 + dt.timedelta(days=day))
    [after] = positions(moves, T0 + dt.timedelta(days=day + later))
    assert after.recognized >= before.recognized
    assert before.deferred >= 0
    assert after.deferred >= 0


@given(
    st.lists(
        st.tuples(
            st.integers(1, 10**7), st.integers(0, 400), st.integers(1, 800), st.sampled_from(["c1", "c2"])
        ),
        min_size=1,
        max_size=5,
    ),
    st.integers(0, 200),
    st.integers(1, 500),
)
def test_what_each_month_earns_adds_up_to_what_the_window_earned(
    sales: list[tuple[int, int, int, str]], offset: int, length: int
) -> None:
    moves = [
        sale(amount, contract, "USD", T0 + dt.timedelta(days=day), dt.timedelta(days=days))
        for amount, day, days, contract in sales
    ]
    start, end = T0 + dt.timedelta(days=offset), T0 + dt.timedelta(days=offset + length)
    months = months_between(start, end)
    assert months[0][0] <= start and months[-1][1] >= end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(months))  # contiguous, no gap
    by_month = earned_by_month(moves, months)
    assert all(amount >= 0 for amount in by_month.values())  # a sale is never un-earned
    first, last = months[0][0] - dt.timedelta(microseconds=1), months[-1][1] - dt.timedelta(microseconds=1)
    window = sum(r for _, r in recognized_by_contract(moves, last).values()) - sum(
        r for _, r in recognized_by_contract(moves, first).values()
    )
    assert sum(by_month.values()) == window


@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_a_loss_ratio_is_cost_over_earned_and_none_without_revenue(earned: int, cost: int) -> None:
    month = dt.date(2026, 5, 1)
    lines = loss_ratios({(month, "p", "USD"): earned}, {(month, "p", "USD"): cost})
    assert [(x.earned, x.claim_cost) for x in lines] == [(earned, cost)]
    assert lines[0].loss_ratio == (round(cost / earned, 4) if earned else None)


def test_a_failed_refund_is_held_until_it_is_paid_back_and_then_the_rest_is_earned() -> None:
    """Sale 100, a refund of 60 that failed (the 60 came back), then 60 paid back through Stripe:
    held meanwhile, never earned; once paid back, 40 was the contract's and is earned (holding
    the reversal alone left the payback as the contract's own refund: 0 earned, 40 deferred)."""
    t1, t2, t3 = T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=3)
    rows = [
        ("sale", "pi_1", T0),
        ("refund", "pi_1", t1),
        ("refund_reversal", "pi_1", t2),
        ("refund", "pi_1", t3),
    ]
    held = held_for_the_customer(rows)
    assert held == [False, False, True, True]
    amounts = [10_000, -6_000, 6_000, -6_000]
    moves = [
        Movement(
            "c1",
            amount,
            "USD",
            at,
            at if kind == "sale" else None,
            T0 + YEAR if kind == "sale" else None,
            owed_back=h,
        )
        for (kind, _, at), amount, h in zip(rows, amounts, held, strict=True)
    ]
    assert positions(moves[:3], t2) == [Position("USD", 10_000, 4_000, 6_000)]  # 60 held
    assert positions(moves, t3) == [Position("USD", 4_000, 4_000, 0)]
