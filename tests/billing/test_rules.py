"""Billing's pure rules: fees are not revenue, a refund never returns more than was paid net, and
an ended subscription ends its contract by why it ended."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from billing.rules import counts_as_revenue, net_paid, subscription_ending
from entitlements.coverage import ContractStatus

kinds = st.sampled_from(["sale", "renewal", "refund", "dispute", "fee"])
entries = st.lists(st.tuples(kinds, st.integers(-(10**9), 10**9)), max_size=12)


@given(entries=entries)
def test_what_was_paid_net_leaves_fees_out_and_is_never_negative(entries: list[tuple[str, int]]) -> None:
    assert net_paid(entries) == max(sum(a for k, a in entries if k != "fee"), 0)
    with_more_fees = [*entries, ("fee", -12345)]
    assert net_paid(with_more_fees) == net_paid(entries)


def test_only_stripes_fee_is_not_revenue() -> None:
    assert [k for k in ("sale", "renewal", "refund", "dispute", "fee") if not counts_as_revenue(k)] == ["fee"]


END = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


@given(
    reason=st.sampled_from([None, "payment_failed", "cancellation_requested", "payment_disputed"]),
    ended_offset=st.integers(-400, 400),
    cancel_at=st.none() | st.just(END),
)
def test_an_ended_subscription_lapses_expires_or_cancels(
    reason: str | None, ended_offset: int, cancel_at: dt.datetime | None
) -> None:
    ended = END + dt.timedelta(days=ended_offset)
    ending = subscription_ending(reason, ended, cancel_at)
    if reason == "payment_failed":
        assert ending is ContractStatus.LAPSED
    elif cancel_at is not None and ended >= cancel_at:
        assert ending is ContractStatus.EXPIRED
    else:
        assert ending is ContractStatus.CANCELLED
