import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from billing.revenue import Movement, Position, positions

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
