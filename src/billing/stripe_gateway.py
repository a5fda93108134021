"""The gateway on Stripe, through the official SDK's `StripeClient` (never a global api_key).

Every call that creates or moves something carries an idempotency key derived from our own ids
(`checkout:<offer id>:…`, `refund:<contract>:…`), so our retries, and the SDK's own, reach
Stripe as the same request and can never charge or refund twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import msgspec
import stripe
from stripe.params import (
    CustomerCreateParams,
    CustomerUpdateParams,
    PaymentIntentCreateParams,
)

from billing import stripe_objects as so
from billing.catalog_sync import PriceSpec
from billing.finance.reconcile import BalanceTransaction
from billing.gateway import (
    CheckoutSession,
    GatewayError,
    HostedPagesUnavailable,
    PaymentIntent,
    Refund,
    Subscription,
    WebhookEndpoint,
)
from entitlements.money import Money

S = TypeVar("S")
API_VERSION = stripe.api_version  # the version this SDK release is built for

# The customer's languages that Stripe's hosted pages are shown in; the others see English
# (Stripe has no Arabic or Hindi pages).
STRIPE_PAGE_LOCALES = frozenset({"en", "fil", "sv", "vi"})


class StripeGateway:
    sandbox = False

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        timeout: float = 20.0,
        retries: int = 2,
        test_clock: str | None = None,
    ) -> None:
        self.test_clock = test_clock
        self.client = stripe.StripeClient(
            api_key,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base} if api_base else {},
            max_network_retries=retries,
            http_client=stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True),
        )
        self._has_prices: bool | None = None
        self._prices: dict[str, str] = {}  # price ids by lookup key (a price never changes)

    @staticmethod
    def _options(key: str | None) -> Any:
        return {"idempotency_key": key} if key else {}

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except stripe.CardError as exc:
            raise GatewayError(
                exc.user_message or "the card was declined",
                declined=True,
                decline_code=_decline_code(exc),
                request_id=exc.request_id,
            ) from exc
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc

    async def has_prices(self) -> bool:
        """Whether the server has Stripe's Prices API (localstripe has Plans only): asked once,
        at start-up or on first need. On a server with Plans only, the catalog's recurring
        prices are Plans whose ids are their lookup keys; Stripe takes a Plan's id as a price."""
        if self._has_prices is None:
            try:
                await self.client.v1.prices.list_async({"limit": 1})
            except stripe.StripeError as exc:
                if exc.http_status != 404:
                    raise _gateway_error(exc) from exc
                self._has_prices = False
            else:
                self._has_prices = True
        return self._has_prices

    async def create_customer(
        self, *, customer_id: str, name: str, email: str | None, locales: list[str]
    ) -> str:
        params: CustomerCreateParams = {"name": name, "metadata": {"coverline_customer": customer_id}}
        if email:
            params["email"] = email
        if locales:
            params["preferred_locales"] = locales
        if self.test_clock:
            params["test_clock"] = self.test_clock
        customer = await self._call(
            self.client.v1.customers.create_async(params, self._options(f"customer:{customer_id}"))
        )
        return str(customer.id)

    async def update_customer(
        self, stripe_customer: str, *, name: str, email: str | None, locales: list[str], key: str
    ) -> None:
        params: CustomerUpdateParams = {"name": name, "email": email or "", "preferred_locales": locales}
        await self._call(self.client.v1.customers.update_async(stripe_customer, params, self._options(key)))

    async def attach_payment_method(self, stripe_customer: str, payment_method: str, *, key: str) -> None:
        await self._call(
            self.client.v1.payment_methods.attach_async(
                payment_method, {"customer": stripe_customer}, self._options(f"{key}:attach")
            )
        )
        settings: CustomerUpdateParams = {"invoice_settings": {"default_payment_method": payment_method}}
        await self._call(
            self.client.v1.customers.update_async(stripe_customer, settings, self._options(f"{key}:default"))
        )

    async def create_payment_intent(
        self, *, amount: Money, customer: str, contract_id: str, payment_method: str | None, key: str
    ) -> PaymentIntent:
        params: PaymentIntentCreateParams = {
            "amount": amount.amount,
            "currency": amount.currency.lower(),
            "customer": customer,
            "metadata": {"contract_id": contract_id},
        }
        if payment_method:
            params["payment_method"] = payment_method
        intent = await self._call(self.client.v1.payment_intents.create_async(params, self._options(key)))
        return PaymentIntent.of(_read(intent, so.PaymentIntent))

    async def confirm_payment_intent(self, payment_intent: str, *, key: str) -> PaymentIntent:
        try:
            intent = await self._call(
                self.client.v1.payment_intents.confirm_async(payment_intent, None, self._options(key))
            )
        except GatewayError as exc:
            if not exc.declined:
                raise
            now = await self.payment_intent(payment_intent)  # refused: the intent says so itself
            return msgspec.structs.replace(now, decline_code=now.decline_code or exc.decline_code)
        return PaymentIntent.of(_read(intent, so.PaymentIntent))

    async def payment_intent(self, payment_intent: str) -> PaymentIntent:
        intent = await self._call(self.client.v1.payment_intents.retrieve_async(payment_intent))
        return PaymentIntent.of(_read(intent, so.PaymentIntent))

    async def _price(self, spec: PriceSpec) -> str:
        if spec.lookup_key not in self._prices:
            price, _ = await self.ensure_price(spec)
            if price is None:
                raise GatewayError(f"Stripe: this server cannot hold the one-off price {spec.lookup_key}")
            self._prices[spec.lookup_key] = price
        return self._prices[spec.lookup_key]

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
        # One subscription per attempt even where idempotency keys are not kept (or have expired
        # after 24 h): the contract's own subscription is looked for first.
        metadata = {"contract_id": contract_id, "attempt": str(attempt)}
        listed = await self._call(
            self.client.v1.subscriptions.list_async({"customer": customer, "status": "all", "limit": 100})
        )
        sub = next((s for s in listed.data if _read(s, so.Subscription).metadata == metadata), None)
        if sub is None:
            params: Any = {
                "customer": customer,
                # A Plan's id is accepted as a price, so this names either.
                "items": [{"plan": await self._price(price)}],
                "metadata": metadata,
                "expand": ["latest_invoice"],
            }
            if saved_payment_method:  # the customer's default: the first invoice is charged now
                params["payment_behavior"] = "allow_incomplete"
            else:  # the page pays the first invoice with Stripe.js
                params["payment_behavior"] = "default_incomplete"
                params["payment_settings"] = {"save_default_payment_method": "on_subscription"}
                params["expand"] = ["latest_invoice.confirmation_secret"]
            sub = await self._call(self.client.v1.subscriptions.create_async(params, self._options(key)))
            if cancel_at is not None:  # a fixed term paid in instalments ends itself
                ends: Any = {"cancel_at": int(cancel_at.timestamp())}
                await self._call(
                    self.client.v1.subscriptions.update_async(sub.id, ends, self._options(f"{key}:ends"))
                )
        status = str(sub.status)
        if status != "incomplete":
            return Subscription(sub.id, status, None)
        first = await self._first_payment(_read(sub, so.Subscription).latest_invoice)
        if first is None:
            return Subscription(sub.id, status, None)
        return Subscription(sub.id, status, first.client_secret, first.decline_code)

    async def _first_payment(self, invoice: str | so.Invoice | None) -> PaymentIntent | None:
        """The PaymentIntent of a subscription's first invoice, read from either shape of the
        invoice: `payment_intent` (before 2025-03-31, and localstripe) or its payments."""
        if isinstance(invoice, str):
            invoice = _read(await self._call(self.client.v1.invoices.retrieve_async(invoice)), so.Invoice)
        if invoice is None:
            return None
        intent = invoice.payment_intent
        if intent is msgspec.UNSET and invoice.id is not None:  # the current shape: in its payments
            intent = await self.invoice_payment_intent(invoice.id)
        if not isinstance(intent, str):
            return None
        found = await self.payment_intent(intent)
        secret = invoice.confirmation_secret.client_secret if invoice.confirmation_secret else None
        return msgspec.structs.replace(found, client_secret=secret or found.client_secret)

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
        params: Any = {
            "customer": customer,
            "line_items": [{"price": await self._price(price), "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": {"contract_id": contract_id},
            # The plan's price in the contract's currency, as quoted: Adaptive Pricing would charge
            # a local currency instead, which the webhook takes for another payment and refunds.
            "adaptive_pricing": {"enabled": False},
        }
        if expires_at is not None:
            params["expires_at"] = int(expires_at.timestamp())
        if price.interval_months is None:
            params |= {"mode": "payment", "payment_intent_data": {"metadata": {"contract_id": contract_id}}}
        else:
            params |= {"mode": "subscription", "subscription_data": {"metadata": params["metadata"]}}
        try:
            session = await self.client.v1.checkout.sessions.create_async(params, self._options(key))
        except stripe.StripeError as exc:
            if exc.http_status == 404:  # a Stripe-compatible server without Checkout Sessions
                raise HostedPagesUnavailable() from exc
            raise _gateway_error(exc) from exc
        return CheckoutSession(session.id, session.url or "")

    async def card_page(self, customer: str, *, return_url: str, locale: str) -> str:
        params: Any = {
            "customer": customer,
            "return_url": return_url,
            "locale": locale if locale in STRIPE_PAGE_LOCALES else "en",
        }
        session = await self._call(self.client.v1.billing_portal.sessions.create_async(params))
        return str(session.url)

    async def cancel_subscription(self, subscription_id: str, *, key: str) -> None:
        await self._call(self.client.v1.subscriptions.cancel_async(subscription_id, None, self._options(key)))

    async def ensure_webhook_endpoint(self, url: str, events: list[str]) -> WebhookEndpoint:
        v1 = self.client.v1
        listed = await self._call(v1.webhook_endpoints.list_async({"limit": 100}))
        found = None
        async for endpoint in listed.auto_paging_iter():
            if endpoint.url == url:
                found = endpoint
                break
        if found is not None:
            update: Any = {"enabled_events": events}
            await self._call(v1.webhook_endpoints.update_async(found.id, update))
            return WebhookEndpoint(found.id, url, False, None)
        params: Any = {"url": url, "enabled_events": events, "api_version": API_VERSION}
        created = await self._call(v1.webhook_endpoints.create_async(params))
        return WebhookEndpoint(created.id, url, True, created.secret)

    async def release_payment(self, stripe_object: str, *, key: str) -> str:
        v1, options = self.client.v1, self._options(key)
        if stripe_object.startswith("pi_"):
            intent = await self._call(v1.payment_intents.retrieve_async(stripe_object))
            if intent.status in _CANCELLABLE_INTENT:
                intent = await self._call(v1.payment_intents.cancel_async(stripe_object, None, options))
            return str(intent.status)
        if stripe_object.startswith("sub_"):
            sub = await self._call(v1.subscriptions.retrieve_async(stripe_object))
            if sub.status in ("incomplete", "trialing"):
                sub = await self._call(v1.subscriptions.cancel_async(stripe_object, None, options))
            return str(sub.status)
        if stripe_object.startswith("cs_"):
            session = await self._call(v1.checkout.sessions.retrieve_async(stripe_object))
            if session.status == "open":
                session = await self._call(v1.checkout.sessions.expire_async(stripe_object, None, options))
            return str(session.status)
        raise GatewayError(f"not a Stripe payment object: {stripe_object}")

    async def refund(self, *, payment_intent: str, amount: Money, contract_id: str, key: str) -> Refund:
        params = {
            "payment_intent": payment_intent,
            "amount": amount.amount,
            "metadata": {"contract_id": contract_id},
        }
        refund = await self._call(self.client.v1.refunds.create_async(params, self._options(key)))  # type: ignore[arg-type]
        return Refund(refund.id, refund.status or "pending", amount)

    async def ensure_price(self, spec: PriceSpec) -> tuple[str | None, bool]:
        if await self.has_prices():
            existing = await self._call(
                self.client.v1.prices.list_async({"lookup_keys": [spec.lookup_key], "limit": 1})
            )
            if existing.data:
                return str(existing.data[0].id), False
        elif spec.interval_months is None:
            return None, False  # a Plan always recurs; upfront plans are charged by PaymentIntent
        else:
            try:
                return str((await self.client.v1.plans.retrieve_async(spec.lookup_key)).id), False
            except stripe.InvalidRequestError:
                pass  # not there yet
            except stripe.StripeError as exc:
                raise _gateway_error(exc) from exc
        try:
            await self.client.v1.products.retrieve_async(spec.product_id)
        except stripe.InvalidRequestError:
            await self._call(
                self.client.v1.products.create_async(
                    {"id": spec.product_id, "name": spec.product_name},
                    self._options(f"product:{spec.product_id}"),
                )
            )
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc
        if not await self.has_prices():
            assert spec.interval_months is not None
            plan: Any = {
                "id": spec.lookup_key,
                "product": spec.product_id,
                "currency": spec.currency.lower(),
                "amount": spec.unit_amount,
                "metadata": spec.metadata,
                **_recurring(spec.interval_months),
            }
            key = self._options(f"plan:{spec.lookup_key}")
            created = await self._call(self.client.v1.plans.create_async(plan, key))
            return str(created.id), True
        params: Any = {
            "product": spec.product_id,
            "currency": spec.currency.lower(),
            "unit_amount": spec.unit_amount,
            "lookup_key": spec.lookup_key,
            "metadata": spec.metadata,
        }
        if spec.interval_months is not None:
            params["recurring"] = _recurring(spec.interval_months)
        price = await self._call(
            self.client.v1.prices.create_async(params, self._options(f"price:{spec.lookup_key}"))
        )
        return str(price.id), True

    async def events_since(
        self, since: dt.datetime, until: dt.datetime | None = None
    ) -> AsyncIterator[bytes]:
        created: Any = {"gte": int(since.timestamp())}
        if until is not None:
            created["lt"] = int(until.timestamp())
        page = await self._call(self.client.v1.events.list_async({"created": created, "limit": 100}))
        events = [event async for event in page.auto_paging_iter()]  # newest first, as Stripe lists
        for event in reversed(events):
            yield json.dumps(event.to_dict()).encode()

    async def balance_transaction(self, transaction_id: str) -> BalanceTransaction | None:
        try:
            tx = await self.client.v1.balance_transactions.retrieve_async(transaction_id)
        except stripe.InvalidRequestError:
            return None
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc
        return _read(tx, so.BalanceTransaction).as_ledger_sees_it()

    async def balance_transactions(
        self, since: dt.datetime, until: dt.datetime
    ) -> AsyncIterator[BalanceTransaction]:
        window: Any = {"gte": int(since.timestamp()), "lt": int(until.timestamp())}
        params: Any = {"created": window, "limit": 100, "expand": ["data.source"]}
        try:
            page = await self.client.v1.balance_transactions.list_async(params)
        except stripe.InvalidRequestError:  # a Stripe-compatible server without the filter
            del params["created"]
            page = await self._call(self.client.v1.balance_transactions.list_async(params))
        async for tx in page.auto_paging_iter():
            found = _read(tx, so.BalanceTransaction).as_ledger_sees_it()
            if since <= found.created < until:
                yield found

    async def subscription_contract(self, subscription_id: str) -> str | None:
        sub = await self._call(self.client.v1.subscriptions.retrieve_async(subscription_id))
        return _read(sub, so.Subscription).metadata.get("contract_id")

    async def invoice_payment_intent(self, invoice_id: str) -> str | None:
        payments = await self._call(
            self.client.v1.invoice_payments.list_async({"invoice": invoice_id, "status": "paid", "limit": 1})
        )
        listed = [_read(p, so.InvoicePayment) for p in payments.data]
        return next((so.ident(p.payment.payment_intent) for p in listed if p.payment), None)

    async def invoice(self, invoice_id: str) -> so.Invoice | None:
        try:
            found = await self.client.v1.invoices.retrieve_async(invoice_id)
        except stripe.InvalidRequestError:  # no such invoice
            return None
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc
        return _read(found, so.Invoice)


_CANCELLABLE_INTENT = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)


def _gateway_error(exc: stripe.StripeError) -> GatewayError:
    """Stripe's error as the port's: one line, with Stripe's request id."""
    refused = isinstance(exc, stripe.InvalidRequestError) and exc.http_status in (400, 404)
    return GatewayError(
        f"Stripe: {exc.user_message or exc.__class__.__name__}", request_id=exc.request_id, refused=refused
    )


def _decline_code(exc: stripe.StripeError) -> str | None:
    error = exc.error
    return (getattr(error, "decline_code", None) or exc.code) if error is not None else exc.code


def _read(obj: stripe.StripeObject, as_type: type[S]) -> S:
    """A Stripe object as the Struct Coverline reads it (a StripeObject is not a dict)."""
    return msgspec.convert(obj.to_dict(), as_type)


def _recurring(months: int) -> Any:
    """Stripe's `recurring` for a billing interval in months: whole years as years."""
    if months % 12 == 0:
        return {"interval": "year", "interval_count": months // 12}
    return {"interval": "month", "interval_count": months}
