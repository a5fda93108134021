import asyncio
import datetime as dt
import secrets
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from sqlalchemy import select, text

from api.app import CoverlineApp
from api.routes.billing import deliver_sandbox_events
from billing import stripe_objects as so
from billing.gateway import GatewayError
from billing.sandbox import SandboxGateway
from billing.tables import LedgerEntryRow
from entitlements import jobs
from tests.api.shop import Shop
from tests.billing.test_webhooks import deliver, event, pay_again, renewal_invoice
from tests.conftest import Keys


async def sold(shop: Shop, plan_code: str = "test-screen-guard") -> str:
    contract_id: str = (await shop.checkout(plan_code))["contract"]["id"]
    return contract_id


async def refunds(app: CoverlineApp) -> list[tuple[str, int]]:
    async with app.state.db.sessions() as session:
        return [
            (e.entry_key, e.amount)
            for e in await session.scalars(select(LedgerEntryRow).where(LedgerEntryRow.kind == "refund"))
        ]


async def test_free_look_cancel_refunds_everything_once(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient, keys: Keys
) -> None:
    contract_id = await sold(shop)
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    assert (quote["refund"], quote["basis"]) == ({"amount": 7900, "currency": "USD"}, "free_look")
    done = await shop.call(
        "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
    )
    assert done["contract"]["status"] == "cancelled"
    assert done["refund"]["amount"] == {"amount": 7900, "currency": "USD"}
    assert (await shop.check(contract_id=contract_id))["reason"] == "cancelled"
    again = await client.post(
        f"/v1/contracts/{contract_id}/cancel", json={"refund": quote["refund"]}, headers=keys.auth("support")
    )
    assert again.status_code == 409
    gateway: SandboxGateway = app.state.gateway
    assert len(gateway.refunds) == 1
    assert [amount for _, amount in await refunds(app)] == [
        -7900
    ]  # the webhook's refund.created changed nothing


@pytest.mark.parametrize("ending", ["lapse", "expire", "cancel-by-stripe", "chargeback"])
async def test_a_contract_that_ended_otherwise_is_neither_quoted_a_refund_nor_cancelled(
    shop: Shop, client: httpx.AsyncClient, keys: Keys, ending: str
) -> None:
    """A quote offered a refund (the free look's whole price) that the cancel then refused, and a
    cancel turned a chargeback into `cancelled`: both answer 409 and the status stays as it ended."""
    sale = await shop.checkout("test-screen-guard")
    contract_id = sale["contract"]["id"]
    if ending == "chargeback":
        dispute = {
            "id": "dp_ended",
            "object": "dispute",
            "amount": 7900,
            "currency": "usd",
            "status": "lost",
            "payment_intent": sale["payment_intent"],
            "charge": "ch_ended",
        }
        assert (
            await deliver(client, event("evt_dp_ended", "charge.dispute.closed", dispute))
        ).status_code == 200
    elif ending == "cancel-by-stripe":
        await shop.lifecycle(contract_id, "cancel", "sub_dashboard:ended")
    else:
        await shop.lifecycle(contract_id, ending, f"{ending}-{contract_id}")
    ended = (await shop.call("GET", f"/v1/contracts/{contract_id}", "support"))["status"]
    assert ended != "active"
    support = keys.auth("support")
    quote = await client.post(f"/v1/contracts/{contract_id}/refund-quote", headers=support)
    assert quote.status_code == 409, quote.text
    cancel = {"refund": {"amount": 0, "currency": "USD"}}
    refused = await client.post(f"/v1/contracts/{contract_id}/cancel", json=cancel, headers=support)
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["field"] == "contract_id"
    assert (await shop.call("GET", f"/v1/contracts/{contract_id}", "support"))["status"] == ended


