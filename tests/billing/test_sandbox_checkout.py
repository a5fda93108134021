"""offer → checkout → paid → covered → a month later renewed → declined → grace → lapsed,
through the sandbox gateway and the same signed-webhook path Stripe's events take."""

import asyncio
import datetime as dt
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select

from api.app import CoverlineApp
from api.routes.billing import deliver_sandbox_events
from billing.sandbox import SandboxGateway
from billing.tables import LedgerEntryRow, StripeEventRow
from entitlements.store.tables import ContractRow
from tests.api.shop import Shop, publish_test_plans
from tests.conftest import Keys


@pytest.fixture
async def shop(client: httpx.AsyncClient, app: CoverlineApp, keys: Keys) -> Shop:
    await publish_test_plans(app)
    return Shop(client, keys)


async def test_an_upfront_plan_is_paid_and_covered(shop: Shop, app: CoverlineApp) -> None:
    result = await shop.checkout("test-screen-guard", "pm_card_visa")
    assert (result["mode"], result["payment_status"]) == ("payment", "succeeded")
    assert result["payment_intent"].startswith("pi_")
    contract = await shop.call("GET", f"/v1/contracts/{result['contract']['id']}", "support")
    assert contract["status"] == "active"  # the signed payment_intent.succeeded event was applied
    assert len(contract["coverage_periods"]) == 1
    assert (await shop.check(serial=result["serial"]))["covered"] is True
    async with app.state.db.sessions() as session:
        ledger = list(await session.scalars(select(LedgerEntryRow)))
    assert [(e.kind, e.amount, e.currency, e.stripe_payment_intent) for e in ledger] == [
        ("fee", -(7900 * 29 // 1000 + 30), "USD", result["payment_intent"]),  # Stripe's, from the charge
        ("sale", 7900, "USD", result["payment_intent"]),
    ]


async def test_a_declined_card_leaves_the_contract_pending_until_another_card_pays(
    shop: Shop, app: CoverlineApp
) -> None:
    request, _ = await shop.checkout_request("test-screen-guard")
    result = await shop.call(
        "POST", "/v1/checkouts", "checkout", json={**request, "payment_method": "pm_card_chargeDeclined"}
    )
    assert (result["payment_status"], result["decline_code"], result["attempt"]) == (
        "requires_payment_method",
        "card_declined",
        1,
    )
    contract_id = result["contract"]["id"]
    assert (await shop.call("GET", f"/v1/contracts/{contract_id}", "support"))["status"] == "pending_payment"
    history = await shop.call("GET", f"/v1/contracts/{contract_id}/history", "support")
    assert {"payment_failed", "payment_declined"} <= {h["action"] for h in history["data"]}

    # The same offer, at once, with another card: a second attempt, a PaymentIntent of its own.
    paid = await shop.call(
        "POST", "/v1/checkouts", "checkout", json={**request, "payment_method": "pm_card_visa"}
    )
    assert (paid["payment_status"], paid["decline_code"], paid["attempt"]) == ("succeeded", None, 2)
    assert paid["payment_intent"] != result["payment_intent"]
    assert (await shop.call("GET", f"/v1/contracts/{contract_id}", "support"))["status"] == "active"
    # Asked again after it paid: the paid attempt's answer, nothing charged again.
    again = await shop.call(
        "POST", "/v1/checkouts", "checkout", json={**request, "payment_method": "pm_card_visa"}
    )
    assert (again["attempt"], again["payment_intent"]) == (2, paid["payment_intent"])
    gateway: SandboxGateway = app.state.gateway
    assert [pi.status for pi in gateway.payment_intents.values()] == [
        "requires_payment_method",
        "succeeded",
    ]


async def test_one_offer_checked_out_many_times_at_once_is_one_sale_and_one_charge(
    shop: Shop, client: httpx.AsyncClient, keys: Keys, app: CoverlineApp
) -> None:
    """A double click or a retry racing the first: each answer is the same sale."""
    request, _ = await shop.checkout_request("test-screen-guard")
    answers = await asyncio.gather(
        *(client.post("/v1/checkouts", json=request, headers=keys.auth("checkout")) for _ in range(8))
    )
    assert {a.status_code for a in answers} <= {200, 201}, [a.text for a in answers if a.status_code >= 300]
    assert len({a.json()["contract"]["id"] for a in answers}) == 1
    gateway: SandboxGateway = app.state.gateway
    assert [pi.status for pi in gateway.payment_intents.values()] == ["succeeded"]


async def test_3d_secure_waits_for_the_page_then_the_event_activates(shop: Shop, app: CoverlineApp) -> None:
    result = await shop.checkout("test-screen-guard", "pm_card_threeDSecure2Required")
    assert (result["payment_status"], result["client_secret"] is not None) == ("requires_action", True)
    contract_id = result["contract"]["id"]
    assert (await shop.call("GET", f"/v1/contracts/{contract_id}", "support"))["status"] == "pending_payment"
    gateway: SandboxGateway = app.state.gateway
    assert gateway.pay_on_page(result["payment_intent"]) == "succeeded"  # Stripe.js, authenticated
    await deliver_sandbox_events(app.state.gateway, app.state.db, app.state.settings)
    assert (await shop.call("GET", f"/v1/contracts/{contract_id}", "support"))["status"] == "active"


async def test_a_retried_checkout_never_charges_twice(shop: Shop, app: CoverlineApp) -> None:
    request, _ = await shop.checkout_request("test-screen-guard")
    first = await shop.call("POST", "/v1/checkouts", "checkout", json=request)
    again = await shop.call("POST", "/v1/checkouts", "checkout", json=request)
    assert first["contract"]["id"] == again["contract"]["id"]
    gateway: SandboxGateway = app.state.gateway
    assert len(gateway.payment_intents) == 1


async def test_the_gateway_is_called_with_the_pending_contract_committed_and_nothing_locked(
    shop: Shop, app: CoverlineApp, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway: SandboxGateway = app.state.gateway
    create = gateway.create_payment_intent
    seen: list[str] = []

    async def observed(**call: Any) -> Any:
        # From a connection of its own: the contract is there, and taking its row and its
        # product's without waiting works, so no transaction holds them across the call.
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            async with connection.transaction():
                seen.append(
                    await connection.fetchval(
                        "SELECT c.status FROM contracts c JOIN products p ON p.id = c.product_id"
                        " WHERE c.id = $1 FOR UPDATE NOWAIT",
                        call["contract_id"],
                    )
                )
        finally:
            await connection.close()
        return await create(**call)

    monkeypatch.setattr(gateway, "create_payment_intent", observed)
    result = await shop.checkout("test-screen-guard", "pm_card_visa")
    assert seen == ["pending_payment"]
    assert result["payment_status"] == "succeeded"


async def test_renewal_decline_grace_and_lapse(shop: Shop, app: CoverlineApp) -> None:
    result = await shop.checkout("test-monthly", "pm_card_visa")
    assert (result["mode"], result["payment_status"]) == ("subscription", "active")
    contract_id, serial = result["contract"]["id"], result["serial"]
    assert (await shop.check(serial=serial))["covered"] is True

    renewed = await shop.call("POST", "/v1/sandbox/clock/advance", json={"days": 31})
    now = renewed["now"]
    contract = await shop.call("GET", f"/v1/contracts/{contract_id}", "support")
    assert len(contract["coverage_periods"]) == 2
    assert (await shop.check(serial=serial, at=now))["covered"] is True

    declined = await shop.call(
        "POST", "/v1/sandbox/clock/advance", json={"days": 31, "renewal_card": "pm_card_chargeDeclined"}
    )
    in_grace = await shop.check(serial=serial, at=declined["now"])
    assert (in_grace["covered"], in_grace["reason"]) == (False, "past_due_grace")

    lapsed = await shop.call("POST", "/v1/sandbox/clock/advance", json={"days": 20})
    after = await shop.check(serial=serial, at=lapsed["now"])
    assert (after["covered"], after["reason"]) == (False, "lapsed")
    assert (await shop.call("GET", f"/v1/contracts/{contract_id}", "support"))["status"] == "lapsed"

    async with app.state.db.sessions() as session:
        kinds = [e.kind for e in await session.scalars(select(LedgerEntryRow).order_by(LedgerEntryRow.id))]
        types = {e.type for e in await session.scalars(select(StripeEventRow))}
    assert kinds == ["fee", "sale", "fee", "renewal"]
    assert {
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.upcoming",
        "customer.subscription.deleted",
    } <= types


async def test_the_clocks_are_test_clocks_a_later_checkout_is_not_in_the_future(
    shop: Shop, app: CoverlineApp
) -> None:
    """Advancing moves the customers there are, as a Stripe test clock moves its customers: a
    customer created after is at the real time, so their sale is not booked in the future (which
    left deferred revenue negative after the demo)."""
    first = await shop.checkout("test-monthly")
    moved = await shop.call(
        "POST",
        "/v1/sandbox/clock/advance",
        json={"days": 40, "customer_id": first["contract"]["customer_id"]},
    )
    assert dt.datetime.fromisoformat(moved["now"]) > dt.datetime.now(dt.UTC) + dt.timedelta(days=39)
    later = await shop.checkout("test-monthly")
    async with app.state.db.sessions() as session:
        booked = {
            (e.contract_id, e.kind): e.occurred_at
            for e in await session.scalars(select(LedgerEntryRow).where(LedgerEntryRow.kind != "fee"))
        }
    assert booked[(later["contract"]["id"], "sale")] < dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    assert (first["contract"]["id"], "renewal") in booked  # the first customer's clock renewed them
    assert (later["contract"]["id"], "renewal") not in booked
    other = await shop.call("POST", "/v1/sandbox/clock/advance", json={"days": 1})  # every customer's clock
    assert dt.datetime.fromisoformat(other["now"]) > dt.datetime.fromisoformat(moved["now"])
    report = await shop.call("GET", "/v1/finance/deferred-revenue", "finance")
    assert all(line["deferred"]["amount"] >= 0 for line in report["data"]), report


async def test_the_clock_is_the_sandbox_only(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await client.post("/v1/sandbox/clock/advance", json={"days": 1}, headers=keys.auth("support"))
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("plan_code", "linked"), [("test-screen-guard", "payment_intent"), ("test-monthly", "subscription")]
)
async def test_the_hosted_page_alternative(
    shop: Shop, app: CoverlineApp, plan_code: str, linked: str
) -> None:
    request, serial = await shop.checkout_request(plan_code, card=None)
    request["hosted"] = {
        "success_url": "https://shop.example/thanks",
        "cancel_url": "https://shop.example/cart",
    }
    result = await shop.call("POST", "/v1/checkouts", "checkout", json=request)
    assert (result["mode"], result["payment_status"]) == ("hosted", "unpaid")
    # The sandbox's own page, at the app's public address: it opens in a browser as Stripe's does.
    assert result["checkout_url"].startswith(f"{app.state.settings.public_url}/sandbox/checkout/cs_")
    assert (await shop.check(serial=serial))["reason"] == "pending_payment"
    session_id = result["checkout_url"].rsplit("/", 1)[1]
    paid = await shop.call("POST", f"/v1/sandbox/checkout-sessions/{session_id}/pay", "admin", json={})
    assert paid["status"] == "complete"
    contract = await shop.call("GET", f"/v1/contracts/{result['contract']['id']}", "support")
    assert contract["status"] == "active"
    assert len(contract["coverage_periods"]) == 1  # the session's completion recorded nothing twice
    assert (await shop.check(serial=serial))["covered"] is True
    async with app.state.db.sessions() as session:
        row = await session.get(ContractRow, result["contract"]["id"])
    assert row is not None
    assert getattr(row, f"stripe_{linked}_id") is not None
