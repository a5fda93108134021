"""The gateway on Stripe, through the official SDK's `StripeClient` (never a global api_key).

Every call that creates or moves something carries an idempotency key derived from our own ids
(`checkout:<offer id>:…`, `refund:<contract>:…`), so our retries, and the SDK's own, reach
Stripe as the same request and can never charge or refund twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import stripe
from stripe.params import (
    CustomerCreateParams,
    CustomerUpdateParams,
    PaymentIntentCreateParams,
    SubscriptionCreateParams,
)

from billing.catalog_sync import PriceSpec
from billing.gateway import CheckoutSession, GatewayError, PaymentIntent, Refund, Subscription
from billing.reconcile import BalanceTransaction
from entitlements.money import Money

API_VERSION = stripe.api_version  # the version this SDK release is built for


class StripeGateway:
    sandbox = False

    def __init__(
        self, api_key: str, *, api_base: str | None = None, timeout: float = 20.0, retries: int = 2
    ) -> None:
        self.client = stripe.StripeClient(
            api_key,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base} if api_base else {},
            max_network_retries=retries,
            http_client=stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True),
        )

    @staticmethod
    def _options(key: str | None) -> Any:
        return {"idempotency_key": key} if key else {}

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except stripe.CardError as exc:
            raise GatewayError(exc.user_message or "the card was declined", declined=True) from exc
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe: {exc.user_message or exc.__class__.__name__}") from exc

    async def ensure_customer(self, *, customer_id: str, name: str, email: str | None) -> str:
        params: CustomerCreateParams = {"name": name, "metadata": {"coverline_customer": customer_id}}
        if email:
            params["email"] = email
        customer = await self._call(
            self.client.v1.customers.create_async(params, self._options(f"customer:{customer_id}"))
        )
        return str(customer.id)

    async def update_customer(self, stripe_customer: str, *, name: str, email: str | None, key: str) -> None:
        params: CustomerUpdateParams = {"name": name, "email": email or ""}
        await self._call(self.client.v1.customers.update_async(stripe_customer, params, self._options(key)))

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
            params["confirm"] = True
        intent = await self._call(self.client.v1.payment_intents.create_async(params, self._options(key)))
        return PaymentIntent(intent.id, intent.status, intent.client_secret, amount)

    async def create_subscription(
        self,
        *,
        customer: str,
        amount: Money,
        interval_months: int,
        contract_id: str,
        payment_method: str | None,
        cancel_at: dt.datetime | None,
        key: str,
    ) -> Subscription:
        interval = _recurring(interval_months)
        params: SubscriptionCreateParams = {
            "customer": customer,
            "items": [
                {
                    "price_data": {
                        "currency": amount.currency.lower(),
                        "unit_amount": amount.amount,
                        "recurring": interval,
                        "product": await self._product(contract_id),
                    }
                }
            ],
            "metadata": {"contract_id": contract_id},
            "payment_behavior": "default_incomplete",
            "payment_settings": {"save_default_payment_method": "on_subscription"},
            "expand": ["latest_invoice.confirmation_secret"],
        }
        if cancel_at is not None:
            params["cancel_at"] = int(cancel_at.timestamp())
        if payment_method:
            params["default_payment_method"] = payment_method
        sub = await self._call(self.client.v1.subscriptions.create_async(params, self._options(key)))
        invoice = getattr(sub, "latest_invoice", None)
        secret = getattr(getattr(invoice, "confirmation_secret", None), "client_secret", None)
        return Subscription(sub.id, sub.status, secret)

    async def create_checkout_session(
        self,
        *,
        customer: str,
        amount: Money,
        interval_months: int | None,
        contract_id: str,
        product_name: str,
        success_url: str,
        cancel_url: str,
        key: str,
    ) -> CheckoutSession:
        price: Any = {
            "currency": amount.currency.lower(),
            "unit_amount": amount.amount,
            "product_data": {"name": product_name},
        }
        params: Any = {
            "customer": customer,
            "line_items": [{"price_data": price, "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": {"contract_id": contract_id},
        }
        if interval_months is None:
            params |= {"mode": "payment", "payment_intent_data": {"metadata": {"contract_id": contract_id}}}
        else:
            price["recurring"] = _recurring(interval_months)
            params |= {
                "mode": "subscription",
                "subscription_data": {"metadata": {"contract_id": contract_id}},
            }
        session = await self._call(self.client.v1.checkout.sessions.create_async(params, self._options(key)))
        return CheckoutSession(session.id, session.url or "")

    async def _product(self, contract_id: str) -> str:
        product = await self._call(
            self.client.v1.products.create_async(
                {"name": f"Coverline contract {contract_id}"}, self._options(f"product:{contract_id}")
            )
        )
        return str(product.id)

    async def cancel_subscription(self, subscription_id: str, *, key: str) -> None:
        await self._call(self.client.v1.subscriptions.cancel_async(subscription_id, None, self._options(key)))

    async def refund(self, *, payment_intent: str, amount: Money, contract_id: str, key: str) -> Refund:
        params = {
            "payment_intent": payment_intent,
            "amount": amount.amount,
            "metadata": {"contract_id": contract_id},
        }
        refund = await self._call(self.client.v1.refunds.create_async(params, self._options(key)))  # type: ignore[arg-type]
        return Refund(refund.id, refund.status or "pending", amount)

    async def ensure_price(self, spec: PriceSpec) -> tuple[str, bool]:
        existing = await self._call(
            self.client.v1.prices.list_async({"lookup_keys": [spec.lookup_key], "limit": 1})
        )
        if existing.data:
            return str(existing.data[0].id), False
        try:
            await self._call(self.client.v1.products.retrieve_async(spec.product_id))
        except GatewayError:
            await self._call(
                self.client.v1.products.create_async(
                    {"id": spec.product_id, "name": spec.product_name},
                    self._options(f"product:{spec.product_id}"),
                )
            )
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

    async def events_since(self, since: dt.datetime) -> AsyncIterator[bytes]:
        page = await self._call(
            self.client.v1.events.list_async({"created": {"gte": int(since.timestamp())}, "limit": 100})
        )
        events = [event async for event in page.auto_paging_iter()]  # newest first, as Stripe lists
        for event in reversed(events):
            yield json.dumps(event.to_dict()).encode()

    async def balance_transaction(self, transaction_id: str) -> BalanceTransaction | None:
        try:
            tx = await self.client.v1.balance_transactions.retrieve_async(transaction_id)
        except stripe.InvalidRequestError:
            return None
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe: {exc.user_message or exc.__class__.__name__}") from exc
        return _balance_transaction(tx.to_dict())

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
            data = tx.to_dict()  # a StripeObject is not a dict
            source = data.get("source")
            ids = [source] if isinstance(source, str) else []
            if isinstance(source, dict):
                ids += [v for k in ("id", "payment_intent", "charge") if isinstance(v := source.get(k), str)]
            created = dt.datetime.fromtimestamp(int(data["created"]), dt.UTC)
            if not since <= created < until:
                continue
            yield _balance_transaction(data, created, tuple(ids))

    async def subscription_contract(self, subscription_id: str) -> str | None:
        sub = await self._call(self.client.v1.subscriptions.retrieve_async(subscription_id))
        value = (sub.to_dict().get("metadata") or {}).get("contract_id")  # a StripeObject is no dict
        return value if isinstance(value, str) else None

    async def invoice(self, invoice_id: str) -> dict[str, Any] | None:
        try:
            found = await self.client.v1.invoices.retrieve_async(invoice_id)
        except stripe.InvalidRequestError:  # no such invoice
            return None
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe: {exc.user_message or exc.__class__.__name__}") from exc
        return found.to_dict()


def _balance_transaction(
    data: dict[str, Any], created: dt.datetime | None = None, ids: tuple[str, ...] = ()
) -> BalanceTransaction:
    return BalanceTransaction(
        id=data["id"],
        reporting_category=data.get("reporting_category") or data.get("type") or "",
        amount=int(data["amount"]),
        fee=int(data.get("fee") or 0),
        net=int(data.get("net") or 0),
        currency=str(data["currency"]).upper(),
        status=str(data.get("status") or ""),
        created=created or dt.datetime.fromtimestamp(int(data["created"]), dt.UTC),
        source_ids=ids or tuple(x for x in [data.get("source")] if isinstance(x, str)),
    )


def _recurring(months: int) -> Any:
    """Stripe's `recurring` for a billing interval in months: whole years as years."""
    if months % 12 == 0:
        return {"interval": "year", "interval_count": months // 12}
    return {"interval": "month", "interval_count": months}