async def test_a_stale_quote_is_refused(shop: Shop, client: httpx.AsyncClient, keys: Keys) -> None:
    contract_id = await sold(shop)
    response = await client.post(
        f"/v1/contracts/{contract_id}/cancel",
        json={"refund": {"amount": 100, "currency": "USD"}},
        headers=keys.auth("support"),
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "refund"
    assert (await shop.call("GET", f"/v1/contracts/{contract_id}", "support"))["status"] == "active"


async def test_after_an_approved_claim_the_refund_is_pro_rata(shop: Shop) -> None:
    contract_id = await sold(shop)
    await shop.claim(contract_id=contract_id)
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    assert quote["basis"] == "pro_rata"
    assert 0 < quote["refund"]["amount"] < 7900


async def test_cancelling_a_subscription_stops_it(shop: Shop, app: CoverlineApp) -> None:
    contract_id = await sold(shop, "test-monthly")
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "checkout")
    await shop.call(
        "POST", f"/v1/contracts/{contract_id}/cancel", "checkout", json={"refund": quote["refund"]}
    )
    gateway: SandboxGateway = app.state.gateway
    [subscription] = gateway.subscriptions.values()
    assert subscription.status == "canceled"
    assert (await shop.call("GET", f"/v1/contracts/{contract_id}", "support"))["status"] == "cancelled"


