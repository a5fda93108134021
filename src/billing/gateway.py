"""The payment gateway port. `StripeGateway` speaks to Stripe; `SandboxGateway` is an offline,
Stripe-shaped stand-in for the embedded default. Both take an idempotency key on every call
that moves money, derived from our own ids, so a retry can never charge or refund twice."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any, Protocol

import msgspec

from billing.catalog_sync import PriceSpec
from billing.reconcile import BalanceTransaction
from entitlements.money import Money


class GatewayError(Exception):
    """The gateway could not do it (declined card, Stripe down, timeout): the caller may retry."""

    def __init__(self, message: str, *, declined: bool = False) -> None:
        super().__init__(message)
        self.declined = declined


class PaymentIntent(msgspec.Struct, frozen=True):
    id: str
    status: str  # requires_payment_method | requires_confirmation | processing | succeeded | …
    client_secret: str | None
    amount: Money


class Subscription(msgspec.Struct, frozen=True):
    id: str
    status: str  # incomplete | active | past_due | canceled | …
    client_secret: str | None  # of the first invoice's payment, for the page to confirm


class CheckoutSession(msgspec.Struct, frozen=True):
    id: str
    url: str


class Refund(msgspec.Struct, frozen=True):
    id: str
    status: str
    amount: Money


class Gateway(Protocol):
    sandbox: bool

    async def ensure_customer(self, *, customer_id: str, name: str, email: str | None) -> str:
        """The gateway's customer id for our customer (created once, found again after)."""
        ...

    async def update_customer(self, stripe_customer: str, *, name: str, email: str | None, key: str) -> None:
        """The name and email the gateway shows on receipts and invoices."""
        ...

    async def create_payment_intent(
        self, *, amount: Money, customer: str, contract_id: str, payment_method: str | None, key: str
    ) -> PaymentIntent: ...

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
    ) -> Subscription: ...

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
        """A hosted payment page: one-off when `interval_months` is None, else a subscription."""
        ...

    async def cancel_subscription(self, subscription_id: str, *, key: str) -> None: ...

    async def refund(self, *, payment_intent: str, amount: Money, contract_id: str, key: str) -> Refund: ...

    async def ensure_price(self, spec: PriceSpec) -> tuple[str, bool]:
        """(price id, created now?) for a catalog price, found again by its lookup key."""
        ...

    def balance_transactions(
        self, since: dt.datetime, until: dt.datetime
    ) -> AsyncIterator[BalanceTransaction]:
        """Stripe's balance transactions in the range, auto-paged, with the ids of their sources."""
        ...

    async def balance_transaction(self, transaction_id: str) -> BalanceTransaction | None:
        """One balance transaction (for the fee Stripe took on a charge)."""
        ...

    def events_since(self, since: dt.datetime) -> AsyncIterator[bytes]:
        """Every event created since `since`, oldest first, as raw JSON (auto-paging)."""
        ...

    async def subscription_contract(self, subscription_id: str) -> str | None:
        """The contract a subscription was sold for (its metadata), asked when an event names a
        subscription we have not linked yet."""
        ...

    async def invoice(self, invoice_id: str) -> dict[str, Any] | None:
        """The invoice as the gateway has it now: events arrive late and out of order, so where
        an event's copy could mislead, the current object decides."""
        ...
