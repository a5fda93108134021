"""The typed Stripe boundary: what the sandbox emits, what Stripe's SDK builds and what localstripe
sends (expanded objects, the older invoice shape) all decode into the Structs the handlers read."""

import datetime as dt

import msgspec
import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from billing import stripe_objects as so
from billing.catalog_sync import PriceSpec
from billing.ledger.rules import LedgerKind
from billing.sandbox import SandboxGateway
from billing.webhooks.rules import Unwanted
from billing.webhooks.service import HANDLERS
from entitlements.audit_names import Action, claim_moved
from entitlements.claims.rules import ClaimStatus
from entitlements.money import Money

MONTHLY = PriceSpec(
    lookup_key="p-monthly",
    product_id="prod_1",
    product_name="Plan",
    currency="USD",
    unit_amount=999,
    interval_months=1,
    metadata={},
)


async def test_every_event_the_sandbox_emits_decodes_into_what_its_handler_reads() -> None:
    gateway = SandboxGateway("whsec_test")
    customer = await gateway.create_customer(customer_id="cus_1", name="Ana", email=None, locales=["fil"])
    intent = await gateway.create_payment_intent(
        amount=Money(4999, "USD"),
        customer=customer,
        contract_id="ctr_1",
        payment_method="pm_card_visa",
        key="a",
    )
    await gateway.confirm_payment_intent(intent.id, key="b")
    await gateway.refund(payment_intent=intent.id, amount=Money(1000, "USD"), contract_id="ctr_1", key="c")
    declined = await gateway.create_payment_intent(
        amount=Money(4999, "USD"), customer=customer, contract_id="ctr_2", payment_method=None, key="d"
    )
    gateway.pay_on_page(declined.id, "pm_card_chargeDeclined")
    await gateway.create_subscription(
        customer=customer,
        price=MONTHLY,
        contract_id="ctr_3",
        attempt=1,
        saved_payment_method=True,
        cancel_at=None,
        key="e",
    )
    gateway.advance(32)  # a renewal, paid
    gateway.renewal_card = "pm_card_chargeDeclined"
    gateway.advance(60)  # the next refused, retried, then the subscription cancelled

    seen: dict[str, int] = {}
    for event in gateway.log:
        decoded = msgspec.json.decode(msgspec.json.encode(event), type=so.Event)
        seen[event.type] = seen.get(event.type, 0) + 1
        reads = HANDLERS.get(decoded.type)
        if reads is None:
            continue
        obj = msgspec.json.decode(decoded.data.object, type=reads.type)
        assert msgspec.json.encode(obj) == bytes(decoded.data.object)  # nothing lost or added
    handled = {kind for kind in seen if kind in HANDLERS}
    assert handled >= {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "refund.created",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.upcoming",
    }, seen
    [ended] = [e for e in gateway.log if e.type == "customer.subscription.deleted"]
    sub = msgspec.json.decode(ended.data.object, type=so.Subscription)
    assert (sub.status, sub.end_reason, sub.metadata["contract_id"]) == (
        "canceled",
        "payment_failed",
        "ctr_3",
    )


def test_an_invoice_names_its_subscription_and_payment_in_either_shape() -> None:
    current = stripe.Invoice.construct_from(
        {
            "id": "in_1",
            "object": "invoice",
            "currency": "usd",
            "status": "paid",
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": "sub_1", "metadata": {"contract_id": "ctr_1"}},
            },
            "payments": {
                "object": "list",
                "data": [{"payment": {"type": "payment_intent", "payment_intent": "pi_1"}}],
            },
            "lines": {"object": "list", "data": [{"period": {"start": 1_700_000_000, "end": 1_702_592_000}}]},
        },
        "sk_test",
    )
    invoice = msgspec.convert(current.to_dict(), so.Invoice)
    assert (invoice.subscription_and_contract, invoice.paying_intent, invoice.is_paid) == (
        ("sub_1", "ctr_1"),
        "pi_1",
        True,
    )
    assert invoice.service_span == (
        dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC),
        dt.datetime(2023, 12, 14, 22, 13, 20, tzinfo=dt.UTC),
    )
    assert invoice.payment_intent is msgspec.UNSET  # the current shape has no such field

    older = {  # localstripe's: the subscription and the charge expanded, `paid` rather than a status
        "id": "in_2",
        "object": "invoice",
        "currency": "eur",
        "paid": True,
        "subscription": {"id": "sub_2", "object": "subscription", "metadata": {"contract_id": "ctr_2"}},
        "payment_intent": {"id": "pi_2", "object": "payment_intent"},
        "charge": {"id": "ch_2", "object": "charge", "amount": 5},
        "period_start": 1_700_000_000,
        "period_end": 1_702_592_000,
    }
    invoice = msgspec.convert(older, so.Invoice)
    assert (invoice.subscription_and_contract, invoice.paying_intent, so.ident(invoice.charge)) == (
        ("sub_2", "ctr_2"),
        "pi_2",
        "ch_2",
    )
    assert invoice.is_paid


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({"object": "invoice", "currency": "usd"}, "missing required field `id`"),
        ({"id": "in_1", "currency": "usd", "amount_paid": "a lot"}, "Expected `int`"),
        ({"id": "in_1", "currency": "usd", "subscription": 7}, "Expected `str | object | null`"),
    ],
)
def test_an_invoice_that_does_not_fit_is_refused_with_the_field_named(obj: object, error: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=error.replace("|", r"\|")):
        msgspec.convert(obj, so.Invoice)


@given(st.one_of(st.none(), st.text(min_size=1), st.builds(so.Ref, id=st.text(min_size=1))))
def test_an_expandable_field_names_the_same_id_either_way(value: str | so.Ref | None) -> None:
    expected = value.id if isinstance(value, so.Ref) else value
    assert so.ident(value) == expected
    decoded = msgspec.json.decode(
        msgspec.json.encode(so.Refund(id="re_1", amount=1, currency="usd", charge=value)), type=so.Refund
    )
    assert so.ident(decoded.charge) == expected


def test_every_claim_status_has_its_action_and_every_unwanted_payment_its_ledger_kind() -> None:
    assert {claim_moved(status) for status in ClaimStatus} <= set(Action)
    assert {reason.value for reason in Unwanted} <= {kind.value for kind in LedgerKind}
    with pytest.raises(ValueError, match="misplaced"):
        claim_moved("misplaced")
