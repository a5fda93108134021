"""Service orders' pure rules, property-tested: the moves, estimates that wait, who is served."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from entitlements.repairs.rules import ENDED, WAITING, Estimate, OrderStatus, can_move, estimate_waits, serves

STATUSES = st.sampled_from(list(OrderStatus))
AMOUNTS = st.integers(0, 10**9)


@given(st.lists(STATUSES, max_size=12))
def test_an_order_moves_forward_only_and_nothing_leaves_an_ended_order(path: list[OrderStatus]) -> None:
    order = list(OrderStatus)
    status = OrderStatus.ACCEPTED
    for to in path:
        if status in ENDED or status in WAITING:
            assert not can_move(status, to)
        if can_move(status, to):
            assert to is OrderStatus.CANNOT_REPAIR or order.index(to) > order.index(status)
            status = to


def _reached(visit: bool) -> set[OrderStatus]:
    reached, frontier = {OrderStatus.ACCEPTED}, [OrderStatus.ACCEPTED]
    while frontier:
        current = frontier.pop()
        for to in OrderStatus:
            if can_move(current, to, visit=visit) and to not in reached:
                reached.add(to)
                frontier.append(to)
    return reached


def test_every_status_is_reachable_from_acceptance_to_an_end() -> None:
    # A cancelled order was withdrawn before anyone accepted it (its redemption voided).
    assert _reached(visit=False) == set(OrderStatus) - WAITING - {OrderStatus.CANCELLED}


def test_a_visit_is_started_done_and_closed_on_site_with_no_product_to_receive_or_ship() -> None:
    assert _reached(visit=True) == {
        OrderStatus.ACCEPTED,
        OrderStatus.REPAIR_STARTED,
        OrderStatus.REPAIRED,
        OrderStatus.CLOSED,
        OrderStatus.CANNOT_REPAIR,
    }
    assert not any(
        can_move(s, OrderStatus.CANCELLED) or can_move(s, OrderStatus.CANCELLED, visit=True)
        for s in OrderStatus
    )


@given(AMOUNTS, AMOUNTS, AMOUNTS)
def test_an_estimate_waits_exactly_when_it_is_above_what_the_claim_pays(
    parts: int, labour: int, payable: int
) -> None:
    assert estimate_waits(Estimate(parts, labour), payable) == (parts + labour > payable)


@given(
    st.lists(st.sampled_from(["phone", "tv", "laptop"]), max_size=3),
    st.lists(st.sampled_from(["US", "SE", "PH"]), max_size=3),
    st.sampled_from(["phone", "tv", "laptop"]),
    st.sampled_from(["US", "SE", "PH"]),
)
def test_a_servicer_serves_its_categories_in_its_countries_or_everywhere(
    categories: list[str], countries: list[str], category: str, country: str
) -> None:
    expected = category in categories and (country in countries or not countries)
    assert serves(categories, countries, category, country) is expected