async def test_the_refund_is_made_with_nothing_held_and_a_failed_stop_is_retried_by_a_job(
    shop: Shop, app: CoverlineApp, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract_id = await sold(shop, "test-monthly")
    gateway: SandboxGateway = app.state.gateway
    refund, seen = gateway.refund, []

    async def observed(**call: object) -> object:
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:  # from a connection of its own: the contract's row is free, not locked for us
            async with connection.transaction():
                seen.append(
                    await connection.fetchval(
                        "SELECT status FROM contracts WHERE id = $1 FOR UPDATE NOWAIT", contract_id
                    )
                )
        finally:
            await connection.close()
        return await refund(**call)  # type: ignore[arg-type]

    async def unreachable(subscription: str, *, key: str) -> None:
        raise GatewayError("Stripe: timed out")

    monkeypatch.setattr(gateway, "refund", observed)
    monkeypatch.setattr(gateway, "cancel_subscription", unreachable)
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    done = await shop.call(
        "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
    )
    assert seen == ["active"] and done["contract"]["status"] == "cancelled"
    async with app.state.db.sessions() as session:
        queued = (
            await session.execute(
                text("SELECT entrypoint, payload FROM pgqueuer WHERE entrypoint = :job"),
                {"job": jobs.STOP_SUBSCRIPTION},
            )
        ).all()
    assert [(row[0], msgspec.json.decode(bytes(row[1]))["contract_id"]) for row in queued] == [
        (jobs.STOP_SUBSCRIPTION, contract_id)
    ]


class Flaky:
    """The sandbox, but `refund` fails: before reaching Stripe, or after Stripe refunded."""

    def __init__(self, inner: SandboxGateway, *, after_refund: bool) -> None:
        self.inner = inner
        self.after_refund = after_refund
        self.failures = 1

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def refund(self, **kwargs: object) -> object:
        if self.failures and not self.after_refund:
            self.failures -= 1
            raise GatewayError("Stripe: timed out")
        result = await self.inner.refund(**kwargs)  # type: ignore[arg-type]
        if self.failures:
            self.failures -= 1
            raise GatewayError("Stripe: connection reset after the refund")
        return result


@pytest.mark.parametrize("after_refund", [False, True], ids=["before-stripe", "after-stripe-refunded"])
async def test_a_cancel_that_fails_half_way_converges_on_retry(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient, keys: Keys, after_refund: bool
) -> None:
    contract_id = await sold(shop)
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    sandbox = app.state.gateway
    app.state.gateway = Flaky(sandbox, after_refund=after_refund)
    try:
        failed = await client.post(
            f"/v1/contracts/{contract_id}/cancel",
            json={"refund": quote["refund"]},
            headers=keys.auth("support"),
        )
        assert failed.status_code == 502
        assert failed.json()["type"].endswith("payment-gateway-error")
        assert (await shop.call("GET", f"/v1/contracts/{contract_id}", "support"))[
            "status"
        ] == "active"  # nothing half-written
        retried = await shop.call(
            "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
        )
    finally:
        app.state.gateway = sandbox
    assert retried["contract"]["status"] == "cancelled"
    assert len(sandbox.refunds) == 1  # refunded once, whichever side the failure was on
    assert [amount for _, amount in await refunds(app)] == [-7900]


class FlakyCharge:
    """The sandbox, but the first PaymentIntent call fails after Stripe created and charged it
    (a timeout on the way back): the retry must find the same PaymentIntent, not charge again."""

    def __init__(self, inner: SandboxGateway) -> None:
        self.inner = inner
        self.failures = 1

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def create_payment_intent(self, **kwargs: object) -> object:
        result = await self.inner.create_payment_intent(**kwargs)  # type: ignore[arg-type]
        if self.failures:
            self.failures -= 1
            raise GatewayError("Stripe: 429 Too Many Requests")
        return result


async def test_a_checkout_retried_after_a_gateway_failure_charges_once(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient, keys: Keys
) -> None:
    body, _ = await shop.checkout_request("test-screen-guard")
    sandbox = app.state.gateway
    app.state.gateway = FlakyCharge(sandbox)
    try:
        failed = await client.post("/v1/checkouts", json=body, headers=keys.auth("checkout"))
        assert failed.status_code == 502
        retried = await shop.call("POST", "/v1/checkouts", "checkout", json=body)
    finally:
        app.state.gateway = sandbox
    assert len(sandbox.payment_intents) == 1
    # The charge's event, refused while its contract was not committed, is delivered again.
    assert "payment_intent.succeeded" in [e.type for e in sandbox.outbox]
    await deliver_sandbox_events(app.state.gateway, app.state.db, app.state.settings)
    assert (await shop.call("GET", f"/v1/contracts/{retried['contract']['id']}", "support"))[
        "status"
    ] == "active"
    async with app.state.db.sessions() as session:
        sales = list(await session.scalars(select(LedgerEntryRow).where(LedgerEntryRow.kind == "sale")))
    assert [e.amount for e in sales] == [7900]


class KeyBlind:
    """The sandbox, but keeping no idempotency keys (as localstripe) and slow to refund: every
    request that reaches `refund` refunds again."""

    def __init__(self, inner: SandboxGateway) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def refund(self, **kwargs: Any) -> object:
        await asyncio.sleep(0.2)
        return await self.inner.refund(**{**kwargs, "key": f"{kwargs['key']}:{secrets.token_hex(4)}"})


async def test_cancels_sent_at_once_refund_once(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient, keys: Keys
) -> None:
    """A double click, or two agents, with no Idempotency-Key: one refund, whatever the server
    does with Stripe's idempotency key; the others are told it is under way, or done."""
    contract_id = await sold(shop)
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    sandbox = app.state.gateway
    app.state.gateway = KeyBlind(sandbox)
    try:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"/v1/contracts/{contract_id}/cancel",
                    json={"refund": quote["refund"]},
                    headers=keys.auth("support"),
                )
                for _ in range(5)
            )
        )
    finally:
        app.state.gateway = sandbox
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409]
    assert len(sandbox.refunds) == 1
    assert [amount for _, amount in await refunds(app)] == [-7900]


