"""End to end on localstripe, a third-party stateful Stripe server: the production gateway, through
our public API and CLI only. The running app is localstripe's webhook endpoint, so what
localstripe signs and delivers must take effect in our database. Nothing Stripe-side is built by
hand except what a shopper's page would do: create a card (Stripe.js) and pass 3-D Secure.

localstripe has no Prices, no Checkout Sessions and keeps no idempotency keys: `sync-catalog`
makes Plans there (Stripe takes a Plan's id as a price), hosted pages and subscriptions paid by
Stripe.js are proven on the sandbox, and "one charge" holds here because the checkout stores each
Stripe object's id before it confirms it, whatever the server does with the key."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import pytest
import stripe
from sqlalchemy import select

from api.keys import MERCHANT_SCOPES
from billing.tables import LedgerEntryRow, StripeEventRow
from entitlements.catalog import Billing
from entitlements.store.base import create_engine, session_factory
from tests.api.shop import TEST_PLANS
from tests.api.shop import plan_for_tests as plan_like
from tests.live import BIN, ROOT, coverline_server, empty_database, free_port, running, seed_database

SECRET = "whsec_localstripe_test"
API_KEY = "sk_test_localstripe"
T = TypeVar("T")
# A fixed term of twelve months paid monthly: the subscription ends itself at the term's end.
INSTALMENTS = plan_like(
    code="test-instalments", billing=Billing.MONTHLY, term_months=12, waiting_period_days=0
)
PLANS = [*TEST_PLANS, INSTALMENTS]
VISA = "4242424242424242"
DECLINED = "4000000000000341"  # attaches, then every charge is declined
THREE_D_SECURE = "4000002760003184"


class Stack:
    def __init__(self, app: str, stripe_base: str, key: str, database_url: str, env: dict[str, str]) -> None:
        self.app = app
        self.stripe_base = stripe_base
        self.headers = {"Authorization": f"Bearer {key}"}
        self.database_url = database_url
        self.env = env
        self.client = stripe.StripeClient(API_KEY, base_addresses={"api": stripe_base})

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.app + path, headers=self.headers, timeout=30, **kwargs)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def customer(self, name: str = "Åsa Öberg") -> str:
        found = self.call(
            "POST",
            "/v1/customers",
            json={"name": name, "country": "SE", "email": "asa@example.se", "locale": "sv"},
        )
        return str(found["id"])

    def offer(self, customer_id: str, plan_code: str) -> dict[str, Any]:
        """A product of the customer's and a signed offer of the plan for it."""
        product = self.call(
            "POST",
            "/v1/products",
            json={
                "customer_id": customer_id,
                "sku": "P",
                "category": "phone",
                "price": {"amount": 80000, "currency": "USD"},
                "purchase_date": time.strftime("%Y-%m-%d", time.gmtime()),
                "serial": f"LS{time.time_ns()}",
            },
        )
        facts = {
            "category": "phone",
            "sku": "P",
            "price": product["price"],
            "purchase_date": product["purchase_date"],
            "country": "SE",
        }
        offers = self.call("POST", "/v1/offers", json={"product": facts})
        token = next(o["offer_token"] for o in offers["offers"] if o["plan"]["code"] == plan_code)
        return {"offer_token": token, "customer_id": customer_id, "product_id": product["id"]}

    def card(self, number: str) -> str:
        """What Stripe.js does on the page: a payment method from the card's details."""
        params: Any = {
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
        return str(self.client.v1.payment_methods.create(params).id)

    def checkout(self, sale: dict[str, Any], card: str | None, **headers: str) -> httpx.Response:
        body = {**sale, "payment_method": self.card(card)} if card else sale
        return httpx.post(self.app + "/v1/checkouts", json=body, headers=self.headers | headers, timeout=60)

    def contract(self, contract_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/v1/contracts/{contract_id}"))

    def active(self, contract_id: str) -> dict[str, Any]:
        return self.eventually(
            lambda: (c := self.contract(contract_id))["status"] == "active" and c, f"{contract_id} active"
        )

    def eventually(self, check: Callable[[], T | None], what: str, seconds: float = 15) -> T:
        """localstripe delivers each event about a second after the call that caused it."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.2)
        pytest.fail(f"never happened: {what}; events received: {self.events()}")

    def _read(self, statement: Any) -> list[Any]:
        async def read() -> list[Any]:
            engine = create_engine(self.database_url)
            async with session_factory(engine)() as session:
                found = list((await session.execute(statement)).all())
            await engine.dispose()
            return found

        return asyncio.run(read())

    def events(self) -> list[tuple[str, str]]:
        rows = self._read(
            select(StripeEventRow.type, StripeEventRow.outcome).order_by(StripeEventRow.received_at)
        )
        return [(str(t), str(o)) for t, o in rows]

    def ledger(self, contract_id: str) -> list[tuple[str, int]]:
        rows = self._read(
            select(LedgerEntryRow.kind, LedgerEntryRow.amount)
            .where(LedgerEntryRow.contract_id == contract_id)
            .order_by(LedgerEntryRow.id)
        )
        return [(str(k), int(a)) for k, a in rows]

    def webhooks_to(self, url: str) -> None:
        registered = httpx.post(
            f"{self.stripe_base}/_config/webhooks/coverline", data={"url": url, "secret": SECRET}
        )
        assert registered.status_code == 200, registered.text


@pytest.fixture(scope="module")
def stack(database_url: str) -> Iterator[Stack]:
    stripe_base = f"http://127.0.0.1:{free_port()}"
    env = {
        "DATABASE_URL": database_url,
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": stripe_base,
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "COVERLINE_OFFER_KEYS": "ls-1:" + "l" * 40,
        # `coverline worker --until-idle` retries a failing job in a second, not in minutes.
        "COVERLINE_JOB_ATTEMPTS": "3",
        "COVERLINE_JOB_RETRY_SECONDS": "0.2",
        "COVERLINE_JOB_POLL_SECONDS": "0.5",
    }
    localstripe = [str(BIN / "localstripe"), "--port", stripe_base.rsplit(":", 1)[1], "--from-scratch"]
    with running(localstripe, stripe_base + "/v1/customers"), coverline_server(env) as app:
        key = seed_database(database_url, "localstripe", MERCHANT_SCOPES, PLANS)
        stack = Stack(app, stripe_base, key, database_url, {**os.environ, **env})
        stack.webhooks_to(f"{app}/v1/stripe/webhooks")
        yield stack
    empty_database(database_url)


def test_the_catalog_syncs_as_plans_on_a_server_without_prices(stack: Stack) -> None:
    first = stack.cli("stripe", "sync-catalog")
    assert first.returncode == 0, first.stderr
    # The recurring prices (monthly, instalments: one band each of three currencies) are Plans
    # named by their lookup keys; the upfront ones (three plans of three currencies) need no price
    # there.
    assert "6 price(s) created, 0 already there, 9 skipped" in first.stdout
    plan = stack.client.v1.plans.retrieve("coverline.test-monthly.v1.USD.0")
    assert (plan.amount, plan.currency, plan.interval) == (7900, "usd", "month")
    again = stack.cli("stripe", "sync-catalog")
    assert "0 price(s) created, 6 already there, 9 skipped" in again.stdout


def test_an_upfront_sale_charges_once_and_a_cancel_refunds_once(stack: Stack) -> None:
    sale = stack.offer(stack.customer(), "test-screen-guard")
    response = stack.checkout(sale, VISA)
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["mode"], result["payment_status"], result["attempt"]) == ("payment", "succeeded", 1)
    contract_id = result["contract"]["id"]
    stack.active(contract_id)
    stack.eventually(lambda: stack.ledger(contract_id) == [("sale", 7900)], "the sale in the ledger")

    # Asked again (a shopper's double click, a retry after a lost answer): the same answer, no
    # second charge, though localstripe keeps no idempotency keys.
    again = stack.checkout({**sale}, None).json()
    assert (again["payment_intent"], again["payment_status"]) == (result["payment_intent"], "succeeded")
    intents = stack.client.v1.payment_intents.list({"limit": 100}).data
    assert [i.id for i in intents if i.to_dict().get("metadata", {}).get("contract_id") == contract_id] == [
        result["payment_intent"]
    ]

    quote = stack.call("POST", f"/v1/contracts/{contract_id}/refund-quote")
    assert quote["basis"] == "free_look"
    for _ in range(2):  # the second cancel finds it cancelled: nothing is refunded again
        stack.request("POST", f"/v1/contracts/{contract_id}/cancel", json={"refund": quote["refund"]})
    assert stack.contract(contract_id)["status"] == "cancelled"
    refunds = stack.client.v1.refunds.list({"payment_intent": result["payment_intent"]}).data
    assert [r.amount for r in refunds] == [7900]


@pytest.mark.parametrize("plan_code", ["test-screen-guard", "test-monthly"])
def test_checkouts_and_cancels_sent_at_once_charge_once_and_refund_once(stack: Stack, plan_code: str) -> None:
    """A double click, a retry racing the first, with no Idempotency-Key, on a server that keeps
    no idempotency keys either: one Stripe object, one charge; one refund, one cancellation."""
    sale = stack.offer(stack.customer(), plan_code)
    card = stack.card(VISA)
    body = {**sale, "payment_method": card}
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: stack.request("POST", "/v1/checkouts", json=body), range(6)))
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
    contract_id = answers[0].json()["contract"]["id"]
    objects = {
        a.json()["payment_intent"] or a.json()["contract"].get("stripe_subscription_id") for a in answers
    }
    assert len(objects) == 1 and {a.json()["attempt"] for a in answers} == {1}
    intents = stack.client.v1.payment_intents.list({"limit": 100}).data
    ours = [i for i in intents if i.to_dict().get("metadata", {}).get("contract_id") == contract_id]
    subscriptions = stack.client.v1.subscriptions.list({"limit": 100}).data
    theirs = [s for s in subscriptions if s.to_dict().get("metadata", {}).get("contract_id") == contract_id]
    assert len(ours) + len(theirs) == 1
    stack.active(contract_id)
    stack.eventually(lambda: ("sale", 7900) in stack.ledger(contract_id), "the sale in the ledger")

    quote = stack.call("POST", f"/v1/contracts/{contract_id}/refund-quote")
    cancel = {"refund": quote["refund"]}
    with ThreadPoolExecutor(6) as pool:
        cancels = list(
            pool.map(
                lambda _: stack.request("POST", f"/v1/contracts/{contract_id}/cancel", json=cancel), range(6)
            )
        )
    assert sorted(c.status_code for c in cancels)[0] == 200 and {c.status_code for c in cancels} <= {200, 409}
    assert [c.json()["refund"]["amount"]["amount"] for c in cancels if c.status_code == 200] == [7900]
    refunded = stack.eventually(
        lambda: [e for e in stack.ledger(contract_id) if e[0] == "refund"], "the refund in the ledger"
    )
    assert refunded == [("refund", -7900)]
    assert (
        sum(
            r.amount
            for r in stack.client.v1.refunds.list({"limit": 100}).data
            if r.to_dict().get("metadata", {}).get("contract_id") == contract_id
        )
        == 7900
    )


def test_a_subscription_sells_through_the_api_with_a_saved_card(stack: Stack) -> None:
    customer = stack.customer()
    sale = stack.offer(customer, "test-monthly")
    result = stack.checkout(sale, VISA).json()
    assert (result["mode"], result["payment_status"], result["decline_code"]) == (
        "subscription",
        "active",
        None,
    )
    contract = stack.active(result["contract"]["id"])
    assert len(contract["coverage_periods"]) == 1
    sub = stack.client.v1.subscriptions.retrieve(result["subscription"])
    assert sub["items"].data[0].plan.id == "coverline.test-monthly.v1.USD.0"  # the catalog's price
    stack.eventually(lambda: stack.ledger(contract["id"]) == [("sale", 7900)], "the first invoice's sale")

    # A fixed term paid in instalments: the subscription is told when to end.
    term = stack.checkout(stack.offer(customer, "test-instalments"), VISA).json()
    ending = stack.client.v1.subscriptions.retrieve(term["subscription"])
    assert ending.cancel_at is not None
    assert ending.cancel_at > time.time() + 360 * 86400

    # One Stripe customer for one of ours, after three checkouts, with the customer's language.
    listed = stack.client.v1.customers.list({"limit": 100}).data
    mine = [c for c in listed if c.to_dict().get("metadata", {}).get("coverline_customer") == customer]
    assert len(mine) == 1
    assert mine[0].preferred_locales == ["sv"]


def test_a_declined_card_is_recorded_and_another_card_pays_the_same_offer(stack: Stack) -> None:
    for plan_code, declined_status in (
        ("test-screen-guard", "requires_payment_method"),
        ("test-monthly", "incomplete"),
    ):
        sale = stack.offer(stack.customer(), plan_code)
        declined = stack.checkout(sale, DECLINED)
        assert declined.status_code == 201, declined.text
        first = declined.json()
        assert (first["payment_status"], first["decline_code"], first["attempt"]) == (
            declined_status,
            "card_declined",
            1,
        )
        contract_id = first["contract"]["id"]
        history = stack.call("GET", f"/v1/contracts/{contract_id}/history")["data"]
        [entry] = [h for h in history if h["action"] == "payment_declined"]
        assert entry["changes"] == {"attempt": 1, "decline_code": "card_declined"}
        assert "4000" not in json.dumps(history)  # no card data

        paid = stack.checkout(sale, VISA).json()
        assert (paid["attempt"], paid["decline_code"]) == (2, None)
        assert paid["payment_status"] in ("succeeded", "active")
        stack.active(contract_id)


def test_3d_secure_is_finished_on_the_page_and_the_event_activates(stack: Stack) -> None:
    sale = stack.offer(stack.customer(), "test-screen-guard")
    result = stack.checkout(sale, THREE_D_SECURE).json()
    assert result["payment_status"] == "requires_action"
    assert result["client_secret"]
    assert stack.contract(result["contract"]["id"])["status"] == "pending_payment"
    # What Stripe.js does once the shopper has passed the bank's challenge.
    passed = httpx.post(
        f"{stack.stripe_base}/v1/payment_intents/{result['payment_intent']}/_authenticate",
        data={"client_secret": result["client_secret"], "success": "true"},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert passed.status_code == 200, passed.text
    stack.active(result["contract"]["id"])


def test_a_lost_webhook_and_a_decline_in_its_window_are_repaired_by_sync(stack: Stack) -> None:
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
    stack.webhooks_to(f"http://127.0.0.1:{free_port()}/nobody-listens")
    try:
        sale = stack.offer(stack.customer(), "test-screen-guard")
        assert stack.checkout(sale, DECLINED).json()["decline_code"] == "card_declined"
        paid = stack.checkout(sale, VISA).json()
        time.sleep(1.5)  # localstripe sends (to nobody) about a second after the call
    finally:
        stack.webhooks_to(f"{stack.app}/v1/stripe/webhooks")
    contract_id = paid["contract"]["id"]
    assert stack.contract(contract_id)["status"] == "pending_payment"

    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    repaired = stack.cli("stripe", "sync", "--since", since, "--until", until)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "applied" in repaired.stdout
    assert stack.contract(contract_id)["status"] == "active"
    assert stack.ledger(contract_id) == [("sale", 7900)]

    rerun = stack.cli("stripe", "sync", "--since", since, "--until", until)
    assert rerun.returncode == 0
    assert "applied" not in rerun.stdout  # a re-run applies nothing new


def test_reconcile_writes_json_to_stdout_and_logs_to_stderr(stack: Stack) -> None:
    """A sale of its own first: under pytest-xdist the module's other tests may run elsewhere."""
    sold = stack.checkout(stack.offer(stack.customer(), "test-screen-guard"), VISA)
    assert sold.status_code == 201, sold.text
    contract_id = sold.json()["contract"]["id"]
    stack.eventually(lambda: stack.ledger(contract_id) == [("sale", 7900)], "the sale in the ledger")
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    done = stack.cli("reconcile", "--from", since, "--to", until)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["counts"]["matched"] >= 1


def test_a_gateway_error_is_one_line_with_no_traceback(stack: Stack) -> None:
    env = {**stack.env, "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}"}  # nobody there
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "stripe", "sync", "--since", since],
        env=env | {"COVERLINE_LOG_LEVEL": "CRITICAL"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: Stripe")


class HoldingProxy:
    """A small proxy in front of localstripe that passes every call on, but holds back the answer
    to a PaymentIntent's confirmation: Stripe has charged the card and the caller does not know
    it yet. The moment to kill the caller in."""

    def __init__(self, upstream: str) -> None:
        self.confirmed = threading.Event()  # a confirmation reached Stripe
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                answer = httpx.request(
                    self.command, upstream + self.path, headers=headers, content=body, timeout=30
                )
                if self.path.endswith("/confirm"):
                    proxy.confirmed.set()
                    proxy.release.wait(60)
                try:
                    self.send_response(answer.status_code)
                    self.send_header("content-type", answer.headers.get("content-type", "application/json"))
                    self.send_header("content-length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)
                except OSError:  # the caller is gone
                    pass

            do_GET = do_POST = do_DELETE = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HoldingProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()


def test_a_server_killed_while_stripe_answers_completes_on_retry_with_one_charge(stack: Stack) -> None:
    sale = {**stack.offer(stack.customer(), "test-screen-guard"), "payment_method": stack.card(VISA)}
    headers = stack.headers | {"Idempotency-Key": f"order-{time.time_ns()}"}
    settings = {"COVERLINE_IDEMPOTENCY_LEASE_SECONDS": "2", "COVERLINE_LOG_LEVEL": "WARNING"}

    def serve(stripe_base: str) -> tuple[list[str], str, dict[str, str]]:
        port = free_port()
        command = [str(BIN / "coverline"), "serve", "--port", str(port), "--workers", "1"]
        return command, f"http://127.0.0.1:{port}", {**stack.env, **settings, "STRIPE_API_BASE": stripe_base}

    with HoldingProxy(stack.stripe_base) as proxy:
        command, doomed, env = serve(proxy.url)
        with running(command, doomed + "/health", env) as server:
            threading.Thread(
                target=lambda: _quietly(
                    lambda: httpx.post(doomed + "/v1/checkouts", json=sale, headers=headers, timeout=60)
                ),
                daemon=True,
            ).start()
            assert proxy.confirmed.wait(30), "the confirmation never reached Stripe"
            server.send_signal(signal.SIGKILL)
            server.wait(10)

    command, app, env = serve(stack.stripe_base)
    with running(command, app + "/health", env):
        deadline = time.monotonic() + 30
        while True:
            retried = httpx.post(app + "/v1/checkouts", json=sale, headers=headers, timeout=60)
            if retried.status_code != 409 or time.monotonic() > deadline:
                break
            assert retried.json()["type"].endswith("idempotency-in-progress")
            time.sleep(float(retried.headers["retry-after"]))
    assert retried.status_code == 201, retried.text
    result = retried.json()
    assert (result["payment_status"], result["attempt"]) == ("succeeded", 1)
    contract_id = result["contract"]["id"]
    intents = stack.client.v1.payment_intents.list({"limit": 100}).data
    mine = [i for i in intents if i.to_dict().get("metadata", {}).get("contract_id") == contract_id]
    assert [(i.id, i.status) for i in mine] == [(result["payment_intent"], "succeeded")]  # one charge
    stack.active(contract_id)
    stack.eventually(lambda: stack.ledger(contract_id) == [("sale", 7900)], "one sale in the ledger")


def _quietly(call: Callable[[], object]) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server was killed under it
        call()


def test_a_second_payment_is_refunded_by_a_job_and_adds_no_cover(stack: Stack) -> None:
    sale = stack.offer(stack.customer(), "test-screen-guard")
    result = stack.checkout(sale, VISA).json()
    contract_id = result["contract"]["id"]
    before = stack.active(contract_id)["coverage_periods"]
    # Stripe charges the contract a second time (another integration, a replayed page).
    second = stack.client.v1.payment_intents.create(
        {
            "amount": 7900,
            "currency": "usd",
            "payment_method": stack.card(VISA),
            "confirm": True,
            "metadata": {"contract_id": contract_id},
        }
    )
    assert second.status == "succeeded"
    stack.eventually(
        lambda: (
            ("payment_intent.succeeded", "applied: duplicate_payment: refunded by a job") in stack.events()
        ),
        "the second payment seen as a duplicate",
    )
    drained = stack.cli("worker", "--until-idle")
    assert drained.returncode == 0, drained.stderr
    assert "Traceback" not in drained.stdout, drained.stdout
    refunds = stack.client.v1.refunds.list({"payment_intent": second.id}).data
    assert [r.amount for r in refunds] == [7900]
    assert stack.contract(contract_id)["coverage_periods"] == before  # no second term
    assert sorted(stack.ledger(contract_id)) == [
        ("duplicate_payment", 7900),
        ("refund", -7900),
        ("sale", 7900),
    ]
    history = [h["action"] for h in stack.call("GET", f"/v1/contracts/{contract_id}/history")["data"]]
    assert {"duplicate_payment", "refunded"} <= set(history)
    again = stack.cli("worker", "--until-idle")  # nothing is left to refund
    assert again.returncode == 0
    assert len(stack.client.v1.refunds.list({"payment_intent": second.id}).data) == 1

    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    report = json.loads(stack.cli("reconcile", "--from", since, "--to", until).stdout)
    assert report["counts"]["duplicate_payment"] >= 1
    assert second.id in {
        f["stripe_ids"] for f in report["findings"] if f["category"] == "duplicate_payment"
    } or any(second.id in f["stripe_ids"] for f in report["findings"] if f["category"] == "duplicate_payment")


def test_a_hosted_checkout_on_a_server_without_checkout_sessions_is_a_clear_problem(stack: Stack) -> None:
    sale = stack.offer(stack.customer(), "test-monthly")
    hosted = {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/cancel"}
    response = httpx.post(
        stack.app + "/v1/checkouts", json={**sale, "hosted": hosted}, headers=stack.headers, timeout=60
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("hosted-pages-unavailable")
    assert "Checkout Sessions" in problem["detail"]
