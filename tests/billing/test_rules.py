"""Billing's pure rules: fees are not revenue, a refund never returns more than was paid net, and
an ended subscription ends its contract by why it ended."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from billing.cancellation.rules import Entry, allocate, own_money, refundable
from billing.checkout.rules import (
    STRIPE_LOCALES,
    AttemptStatus,
    attempt_status,
    needs_new_attempt,
    stripe_locales,
)
from billing.ledger.rules import counts_as_revenue, net_paid
from billing.webhooks.rules import invoice_kind, paid_already, subscription_ending
from entitlements.coverage import ContractStatus, Period

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


statuses = st.sampled_from(AttemptStatus)
methods = st.sampled_from([None, "pm_a", "pm_b"])


@given(latest=st.none() | statuses, latest_method=methods, method=methods)
def test_a_paid_or_paying_attempt_is_never_replaced(
    latest: AttemptStatus | None, latest_method: str | None, method: str | None
) -> None:
    """No second charge: an attempt that succeeded or is processing is always resumed; a
    declined one never is; an unpaid one is replaced only by another payment method."""
    new = needs_new_attempt(latest, latest_method, method)
    if latest in (AttemptStatus.SUCCEEDED, AttemptStatus.PROCESSING):
        assert not new
    elif latest is None or latest is AttemptStatus.DECLINED:
        assert new
    else:
        assert new == (method is not None and method != latest_method)


@given(status=st.sampled_from(["succeeded", "active", "requires_action", "incomplete", "processing"]))
def test_a_decline_code_always_means_declined(status: str) -> None:
    assert attempt_status(status, "card_declined") is AttemptStatus.DECLINED
    assert attempt_status(status, None) is not AttemptStatus.DECLINED


def test_stripe_gets_the_languages_it_has_and_none_it_lacks() -> None:
    assert [stripe_locales(tag) for tag in ("sv", "sv-SE", "fil", "vi_VN", "EN")] == [
        ["sv"],
        ["sv"],
        ["fil"],
        ["vi"],
        ["en"],
    ]
    assert stripe_locales("ar") == stripe_locales("hi") == []  # Stripe has no Arabic or Hindi
    assert set(STRIPE_LOCALES) <= {"en", "fil", "hi", "sv", "ar", "vi"}


instants = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1)).map(
    lambda d: d.replace(tzinfo=dt.UTC)
)


@given(start=instants, others=st.lists(instants, max_size=5))
def test_without_a_billing_reason_only_the_first_period_is_the_sale(
    start: dt.datetime, others: list[dt.datetime]
) -> None:
    kind = invoice_kind(None, start, [*others, start])
    assert kind == ("sale" if all(o >= start for o in others) else "renewal")
    # Stripe's own word wins when it gives one.
    assert invoice_kind("subscription_create", start, others) == "sale"
    assert invoice_kind("subscription_cycle", start, []) == "renewal"


spans = st.tuples(instants, st.integers(1, 400)).map(lambda t: Period(t[0], t[0] + dt.timedelta(days=t[1])))


@given(periods=st.lists(spans, max_size=4), period=spans)
def test_a_payment_pays_again_only_what_overlaps_what_was_paid(periods: list[Period], period: Period) -> None:
    """A subscription's invoice is a duplicate exactly when its service period overlaps a paid
    one (touching end to start is the next period); an upfront contract is paid once."""
    again = paid_already(False, periods, period)
    overlapping = [p for p in periods if p.start < period.end and period.start < p.end]
    assert again == (overlapping[0] if overlapping else None)
    following = Period(period.end, period.end + dt.timedelta(days=30))
    assert paid_already(False, [period], following) is None
    assert paid_already(True, periods, None) == (periods[0] if periods else None)


intents = st.sampled_from(["pi_a", "pi_b", "pi_c", None])
rows = st.lists(
    st.builds(
        Entry,
        st.sampled_from(
            ["sale", "renewal", "refund", "refund_reversal", "dispute", "fee", "duplicate_payment"]
        ),
        st.integers(-(10**6), 10**6),
        st.sampled_from(["USD", "EUR"]),
        intents,
    ),
    max_size=12,
)


@given(rows=rows, amount=st.integers(0, 5 * 10**6))
def test_a_cancellations_refunds_never_exceed_what_is_left_of_each_payment(
    rows: list[Entry], amount: int
) -> None:
    own = own_money(rows, "USD")
    assert all(e.currency == "USD" and e.kind != "duplicate_payment" for e in own)
    payments = refundable(own)
    left = dict(payments)
    assert all(amount > 0 for amount in left.values()) and len(left) == len(payments)
    made = allocate(amount, payments)
    assert sum(part for _, part in made) == min(amount, sum(left.values()))
    assert all(0 < part <= left[intent] for intent, part in made)
    assert [intent for intent, _ in made] == [intent for intent, _ in payments][: len(made)]  # newest first


def test_what_moved_on_a_duplicate_payment_is_not_the_contracts_money() -> None:
    rows = [
        Entry("sale", 7900, "USD", "pi_a"),
        Entry("duplicate_payment", 7900, "USD", "pi_b"),
        Entry("refund", -7900, "USD", "pi_b"),
        Entry("refund", -5000, "SEK", "pi_foreign"),
        Entry("refund", -900, "USD", "pi_a"),
    ]
    own = own_money(rows, "USD")
    assert net_paid((e.kind, e.amount) for e in own) == 7000
    assert refundable(own) == [("pi_a", 7000)]
