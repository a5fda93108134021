"""The payment gateway port. `StripeGateway` speaks to Stripe; `SandboxGateway` is an offline,
Stripe-shaped stand-in for the embedded default. Both take an idempotency key on every call
that moves money, derived from our own ids, so a retry can never charge or refund twice."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Protocol

import msgspec

from billing import stripe_objects as so
from billing.catalog_sync import PriceSpec
from billing.finance.reconcile import BalanceTransaction
from entitlements.money import Money


class GatewayError(Exception):
    """The gateway could not do it (declined card, Stripe down, timeout): the caller may retry.
    `request_id` is Stripe's, for support; `decline_code` says why a card was refused; `refused`:
    Stripe answered that the request cannot be made as asked (a refund beyond what is left of a
    charge, say), so it made nothing, and the same request would be refused again."""

    def __init__(
        self,
        message: str,
        *,
        declined: bool = False,
        decline_code: str | None = None,
        request_id: str | None = None,
        refused: bool = False,
    ) -> None:
        super().__init__(message)
        self.refused = refused
        self.declined = declined
        self.decline_code = decline_code or ("card_declined" if declined else None)
        self.request_id = request_id


class HostedPagesUnavailable(GatewayError):
    """The Stripe server has no Checkout Sessions (localstripe, for one)."""

    def __init__(self) -> None:
        super().__init__("this Stripe server has no hosted payment pages (Checkout Sessions)")


class PaymentIntent(msgspec.Struct, frozen=True):
    id: str
    status: str  # requires_payment_method | requires_confirmation | processing | succeeded | …
    client_secret: str | None
    amount: Money
    decline_code: str | None = None  # the last attempt's, when the card was refused

    @classmethod
    def of(cls, pi: so.PaymentIntent) -> PaymentIntent:
        """Stripe's PaymentIntent, as checkout follows it."""
        status = pi.status or ""
        return cls(
            pi.id,
            status,
            pi.client_secret,
            Money(pi.amount, pi.currency.upper()),
            pi.decline_code if status == "requires_payment_method" else None,
        )


class Subscription(msgspec.Struct, frozen=True):
    id: str
    status: str  # incomplete | active | past_due | canceled | …
    client_secret: str | None  # of the first invoice's payment, for the page to confirm
    decline_code: str | None = None  # the first payment's, when the card was refused


class CheckoutSession(msgspec.Struct, frozen=True):
    id: str
    url: str


class WebhookEndpoint(msgspec.Struct, frozen=True):
    id: str
    url: str
    created: bool
    secret: str | None  # Stripe shows it once, when the endpoint is created


class Refund(msgspec.Struct, frozen=True):
    id: str
    status: str
    amount: Money


class Gateway(Protocol):
    sandbox: bool

    async def create_customer(
        self, *, customer_id: str, name: str, email: str | None, locales: list[str]
    ) -> str:
        """A gateway customer for our customer: called once, the id is stored and reused."""
        ...

    async def update_customer(
        self, stripe_customer: str, *, name: str, email: str | None, locales: list[str], key: str
    ) -> None:
        """The name, email and languages the gateway uses on receipts and invoices."""
        ...

    async def attach_payment_method(self, stripe_customer: str, payment_method: str, *, key: str) -> None:
        """Save the payment method on the customer as the one their invoices are charged to
        (the card may be refused here: `GatewayError` with `declined`)."""
        ...

    async def create_payment_intent(
        self, *, amount: Money, customer: str, contract_id: str, payment_method: str | None, key: str
    ) -> PaymentIntent:
        """Created unconfirmed: the caller stores its id, then confirms it by id."""
        ...

    async def confirm_payment_intent(self, payment_intent: str, *, key: str) -> PaymentIntent:
        """Charge it with its payment method; a refused card is a result, with `decline_code`."""
        ...

    async def payment_intent(self, payment_intent: str) -> PaymentIntent: ...

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
        """On the catalog's price (synced on a miss). With a saved payment method the first
        invoice is charged at once; without, its client secret is for the page. An existing
        subscription for the same contract and attempt is returned instead of a second one."""
        ...

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
        """A hosted payment page: one-off for an upfront price, else a subscription."""
        ...

    async def cancel_subscription(self, subscription_id: str, *, key: str) -> None: ...

    async def card_page(self, customer: str, *, return_url: str, locale: str) -> str:
        """The hosted page where the customer replaces the card their renewals are charged to
        (Stripe's customer portal), in `locale` where it has it; its URL."""
        ...

    async def ensure_webhook_endpoint(self, url: str, events: list[str]) -> WebhookEndpoint:
        """The endpoint at `url`, receiving `events` (created, or its event list brought up to
        date). Its secret is known only when it is created now."""
        ...

    async def release_payment(self, stripe_object: str, *, key: str) -> str:
        """An abandoned checkout's Stripe object, let go: a PaymentIntent cancelled, an
        incomplete subscription cancelled, a Checkout Session expired — unless it was paid
        meanwhile (its payment then arrives late, and is refunded). Its status after."""
        ...

    async def refund(self, *, payment_intent: str, amount: Money, contract_id: str, key: str) -> Refund: ...

    async def ensure_price(self, spec: PriceSpec) -> tuple[str | None, bool]:
        """(price id, created now?) for a catalog price, found again by its lookup key; no id
        where the server cannot hold it (a one-off price on a server with Plans only)."""
        ...

    def balance_transactions(
        self, since: dt.datetime, until: dt.datetime
    ) -> AsyncIterator[BalanceTransaction]:
        """Stripe's balance transactions in the range, auto-paged, with the ids of their sources."""
        ...

    async def balance_transaction(self, transaction_id: str) -> BalanceTransaction | None:
        """One balance transaction (for the fee Stripe took on a charge)."""
        ...

    def events_since(self, since: dt.datetime, until: dt.datetime | None = None) -> AsyncIterator[bytes]:
        """Every event created in [since, until), oldest first, as raw JSON (auto-paging)."""
        ...

    async def subscription_contract(self, subscription_id: str) -> str | None:
        """The contract a subscription was sold for (its metadata), asked when an event names a
        subscription we have not linked yet."""
        ...

    async def invoice_payment_intent(self, invoice_id: str) -> str | None:
        """The PaymentIntent that paid an invoice, asked where the event's invoice does not name
        it (since API version 2025-03-31 an invoice's payments are a list of their own, which
        events need not carry): a renewal's refund is made against it."""
        ...

    async def invoice(self, invoice_id: str) -> so.Invoice | None:
        """The invoice as the gateway has it now: events arrive late and out of order, so where
        an event's copy could mislead, the current object decides."""
        ...
