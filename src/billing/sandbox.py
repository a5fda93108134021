"""An offline, Stripe-shaped gateway for the embedded default and the demo.

It keeps customers, PaymentIntents, subscriptions, invoices and refunds in memory, as the Structs
the webhook reads (`billing.stripe_objects`), has a clock that can be advanced to produce renewals
(paid or failed) and lapses, and emits Stripe-format events signed with the webhook secret into
the same webhook handler Stripe's events reach.
Test cards: `pm_card_visa` pays; `pm_card_chargeDeclined` and `pm_card_insufficientFunds` fail;
`pm_card_threeDSecure2Required` pays once the page has authenticated it (3-D Secure).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec

from billing import stripe_objects as so
from billing.catalog_sync import PriceSpec
from billing.finance.reconcile import BalanceTransaction
from billing.gateway import (
    CheckoutSession,
    GatewayError,
    PaymentIntent,
    Refund,
    Subscription,
    WebhookEndpoint,
)
from billing.webhooks.signatures import sign
from entitlements.coverage import add_months
from entitlements.errors import NotFound
from entitlements.money import Money

GOOD_CARD = "pm_card_visa"
DECLINES = {
    "pm_card_chargeDeclined": "card_declined",
    "pm_card_insufficientFunds": "insufficient_funds",
}
AUTHENTICATES = {"pm_card_threeDSecure2Required"}  # 3-D Secure: the page must authenticate
RETRY_DAYS = (3, 5, 7)  # failed renewals are retried, then the subscription is cancelled
API_VERSION = "2026-10-28.endive"

Deliver = Callable[[bytes, str], Awaitable[None]]


def _id(prefix: str, *parts: str) -> str:
    return f"{prefix}_sbx{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:20]}"


class _Billing(msgspec.Struct, kw_only=True):
    """What the sandbox keeps of a subscription beyond Stripe's fields: how to bill it."""

    price: PriceSpec
    price_id: str
    failures: int = 0  # renewals refused in a row
    open_invoice: str | None = None


class _Page(msgspec.Struct, frozen=True):
    """What the sandbox keeps of a hosted checkout page beyond Stripe's fields."""

    price: PriceSpec
    key: str


