"""The real `StripeGateway` against localstripe, a third-party stateful Stripe server, with our
running app registered as its webhook endpoint: what localstripe signs and delivers must take
effect in our database. localstripe has no Prices (`/v1/prices` is 404), no Checkout Sessions
and no idempotency keys, so subscriptions here are plan-based, made with the SDK as an
integration would, and replayed calls are proven against the sandbox gateway instead."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import stripe
from sqlalchemy import select

from api.auth import Scope
from billing.catalog_sync import sync_catalog
from billing.gateway import GatewayError
from billing.reconcile import Reconciliation, reconcile
from billing.stripe_gateway import StripeGateway
from billing.tables import LedgerEntryRow, StripeEventRow
from billing.webhooks import SyncReport, sync_events
from entitlements.money import Money
from entitlements.store.base import create_engine, session_factory
from entitlements.store.unit_of_work import session_units
from tests.api.shop import TEST_PLANS
from tests.live import BIN, coverline_server, empty_database, free_port, running, seed_database

SECRET = "whsec_localstripe_test"
API_KEY = "sk_test_localstripe"
T = TypeVar("T")


class Stack:
    def __init__(self, app: str, stripe_base: str, key: str, database_url: str) -> None:
        self.app = app
        self.stripe_base = stripe_base
        self.headers = {"Authorization": f"Bearer {key}"}
        self.database_url = database_url
        self.client = stripe.StripeClient(API_KEY, base_addresses={"api": stripe_base})

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, self.app + path, headers=self.headers, timeout=30, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def pending_contract(self, plan_code: str) -> dict[str, Any]:
        customer = self.call(
            "POST", "/v1/customers", json={"name": "Åsa Öberg", "country": "SE", "email": "asa@example.se"}
        )
        product = self.call(
            "POST",
            "/v1/products",
            json={
                "customer_id": customer["id"],
                "sku": "P",
                "category": "phone",
                "price": {"amount": 80000, "currency": "USD"},
                "purchase_date": time.strftime("%Y-%m-%d"),
                "serial": f"LS{time.time_ns()}",
            },
        )
        offer = {
            "category": "phone",
            "sku": "P",
            "price": product["price"],
            "purchase_date": product["purchase_date"],
            "country": "SE",
        }
        offers = self.call("POST", "/v1/offers", json={"product": offer})
        token = next(o["offer_token"] for o in offers["offers"] if o["plan"]["code"] == plan_code)
        return {"token": token, "customer_id": customer["id"], "product_id": product["id"]}

    def card(self, number: str) -> str:
        method = self.client.v1.payment_methods.create(
            {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}  # type: ignore[typeddict-item]
        )
        return str(method.id)

    def eventually(self, check: Callable[[], T | None], what: str, seconds: float = 15) -> T:
        """localstripe delivers each event about a second after the call that caused it."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.25)
        pytest.fail(f"never happened: {what}; events received: {self.events()}")

    def events(self) -> list[tuple[str, str]]:
        async def read() -> list[tuple[str, str]]:
            engine = create_engine(self.database_url)
            async with session_factory(engine)() as session:
                rows = await session.execute(
                    select(StripeEventRow.type, StripeEventRow.outcome).order_by(StripeEventRow.received_at)
                )
                found = [(str(t), str(o)) for t, o in rows]
            await engine.dispose()
            return found

        return asyncio.run(read())

    def ledger(self) -> list[LedgerEntryRow]:
        async def read() -> list[LedgerEntryRow]:
            engine = create_engine(self.database_url)
            async with session_factory(engine)() as session:
                rows = list(await session.scalars(select(LedgerEntryRow).order_by(LedgerEntryRow.id)))
            await engine.dispose()
            return rows

        return asyncio.run(read())


@pytest.fixture(scope="module")
def stack(database_url: str) -> Iterator[Stack]:
    stripe_base = f"http://127.0.0.1:{free_port()}"
    env = {
        "DATABASE_URL": database_url,
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": stripe_base,
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "COVERLINE_OFFER_KEYS": "ls-1:" + "l" * 40,
    }
    localstripe = [str(BIN / "localstripe"), "--port", stripe_base.rsplit(":", 1)[1], "--from-scratch"]
    with running(localstripe, stripe_base + "/v1/customers"), coverline_server(env) as app:
        registered = httpx.post(
            f"{stripe_base}/_config/webhooks/coverline",
            data={"url": f"{app}/v1/stripe/webhooks", "secret": SECRET},
        )
        assert registered.status_code == 200, registered.text
        key = seed_database(database_url, "localstripe", list(Scope), TEST_PLANS)
        yield Stack(app, stripe_base, key, database_url)
    empty_database(database_url)