async def test_a_duplicate_payment_awaiting_its_own_refund_is_not_refunded_by_a_cancel(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """The duplicate's job refunds it; a cancel in the free look gives back the contract's own
    payment, against that payment."""
    result = await shop.checkout("test-screen-guard")
    contract_id = result["contract"]["id"]
    await pay_again(client, contract_id, "second")
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    assert (quote["refund"]["amount"], quote["basis"]) == (7900, "free_look")
    done = await shop.call(
        "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
    )
    sandbox: SandboxGateway = app.state.gateway
    assert [(r.payment_intent, r.amount) for r in sandbox.refunds.values()] == [
        (result["payment_intent"], 7900)
    ]
    assert [r["amount"]["amount"] for r in done["refunds"]] == [7900]


async def test_a_free_look_cancel_after_two_invoices_refunds_each_within_its_charge(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """Stripe refunds no charge beyond its amount: 2 × 7900 back is two refunds, newest first."""
    contract_id = await sold(shop, "test-monthly")
    sandbox: SandboxGateway = app.state.gateway
    [invoice] = sandbox.invoices.values()
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    renewal = {
        **renewal_invoice(invoice, "in_second_month", start),
        "payment_intent": "pi_second_month",  # as older API versions name it
        "payments": None,
    }
    assert (await deliver(client, event("evt_second_month", "invoice.paid", renewal))).json()[
        "outcome"
    ] == "applied"
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    assert (quote["refund"]["amount"], quote["basis"]) == (15800, "free_look")
    done = await shop.call(
        "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
    )
    made = [(r.payment_intent, r.amount) for r in sandbox.refunds.values()]
    assert made[0] == ("pi_second_month", 7900) and [amount for _, amount in made] == [7900, 7900]
    assert len({intent for intent, _ in made}) == 2
    assert sorted(amount for _, amount in await refunds(app)) == [-7900, -7900]
    assert [r["amount"]["amount"] for r in done["refunds"]] == [7900, 7900]
    # The month paid ahead, cut away whole, covered nothing: not shown as a period of no length.
    [period] = done["contract"]["coverage_periods"]
    assert dt.datetime.fromisoformat(period["end"]) > dt.datetime.fromisoformat(period["start"])


class SlowToDecline:
    """The sandbox, but keeping no idempotency keys and slow to confirm: checkouts sent at once
    all arrive while the first is at Stripe."""

    def __init__(self, inner: SandboxGateway) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def create_payment_intent(self, **kwargs: Any) -> object:
        return await self.inner.create_payment_intent(
            **{**kwargs, "key": f"{kwargs['key']}:{secrets.token_hex(4)}"}
        )

    async def confirm_payment_intent(self, intent: str, *, key: str) -> object:
        await asyncio.sleep(0.3)
        return await self.inner.confirm_payment_intent(intent, key=f"{key}:{secrets.token_hex(4)}")


async def test_checkouts_sent_at_once_with_a_declined_card_charge_it_once(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient, keys: Keys
) -> None:
    """The requests that waited answer the attempt they waited on, declined: the same card is not
    charged again for each of them."""
    body, _ = await shop.checkout_request("test-screen-guard", card="pm_card_chargeDeclined")
    sandbox = app.state.gateway
    app.state.gateway = SlowToDecline(sandbox)
    try:
        answers = await asyncio.gather(
            *(client.post("/v1/checkouts", json=body, headers=keys.auth("checkout")) for _ in range(4))
        )
    finally:
        app.state.gateway = sandbox
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert {(a.json()["attempt"], a.json()["decline_code"]) for a in answers} == {(1, "card_declined")}
    assert len(sandbox.payment_intents) == 1


async def test_the_quote_says_what_a_cancel_that_failed_half_way_will_refund(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient, keys: Keys
) -> None:
    """Stripe refunded, our commit failed; the quote has moved since (a claim was approved: no
    free look any more). The quote says the refund under way, and a cancel with it completes,
    refunding once; before, every cancel was refused for the moved quote."""
    contract_id = await sold(shop)
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    sandbox = app.state.gateway
    app.state.gateway = Flaky(sandbox, after_refund=True)
    try:
        failed = await client.post(
            f"/v1/contracts/{contract_id}/cancel",
            json={"refund": quote["refund"]},
            headers=keys.auth("support"),
        )
    finally:
        app.state.gateway = sandbox
    assert failed.status_code == 502
    await shop.claim(contract_id=contract_id)  # approved: the policy alone would now say pro rata
    again = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    assert again["refund"] == quote["refund"]
    done = await shop.call(
        "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": again["refund"]}
    )
    assert done["contract"]["status"] == "cancelled"
    assert len(sandbox.refunds) == 1 and [amount for _, amount in await refunds(app)] == [-7900]


class Refusing:
    """The sandbox, but Stripe refuses the first refund as asked (it makes nothing)."""

    def __init__(self, inner: SandboxGateway) -> None:
        self.inner = inner
        self.refusals = 1

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def refund(self, **kwargs: Any) -> object:
        if self.refusals:
            self.refusals -= 1
            raise GatewayError("Stripe: the charge has been refunded already", refused=True)
        return await self.inner.refund(**kwargs)


async def test_a_refund_stripe_refused_is_planned_afresh(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient, keys: Keys, database_url: str
) -> None:
    contract_id = await sold(shop)
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    sandbox = app.state.gateway
    app.state.gateway = Refusing(sandbox)
    try:
        failed = await client.post(
            f"/v1/contracts/{contract_id}/cancel",
            json={"refund": quote["refund"]},
            headers=keys.auth("support"),
        )
        assert failed.status_code == 502
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            kept = await connection.fetchval(
                "SELECT planned FROM gateway_leases WHERE key = $1", f"cancel:{contract_id}"
            )
        finally:
            await connection.close()
        assert kept is None  # nothing kept to replay
        done = await shop.call(
            "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
        )
    finally:
        app.state.gateway = sandbox
    assert done["contract"]["status"] == "cancelled" and len(sandbox.refunds) == 1


def renewal_without_its_payments(invoice: Any, invoice_id: str) -> dict[str, Any]:
    """The next month's invoice as a current API version's event carries it: its payments, a
    list of their own, are not in it."""
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    return {**renewal_invoice(invoice, invoice_id, start), "payments": None, "payment_intent": None}


async def test_a_renewal_is_booked_with_the_payment_intent_stripe_names_when_its_event_does_not(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    """So a cancel in the free look refunds it against its own payment."""
    contract_id = await sold(shop, "test-monthly")
    sandbox: SandboxGateway = app.state.gateway
    [invoice] = sandbox.invoices.values()
    renewal = renewal_without_its_payments(invoice, "in_month_two")
    sandbox.invoices["in_month_two"] = msgspec.convert(
        {**renewal, "payment_intent": "pi_month_two"}, so.Invoice
    )
    await deliver(client, event("evt_month_two", "invoice.paid", renewal))
    async with app.state.db.sessions() as session:
        booked = await session.scalar(
            select(LedgerEntryRow).where(LedgerEntryRow.stripe_invoice == "in_month_two")
        )
    assert booked is not None and booked.stripe_payment_intent == "pi_month_two"
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    done = await shop.call(
        "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
    )
    assert sorted(r["amount"]["amount"] for r in done["refunds"]) == [7900, 7900]


async def test_what_no_stripe_payment_can_carry_back_is_said_not_silently_dropped(
    shop: Shop, app: CoverlineApp, client: httpx.AsyncClient
) -> None:
    contract_id = await sold(shop, "test-monthly")
    sandbox: SandboxGateway = app.state.gateway
    [invoice] = sandbox.invoices.values()
    await deliver(
        client, event("evt_unknown_pi", "invoice.paid", renewal_without_its_payments(invoice, "in_nowhere"))
    )
    quote = await shop.call("POST", f"/v1/contracts/{contract_id}/refund-quote", "support")
    assert quote["refund"]["amount"] == 15800
    done = await shop.call(
        "POST", f"/v1/contracts/{contract_id}/cancel", "support", json={"refund": quote["refund"]}
    )
    assert [r["amount"]["amount"] for r in done["refunds"]] == [7900]
    history = await shop.call("GET", f"/v1/contracts/{contract_id}/history", "support")
    [left] = [h for h in history["data"] if h["action"] == "refund_outstanding"]
    assert left["changes"] == {"amount": 7900, "currency": "USD"}