class SandboxGateway:
    sandbox = True

    def __init__(
        self, webhook_secret: str, now: Callable[[], dt.datetime] | None = None, public_url: str | None = None
    ) -> None:
        self.webhook_secret = webhook_secret
        # Where the sandbox's own pages (a hosted checkout, the card page) are served: the app's
        # public address, so the URLs it hands out open in a browser as Stripe's do.
        self.pages = f"{public_url.rstrip('/')}/sandbox/" if public_url else "sandbox://"
        self._real_now = now or (lambda: dt.datetime.now(dt.UTC))
        # Test clocks, as Stripe's: each customer lives on a clock of their own, which starts at
        # the real time when they are created. Advancing moves the customers there are, and
        # nobody created after (their checkouts are not shifted into the future).
        self.clocks: dict[str, dt.timedelta] = {}
        self._payer: dict[str, str] = {}  # the customer who paid each PaymentIntent
        self.customers: dict[str, so.Customer] = {}
        self.card_return_urls: dict[str, str] = {}  # by customer: where the card page goes back to
        self.payment_intents: dict[str, so.PaymentIntent] = {}
        self.subscriptions: dict[str, so.Subscription] = {}
        self._billing: dict[str, _Billing] = {}  # by subscription
        self.invoices: dict[str, so.Invoice] = {}
        self.refunds: dict[str, so.Refund] = {}
        self.prices: dict[str, so.Price] = {}  # by lookup_key
        self.checkout_sessions: dict[str, so.CheckoutSession] = {}
        self._pages: dict[str, _Page] = {}  # by Checkout Session
        self.webhook_endpoints: dict[str, so.WebhookEndpoint] = {}
        self.balance: list[BalanceTransaction] = []
        self.outbox: list[so.Event] = []
        self.log: list[so.Event] = []  # every event ever emitted, as Stripe keeps them
        self.renewal_card: str | None = None  # overrides customers' cards for renewals (the demo's decline)
        self._by_key: dict[str, Any] = {}
        self._sequence = itertools.count(1)

    # --- clock and events ------------------------------------------------------------------------

    def now(self, customer: str | None = None) -> dt.datetime:
        """The time on a customer's test clock (the real time for a customer of no clock)."""
        return self._real_now() + self.clocks.get(customer or "", dt.timedelta())

    def _emit(self, event_type: str, obj: msgspec.Struct, owner: str | None, key: str) -> None:
        """An event carrying `obj` as it is now, dated by its owner's clock (the customer's)."""
        created = int(self.now(owner).timestamp())
        digest = hashlib.sha256(key.encode()).hexdigest()[:8]
        event_id = f"evt_sbx{next(self._sequence):08d}{digest}"
        event = so.event_of(event_id, event_type, created, obj, api_version=API_VERSION)
        self.outbox.append(event)
        self.log.append(event)

    async def deliver(self, to: Deliver) -> int:
        """Deliver the pending events, signed now; a failed delivery is kept and tried again
        with the next delivery, as Stripe retries."""
        pending, self.outbox = self.outbox, []
        delivered = 0
        for event in pending:
            raw = msgspec.json.encode(event)
            try:
                await to(raw, sign(raw, self.webhook_secret, int(self._real_now().timestamp())))
            except Exception:
                self.outbox.append(event)
            else:
                delivered += 1
        return delivered

    # --- the port --------------------------------------------------------------------------------

    def _once(self, key: str, make: Callable[[], Any]) -> Any:
        """Stripe's idempotency: the same key returns the first result."""
        if key not in self._by_key:
            self._by_key[key] = make()
        return self._by_key[key]

    async def create_customer(
        self, *, customer_id: str, name: str, email: str | None, locales: list[str]
    ) -> str:
        stripe_id = _id("cus", customer_id)
        self.customers.setdefault(
            stripe_id, so.Customer(id=stripe_id, name=name, email=email, preferred_locales=locales)
        )
        return stripe_id

    async def update_customer(
        self, stripe_customer: str, *, name: str, email: str | None, locales: list[str], key: str
    ) -> None:
        # Kept per process, as all of the sandbox: a worker's sandbox may not have met this
        # customer, whom Stripe would know.
        customer = self._customer(stripe_customer)
        customer.name, customer.email, customer.preferred_locales = name, email, locales

    async def attach_payment_method(self, stripe_customer: str, payment_method: str, *, key: str) -> None:
        self._customer(stripe_customer).invoice_settings.default_payment_method = payment_method

    def _customer(self, stripe_customer: str) -> so.Customer:
        return self.customers.setdefault(stripe_customer, so.Customer(id=stripe_customer))

    def _card(self, customer: str) -> str | None:
        return self._customer(customer).invoice_settings.default_payment_method

    def _charge(self, card: str | None) -> str | None:
        """The decline code, or None when the card pays."""
        if card is None:
            return "no_payment_method"
        return DECLINES.get(card)

    async def create_payment_intent(
        self, *, amount: Money, customer: str, contract_id: str, payment_method: str | None, key: str
    ) -> PaymentIntent:
        def make() -> PaymentIntent:
            pi_id = _id("pi", key)
            pi = so.PaymentIntent(
                id=pi_id,
                amount=amount.amount,
                currency=amount.currency.lower(),
                customer=customer,
                metadata={"contract_id": contract_id},
                client_secret=f"{pi_id}_secret_sandbox",
                payment_method=payment_method,
                status="requires_payment_method" if payment_method is None else "requires_confirmation",
                created=int(self.now(customer).timestamp()),
            )
            self.payment_intents[pi_id] = pi
            return PaymentIntent.of(pi)

        result: PaymentIntent = self._once(key, make)
        return result

    async def confirm_payment_intent(self, payment_intent: str, *, key: str) -> PaymentIntent:
        def confirm() -> PaymentIntent:
            pi = self._intent(payment_intent)
            if pi.status == "requires_confirmation":
                self._confirm(pi, pi.payment_method)
            return PaymentIntent.of(pi)

        result: PaymentIntent = self._once(key, confirm)
        return result

    async def payment_intent(self, payment_intent: str) -> PaymentIntent:
        return PaymentIntent.of(self._intent(payment_intent))

    def _intent(self, pi_id: str) -> so.PaymentIntent:
        pi = self.payment_intents.get(pi_id)
        if pi is None:
            raise GatewayError(f"no PaymentIntent {pi_id}")
        return pi

    def _confirm(self, pi: so.PaymentIntent, card: str | None, *, authenticated: bool = False) -> None:
        assert pi.customer is not None  # every PaymentIntent here is made for a customer
        pi.payment_method = card
        if card in AUTHENTICATES and not authenticated:
            pi.status = "requires_action"  # the page authenticates it (Stripe.js)
            pi.next_action = so.NextAction(type="use_stripe_sdk")
            return
        pi.next_action = None
        decline = self._charge(card)
        if decline:
            pi.status = "requires_payment_method"
            pi.last_payment_error = so.PaymentError(code="card_declined", decline_code=decline)
            self._emit("payment_intent.payment_failed", pi, pi.customer, pi.id)
            return
        pi.status = "succeeded"
        pi.latest_charge = _id("ch", pi.id)
        self._charged(pi.latest_charge, pi.id, pi.amount, pi.currency, pi.customer)
        self._customer(pi.customer).invoice_settings.default_payment_method = card
        self._emit("payment_intent.succeeded", pi, pi.customer, pi.id)

    def pay_on_page(self, pi_id: str, card: str | None = None) -> str:
        """What the checkout page does with Stripe.js: confirm with a card (or, after 3-D
        Secure, with the one it has), authenticated."""
        pi = self._intent(pi_id)
        if pi.status != "succeeded":
            self._confirm(pi, card or pi.payment_method, authenticated=True)
        return str(pi.status)

    async def create_subscription(
        self,
        *,
        customer: str,
        price: PriceSpec,
        contract_id: str,
        attempt: int,
        saved_payment_method: bool,
        cancel_at: dt.datetime | None,
        key: str,
    ) -> Subscription:
        price_id, _ = await self.ensure_price(price)
        assert price_id is not None
        assert price.interval_months is not None

        def make() -> Subscription:
            sub_id = _id("sub", key)
            now = self.now(customer)
            sub = so.Subscription(
                id=sub_id,
                customer=customer,
                status="incomplete",
                metadata={"contract_id": contract_id, "attempt": str(attempt)},
                cancel_at=so.timestamp(cancel_at),
                cancellation_details=so.CancellationDetails(),
                billing_mode=so.BillingMode(type="flexible"),
                items=so.StripeList(data=[self._item(sub_id, price_id, price, now)]),
            )
            self.subscriptions[sub_id] = sub
            self._billing[sub_id] = _Billing(price=price, price_id=price_id)
            invoice = self._invoice(sub, "subscription_create", now)
            secret = f"{invoice.id}_secret_sandbox"
            if not saved_payment_method:
                self._emit("customer.subscription.created", sub, customer, sub_id)
                return Subscription(sub_id, sub.status, secret)
            decline = None if self._pay(sub, invoice) else self._charge(self._card(customer))
            return Subscription(sub_id, sub.status, None if decline is None else secret, decline)

        result: Subscription = self._once(key, make)
        return result

    @staticmethod
    def _item(sub_id: str, price_id: str, price: PriceSpec, start: dt.datetime) -> so.SubscriptionItem:
        months = price.interval_months or 0
        return so.SubscriptionItem(
            id=f"si_{sub_id[4:]}",
            current_period_start=int(start.timestamp()),
            current_period_end=int(add_months(start, months).timestamp()),
            price=so.Price(
                id=price_id,
                lookup_key=price.lookup_key,
                unit_amount=price.unit_amount,
                currency=price.currency.lower(),
                recurring=so.Recurring(interval="month", interval_count=months),
            ),
        )

    @staticmethod
    def _current_period(sub: so.Subscription) -> tuple[int, int]:
        assert sub.items is not None  # every subscription here has its one item, with its period
        item = sub.items.data[0]
        assert item.current_period_start is not None
        assert item.current_period_end is not None
        return item.current_period_start, item.current_period_end

    @staticmethod
    def _parent(sub: so.Subscription) -> so.InvoiceParent:
        details = so.SubscriptionDetails(subscription=sub.id, metadata=dict(sub.metadata))
        return so.InvoiceParent(type="subscription_details", subscription_details=details)

    def _invoice(self, sub: so.Subscription, reason: str, start: dt.datetime) -> so.Invoice:
        billing = self._billing[sub.id]
        amount = billing.price.unit_amount
        start_at, end_at = self._current_period(sub)
        invoice_id = _id("in", sub.id, str(start_at))
        span = so.LinePeriod(start=start_at, end=end_at)
        line = so.InvoiceLine(
            amount=amount,
            period=span,
            pricing=so.Pricing(price_details=so.PriceDetails(price=billing.price_id)),
        )
        invoice = so.Invoice(
            id=invoice_id,
            customer=sub.customer,
            billing_reason=reason,
            status="open",
            amount_due=amount,
            amount_paid=0,
            currency=billing.price.currency.lower(),
            period_start=start_at,
            period_end=end_at,
            parent=self._parent(sub),
            lines=so.StripeList(data=[line]),
            payments=so.StripeList(),
            created=int(start.timestamp()),
        )
        self.invoices[invoice_id] = invoice
        billing.open_invoice = invoice_id
        return invoice

    def _pay(self, sub: so.Subscription, invoice: so.Invoice) -> bool:
        assert sub.customer is not None
        billing = self._billing[sub.id]
        card = self._card(sub.customer)
        if invoice.billing_reason == "subscription_cycle" and self.renewal_card is not None:
            card = self.renewal_card
        invoice.attempt_count += 1
        if self._charge(card):
            billing.failures += 1
            if sub.status == "active":
                sub.status = "past_due"
                self._emit("customer.subscription.updated", sub, sub.customer, sub.id)
            self._emit("invoice.payment_failed", invoice, sub.customer, invoice.id)
            return False
        pi_id = _id("pi", invoice.id)
        self._charged(_id("ch", pi_id), pi_id, invoice.amount_due, invoice.currency, sub.customer)
        invoice.status = "paid"
        invoice.amount_paid = invoice.amount_due
        paid_by = so.PaymentTarget(type="payment_intent", payment_intent=pi_id)
        invoice.payments = so.StripeList(
            data=[so.InvoicePayment(amount_paid=invoice.amount_due, status="paid", payment=paid_by)]
        )
        billing.failures = 0
        billing.open_invoice = None
        was = sub.status
        sub.status = "active"
        if was != "active":
            kind = "customer.subscription.updated" if was != "incomplete" else "customer.subscription.created"
            self._emit(kind, sub, sub.customer, sub.id)
        self._emit("invoice.paid", invoice, sub.customer, invoice.id)
        return True

    async def create_checkout_session(
        self,
        *,
        customer: str,
        price: PriceSpec,
        contract_id: str,
        success_url: str,
        cancel_url: str,
        expires_at: dt.datetime | None,
        key: str,
    ) -> CheckoutSession:
        await self.ensure_price(price)

        def make() -> CheckoutSession:
            session_id = _id("cs", key)
            self.checkout_sessions[session_id] = so.CheckoutSession(
                id=session_id,
                mode="payment" if price.interval_months is None else "subscription",
                customer=customer,
                metadata={"contract_id": contract_id},
                status="open",
                payment_status="unpaid",
                success_url=success_url,
                expires_at=so.timestamp(expires_at),
            )
            self._pages[session_id] = _Page(price, key)
            return CheckoutSession(session_id, f"{self.pages}checkout/{session_id}")

        result: CheckoutSession = self._once(key, make)
        return result

    async def complete_checkout_session(self, session_id: str, card: str) -> str:
        """What the customer does on the hosted page: pay with a card."""
        session = self.checkout_session(session_id)
        if session.status == "complete":
            return "complete"
        assert session.customer is not None
        contract_id, page = session.metadata["contract_id"], self._pages[session_id]
        price, key = page.price, page.key
        await self.attach_payment_method(session.customer, card, key=key)
        if session.payment_intent is not None or session.subscription is not None:
            paid = self._pay_again(session, card)  # the page after a decline: another card
        elif price.interval_months is None:
            intent = await self.create_payment_intent(
                amount=Money(price.unit_amount, price.currency),
                customer=session.customer,
                contract_id=contract_id,
                payment_method=card,
                key=f"{key}:payment_intent",
            )
            intent = await self.confirm_payment_intent(intent.id, key=f"{key}:confirm")
            session.payment_intent = intent.id
            paid = intent.status == "succeeded"
        else:
            sub = await self.create_subscription(
                customer=session.customer,
                price=price,
                contract_id=contract_id,
                attempt=0,
                saved_payment_method=True,
                cancel_at=None,
                key=f"{key}:subscription",
            )
            session.subscription = sub.id
            paid = sub.status == "active"
        if paid:
            session.status, session.payment_status = "complete", "paid"
            self._emit("checkout.session.completed", session, session.customer, session.id)
        return str(session.status)

    async def card_page(self, customer: str, *, return_url: str, locale: str) -> str:
        self._customer(customer)
        self.card_return_urls[customer] = return_url
        return f"{self.pages}billing/{customer}"

    def card_of(self, customer: str) -> str | None:
        return self._card(customer) if customer in self.customers else None

    def checkout_session(self, session_id: str) -> so.CheckoutSession:
        """A hosted checkout page's session, as its page shows it."""
        session = self.checkout_sessions.get(session_id)
        if session is None:
            raise NotFound(f"no Checkout Session {session_id}", field="session_id")
        return session

    def checkout_price(self, session_id: str) -> PriceSpec:
        """What a hosted checkout page sells."""
        self.checkout_session(session_id)
        return self._pages[session_id].price

    def _pay_again(self, session: so.CheckoutSession, card: str) -> bool:
        """The session's PaymentIntent, or its subscription's first invoice, paid with another
        card, as Stripe's page does after a decline: still one payment for the session."""
        if isinstance(session.payment_intent, str):
            pi = self._intent(session.payment_intent)
            if pi.status == "requires_payment_method":
                self._confirm(pi, card)
            return pi.status == "succeeded"
        assert isinstance(session.subscription, str)
        sub = self.subscriptions[session.subscription]
        open_invoice = self.invoices.get(self._billing[sub.id].open_invoice or "")
        if sub.status == "incomplete" and open_invoice is not None:
            self._pay(sub, open_invoice)
        return sub.status == "active"

    async def cancel_subscription(self, subscription_id: str, *, key: str) -> None:
        sub = self.subscriptions.get(subscription_id)
        if sub is None or sub.status == "canceled":
            return
        self._end(sub, "cancellation_requested")

    async def ensure_webhook_endpoint(self, url: str, events: list[str]) -> WebhookEndpoint:
        found = next((e for e in self.webhook_endpoints.values() if e.url == url), None)
        if found is not None:
            found.enabled_events = events
            return WebhookEndpoint(found.id, url, False, None)
        endpoint_id = _id("we", url)
        self.webhook_endpoints[endpoint_id] = so.WebhookEndpoint(
            id=endpoint_id, url=url, enabled_events=events
        )
        return WebhookEndpoint(endpoint_id, url, True, self.webhook_secret)

    async def release_payment(self, stripe_object: str, *, key: str) -> str:
        if stripe_object in self.payment_intents:
            pi = self.payment_intents[stripe_object]
            if pi.status not in ("succeeded", "processing", "canceled"):
                pi.status = "canceled"
                self._emit("payment_intent.canceled", pi, pi.customer, pi.id)
            return str(pi.status)
        if stripe_object in self.subscriptions:
            sub = self.subscriptions[stripe_object]
            if sub.status == "incomplete":
                self._end(sub, "cancellation_requested")
            return sub.status
        if stripe_object in self.checkout_sessions:
            session = self.checkout_sessions[stripe_object]
            if session.status == "open":
                session.status = "expired"
                self._emit("checkout.session.expired", session, session.customer, session.id)
            return str(session.status)
        return "unknown"  # made by another process's sandbox: nothing here to let go

    def _end(self, sub: so.Subscription, reason: str) -> None:
        sub.status = "canceled"
        sub.cancellation_details = so.CancellationDetails(reason=reason)
        sub.ended_at = int(self.now(sub.customer).timestamp())
        self._emit("customer.subscription.deleted", sub, sub.customer, sub.id)

    async def refund(self, *, payment_intent: str, amount: Money, contract_id: str, key: str) -> Refund:
        def make() -> Refund:
            refund_id = _id("re", key)
            owner = self._payer.get(payment_intent)
            refund = so.Refund(
                id=refund_id,
                amount=amount.amount,
                currency=amount.currency.lower(),
                payment_intent=payment_intent,
                charge=_id("ch", payment_intent),
                status="succeeded",
                metadata={"contract_id": contract_id},
                created=int(self.now(owner).timestamp()),
            )
            self.refunds[refund_id] = refund
            self._settle(refund_id, "refund", -amount.amount, amount.currency, (refund_id,), owner)
            self._emit("refund.created", refund, owner, refund_id)
            return Refund(refund_id, "succeeded", amount)

        result: Refund = self._once(key, make)
        return result

    async def ensure_price(self, spec: PriceSpec) -> tuple[str | None, bool]:
        if spec.lookup_key in self.prices:
            return self.prices[spec.lookup_key].id, False
        months = spec.interval_months
        price = so.Price(
            id=_id("price", spec.lookup_key),
            lookup_key=spec.lookup_key,
            unit_amount=spec.unit_amount,
            currency=spec.currency.lower(),
            recurring=None if months is None else so.Recurring(interval="month", interval_count=months),
        )
        self.prices[spec.lookup_key] = price
        return price.id, True

    async def events_since(
        self, since: dt.datetime, until: dt.datetime | None = None
    ) -> AsyncIterator[bytes]:
        end = until.timestamp() if until else float("inf")
        for event in list(self.log):
            if since.timestamp() <= event.created < end:
                yield msgspec.json.encode(event)

    async def subscription_contract(self, subscription_id: str) -> str | None:
        sub = self.subscriptions.get(subscription_id)
        return None if sub is None else sub.metadata.get("contract_id")

    async def invoice_payment_intent(self, invoice_id: str) -> str | None:
        found = self.invoices.get(invoice_id)
        return None if found is None else found.paying_intent

    async def invoice(self, invoice_id: str) -> so.Invoice | None:
        found = self.invoices.get(invoice_id)
        # A copy, as Stripe's answer is: the sandbox's own goes on changing.
        return None if found is None else msgspec.json.decode(msgspec.json.encode(found), type=so.Invoice)

    def _settle(
        self,
        source: str,
        category: str,
        amount: int,
        currency: str,
        ids: tuple[str, ...],
        customer: str | None,
    ) -> str:
        """A balance transaction, with a fee like Stripe's (2.9 % + 30 minor units on charges)."""
        fee = amount * 29 // 1000 + 30 if amount > 0 else 0
        transaction = BalanceTransaction(
            id=_id("txn", source, category),
            reporting_category=category,
            amount=amount,
            fee=fee,
            net=amount - fee,
            currency=currency.upper(),
            status="available",
            created=self.now(customer),
            source_ids=ids,
        )
        self.balance.append(transaction)
        return transaction.id

    def _charged(self, charge_id: str, intent_id: str, amount: int, currency: str, customer: str) -> None:
        self._payer[intent_id] = customer
        txn = self._settle(charge_id, "charge", amount, currency, (charge_id, intent_id), customer)
        charge = so.Charge(
            id=charge_id,
            amount=amount,
            currency=currency,
            paid=True,
            status="succeeded",
            payment_intent=intent_id,
            balance_transaction=txn,
        )
        self._emit("charge.succeeded", charge, customer, charge_id)

    async def balance_transaction(self, transaction_id: str) -> BalanceTransaction | None:
        return next((t for t in self.balance if t.id == transaction_id), None)

    async def balance_transactions(
        self, since: dt.datetime, until: dt.datetime
    ) -> AsyncIterator[BalanceTransaction]:
        for tx in list(self.balance):
            if since <= tx.created < until:
                yield tx

    # --- the clock -------------------------------------------------------------------------------

    def advance(self, days: int, customer: str | None = None) -> dt.datetime:
        """Move the test clocks forward a day at a time — one customer's, or every customer's
        there is: renewals fall due, are paid or fail and are retried, and subscriptions that
        keep failing are cancelled, as Stripe's smart retries would. The time on the clocks
        moved (the latest, when several were)."""
        moved = [customer] if customer is not None else list(self.customers)
        for _ in range(days):
            for who in moved:
                self.clocks[who] = self.clocks.get(who, dt.timedelta()) + dt.timedelta(days=1)
            for sub in list(self.subscriptions.values()):
                if sub.status not in ("canceled", "incomplete") and sub.customer in moved:
                    self._next_day(sub)
        return max((self.now(who) for who in moved), default=self.now())

    def _next_day(self, sub: so.Subscription) -> None:
        """A subscription on the day its customer's clock reached: ended at its planned end, a
        refused renewal retried, or the next period invoiced and charged."""
        now = self.now(sub.customer)
        (_, period_end), billing = self._current_period(sub), self._billing[sub.id]
        if sub.cancel_at and sub.cancel_at <= now.timestamp():
            self._end(sub, "cancellation_requested")
            return
        open_invoice = self.invoices.get(billing.open_invoice or "")
        if open_invoice is not None:
            due = dt.datetime.fromtimestamp(open_invoice.created, dt.UTC)
            retry_at = due + dt.timedelta(days=sum(RETRY_DAYS[: billing.failures]))
            if now >= retry_at and not self._pay(sub, open_invoice) and billing.failures > len(RETRY_DAYS):
                self._end(sub, "payment_failed")
            return
        if now.timestamp() >= period_end:
            start = dt.datetime.fromtimestamp(period_end, dt.UTC)
            assert sub.items is not None
            sub.items.data[0] = self._item(sub.id, billing.price_id, billing.price, start)
            upcoming = so.UpcomingInvoice(
                customer=sub.customer,
                currency=billing.price.currency.lower(),
                amount_due=billing.price.unit_amount,
                parent=self._parent(sub),
            )
            self._emit("invoice.upcoming", upcoming, sub.customer, sub.id)
            self._pay(sub, self._invoice(sub, "subscription_cycle", start))