def test_checkout_charges_a_card_and_the_signed_event_activates_the_contract(stack: Stack) -> None:
    sale = stack.pending_contract("test-screen-guard")
    result = stack.call(
        "POST",
        "/v1/checkouts",
        json={
            "offer_token": sale["token"],
            "customer_id": sale["customer_id"],
            "product_id": sale["product_id"],
            "payment_method": stack.card("4242424242424242"),
        },
    )
    assert result["payment_status"] == "succeeded"
    contract_id = result["contract"]["id"]
    stack.eventually(
        lambda: stack.call("GET", f"/v1/contracts/{contract_id}")["status"] == "active",
        "payment_intent.succeeded applied",
    )
    entries = stack.eventually(
        lambda: [e for e in stack.ledger() if e.stripe_payment_intent == result["payment_intent"]],
        "the sale in the ledger",
    )
    assert [(e.kind, e.amount, e.currency) for e in entries] == [("sale", 7900, "USD")]

    # A partial refund through the same gateway. (localstripe sends no refund events and ignores
    # Idempotency-Key: the refund webhooks and replays are proven against the sandbox.)
    gateway = StripeGateway(API_KEY, api_base=stack.stripe_base)
    refund = asyncio.run(
        gateway.refund(
            payment_intent=result["payment_intent"],
            amount=Money(2000, "USD"),
            contract_id=contract_id,
            key=f"refund:{contract_id}",
        )
    )
    assert (refund.status, refund.amount) == ("succeeded", Money(2000, "USD"))
    charge = stack.client.v1.payment_intents.retrieve(result["payment_intent"])
    assert charge.status == "succeeded"


def test_a_declined_card_is_a_declined_problem_not_a_charge(stack: Stack) -> None:
    """localstripe declines 4000000000000002 when it is attached to a customer (a PaymentIntent
    confirmed with it unattached succeeds there), so the decline is provoked at attach and
    passed through the gateway's error mapping."""
    gateway = StripeGateway(API_KEY, api_base=stack.stripe_base)
    customer = asyncio.run(gateway.ensure_customer(customer_id="cus_declines", name="D", email=None))
    method = stack.card("4000000000000002")
    with pytest.raises(GatewayError) as declined:
        asyncio.run(
            gateway._call(gateway.client.v1.payment_methods.attach_async(method, {"customer": customer}))
        )
    assert declined.value.declined
    assert isinstance(declined.value.__cause__, stripe.CardError)


def test_a_plan_based_subscription_with_a_paid_invoice_activates_the_contract(stack: Stack) -> None:
    sale = stack.pending_contract("test-monthly")
    contract = stack.call(
        "POST",
        "/v1/contracts",
        json={
            "offer_token": sale["token"],
            "customer_id": sale["customer_id"],
            "product_id": sale["product_id"],
        },
    )
    client = stack.client
    customer = client.v1.customers.create({"name": "Åsa Öberg"})
    method = stack.card("4242424242424242")
    client.v1.payment_methods.attach(method, {"customer": customer.id})
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": method}})
    plan = client.v1.plans.create(
        {"amount": 999, "currency": "usd", "interval": "month", "product": {"name": "Coverline test-monthly"}}
    )  # type: ignore[typeddict-item]
    subscription = client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"plan": plan.id}], "metadata": {"contract_id": contract["id"]}}  # type: ignore[typeddict-item]
    )
    assert subscription.status == "active"
    activated = stack.eventually(
        lambda: (c := stack.call("GET", f"/v1/contracts/{contract['id']}"))["status"] == "active" and c,
        "invoice paid applied",
    )
    assert len(activated["coverage_periods"]) == 1


def test_catalog_sync_meets_localstripes_missing_prices(stack: Stack) -> None:
    """localstripe answers 404 on /v1/prices, so the sync reports a gateway error there; the
    sync itself is proven idempotent against the sandbox (tests/billing/test_catalog_sync.py)."""
    gateway = StripeGateway(API_KEY, api_base=stack.stripe_base)
    with pytest.raises(GatewayError):
        asyncio.run(sync_catalog(gateway, TEST_PLANS[:1]))


def test_a_sync_reads_localstripes_events_and_applies_nothing_twice(stack: Stack) -> None:
    """Every event localstripe has (listed through the SDK, paged) goes through the handler; the
    ones that arrived by webhook are duplicates, so nothing changes."""
    gateway = StripeGateway(API_KEY, api_base=stack.stripe_base)
    before = [(e.entry_key, e.amount) for e in stack.ledger()]

    async def sync() -> SyncReport:
        engine = create_engine(stack.database_url)
        try:
            return await sync_events(
                session_units(session_factory(engine)),
                gateway,
                dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
            )
        finally:
            await engine.dispose()

    report = asyncio.run(sync())
    assert report.seen > 0
    assert report.applied == 0
    assert [(e.entry_key, e.amount) for e in stack.ledger()] == before


def test_reconciliation_reads_localstripes_balance_transactions(stack: Stack) -> None:
    gateway = StripeGateway(API_KEY, api_base=stack.stripe_base)

    async def run() -> Reconciliation:
        engine = create_engine(stack.database_url)
        try:
            async with session_factory(engine)() as session:
                now = dt.datetime.now(dt.UTC)
                return await reconcile(
                    session, gateway, now - dt.timedelta(hours=1), now + dt.timedelta(minutes=1)
                )
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    assert report.counts["matched"] >= 1  # the checkout's charge, found by its charge or PaymentIntent id
    assert report.totals
