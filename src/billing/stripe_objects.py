"""The Stripe objects Coverline reads, as typed Structs: decoded once where they enter (the
webhook's edge, the gateway's answers) and built by the sandbox in the same types, so neither side
writes a Stripe object as a dict.

Only the fields Coverline reads or the sandbox sets are declared; Stripe's others are skipped when
decoding. Where Stripe's API changed shape (an invoice names its subscription under `parent` since
2025-03-31, under `subscription` before, as localstripe still does), both shapes are declared and
one accessor reads either.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Generic, TypeVar

import msgspec

from billing.finance import reconcile
from entitlements.money import is_currency

T = TypeVar("T")
Metadata = dict[str, str]

# What Coverline stores or books of an object, bounded as it is kept (an id in its narrowest
# column, a fact's `varchar(128)` reference with a suffix such as `:ended`, or a ledger key with
# a prefix such as `refund_reversal:`; amounts summed in a bigint; currencies it can format): an
# event past them is malformed, kept as it came and not applied, never a failed transaction that
# Stripe would deliver for days. Stripe's own ids run to a few dozen characters.
ID_LENGTH = 100
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_LENGTH)]
MAX_AMOUNT = 10**12  # minor units: Stripe's own limit is far below; a million of them fit a bigint
Amount = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)]
Currency = Annotated[str, msgspec.Meta(min_length=3, max_length=3)]
# An instant Coverline reads (a period's bounds, an end): 2010, before Stripe, to 2200.
Instant = Annotated[int, msgspec.Meta(ge=1_262_304_000, le=7_258_118_400)]


def known_currency(currency: str | None) -> None:
    """Each object that carries a currency checks it as it is decoded (`__post_init__`)."""
    if currency is not None and not is_currency(currency.upper()):
        raise ValueError(f"unknown currency {currency!r}")


def instant(value: int | None) -> dt.datetime | None:
    """A Stripe timestamp (seconds since the epoch) as an aware instant."""
    return None if value is None else dt.datetime.fromtimestamp(value, dt.UTC)


def timestamp(at: dt.datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


class Ref(msgspec.Struct, kw_only=True):
    """An expandable field's object, where the server expanded it: Coverline reads its id."""

    id: Id


Expandable = Id | Ref  # Stripe sends the id, or the object when expanded (localstripe does)


def ident(value: str | Ref | msgspec.UnsetType | None) -> str | None:
    """The id an expandable field names, either way."""
    if isinstance(value, Ref):
        return value.id
    return value if isinstance(value, str) else None


class StripeList(msgspec.Struct, Generic[T], kw_only=True):
    object: str = "list"
    data: list[T] = []


# --- the event envelope -------------------------------------------------------------------------


class EventData(msgspec.Struct, frozen=True):
    # Kept as bytes: decoded once, into the type the event's handler reads.
    object: msgspec.Raw = msgspec.Raw(b"null")


class Event(msgspec.Struct, kw_only=True):
    # Bounded as stored (stripe_events) and as an instant: past them, the malformed path.
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    object: str = "event"
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    created: Instant
    data: EventData = EventData()
    api_version: str | None = None
    livemode: bool = False
    pending_webhooks: int = 0

    @property
    def at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.created, dt.UTC)


def event_of(
    event_id: str, event_type: str, created: int, obj: msgspec.Struct, *, api_version: str | None = None
) -> Event:
    """An event carrying `obj` as it is now (a later change to `obj` does not reach it)."""
    return Event(
        id=event_id,
        type=event_type,
        created=created,
        data=EventData(msgspec.Raw(msgspec.json.encode(obj))),
        api_version=api_version,
        pending_webhooks=1,
    )


# --- payments -----------------------------------------------------------------------------------


class PaymentError(msgspec.Struct, kw_only=True):
    code: str | None = None
    decline_code: str | None = None


class NextAction(msgspec.Struct, kw_only=True):
    type: str


class PaymentIntent(msgspec.Struct, kw_only=True):
    id: Id
    object: str = "payment_intent"
    amount: Amount
    currency: Currency
    status: str | None = None
    customer: str | None = None
    metadata: Metadata = {}
    client_secret: str | None = None
    payment_method: str | None = None
    latest_charge: Expandable | None = None
    charge: Expandable | None = None  # older API versions
    invoice: Expandable | None = None  # older API versions: the invoice this pays
    last_payment_error: PaymentError | None = None
    next_action: NextAction | None = None
    created: int = 0

    def __post_init__(self) -> None:
        known_currency(self.currency)

    @property
    def decline_code(self) -> str | None:
        error = self.last_payment_error
        return None if error is None else (error.decline_code or error.code)


class SourceRef(msgspec.Struct, kw_only=True):
    """An expanded source (a charge, a refund) as a balance transaction names it."""

    id: str
    payment_intent: str | None = None
    charge: str | None = None


class BalanceTransaction(msgspec.Struct, kw_only=True):
    id: str
    object: str = "balance_transaction"
    amount: int
    fee: int = 0
    net: int = 0
    currency: str
    status: str = ""
    created: int
    reporting_category: str | None = None
    type: str | None = None
    source: str | SourceRef | None = None

    @property
    def source_ids(self) -> tuple[str, ...]:
        """The ids its source goes by: its own, and its PaymentIntent's and charge's."""
        source = self.source
        if isinstance(source, str):
            return (source,)
        if source is None:
            return ()
        return tuple(x for x in (source.id, source.payment_intent, source.charge) if x)

    def as_ledger_sees_it(self) -> reconcile.BalanceTransaction:
        return reconcile.BalanceTransaction(
            id=self.id,
            reporting_category=self.reporting_category or self.type or "",
            amount=self.amount,
            fee=self.fee,
            net=self.net,
            currency=self.currency.upper(),
            status=self.status,
            created=dt.datetime.fromtimestamp(self.created, dt.UTC),
            source_ids=self.source_ids,
        )


class Refund(msgspec.Struct, kw_only=True):
    id: Id
    object: str = "refund"
    amount: Amount
    currency: Currency
    status: str | None = None
    payment_intent: Expandable | None = None
    charge: Expandable | None = None
    metadata: Metadata = {}
    created: int = 0

    def __post_init__(self) -> None:
        known_currency(self.currency)


class Charge(msgspec.Struct, kw_only=True):
    id: Id
    object: str = "charge"
    amount: Amount
    currency: Currency
    status: str | None = None
    paid: bool | None = None
    payment_intent: Expandable | None = None
    balance_transaction: str | BalanceTransaction | None = None
    refunds: StripeList[Refund] | None = None
    metadata: Metadata = {}

    def __post_init__(self) -> None:
        known_currency(self.currency)


class Dispute(msgspec.Struct, kw_only=True):
    id: Id
    object: str = "dispute"
    amount: Amount
    currency: Currency
    status: str
    payment_intent: Expandable | None = None
    charge: Expandable | None = None

    def __post_init__(self) -> None:
        known_currency(self.currency)


# --- subscriptions and invoices -----------------------------------------------------------------


class Recurring(msgspec.Struct, kw_only=True):
    interval: str
    interval_count: int


class Price(msgspec.Struct, kw_only=True):
    id: str
    object: str = "price"
    lookup_key: str | None = None
    unit_amount: int | None = None
    currency: str
    recurring: Recurring | None = None


class SubscriptionItem(msgspec.Struct, kw_only=True):
    id: str
    object: str = "subscription_item"
    # Where the current API keeps a subscription's period (older ones keep it on the subscription).
    current_period_start: Instant | None = None
    current_period_end: Instant | None = None
    price: Price | None = None


class CancellationDetails(msgspec.Struct, kw_only=True):
    reason: str | None = None


class BillingMode(msgspec.Struct, kw_only=True):
    type: str


class Subscription(msgspec.Struct, kw_only=True):
    id: Id
    object: str = "subscription"
    customer: str | None = None
    status: str
    metadata: Metadata = {}
    cancel_at: Instant | None = None
    ended_at: Instant | None = None
    cancellation_details: CancellationDetails | None = None
    billing_mode: BillingMode | None = None
    items: StripeList[SubscriptionItem] | None = None
    latest_invoice: str | Invoice | None = None  # expanded when asked for

    @property
    def end_reason(self) -> str | None:
        return None if self.cancellation_details is None else self.cancellation_details.reason


class SubscriptionDetails(msgspec.Struct, kw_only=True):
    subscription: str | None = None
    metadata: Metadata = {}


class InvoiceParent(msgspec.Struct, kw_only=True):
    type: str
    subscription_details: SubscriptionDetails | None = None


class LinePeriod(msgspec.Struct, kw_only=True):
    start: Instant | None = None
    end: Instant | None = None


class PriceDetails(msgspec.Struct, kw_only=True):
    price: str | None = None


class Pricing(msgspec.Struct, kw_only=True):
    price_details: PriceDetails | None = None


class InvoiceLine(msgspec.Struct, kw_only=True):
    amount: int = 0
    period: LinePeriod | None = None
    pricing: Pricing | None = None


class PaymentTarget(msgspec.Struct, kw_only=True):
    type: str = "payment_intent"
    payment_intent: Expandable | None = None


class InvoicePayment(msgspec.Struct, kw_only=True):
    object: str = "invoice_payment"
    amount_paid: int = 0
    status: str | None = None
    payment: PaymentTarget | None = None


class ConfirmationSecret(msgspec.Struct, kw_only=True):
    client_secret: str | None = None


class SubscriptionRef(msgspec.Struct, kw_only=True):
    """A subscription expanded in an invoice of the older shape."""

    id: str
    metadata: Metadata = {}


class _InvoiceFields(msgspec.Struct, kw_only=True):
    object: str = "invoice"
    customer: str | None = None
    status: str | None = None
    paid: bool | None = None  # older API versions
    billing_reason: str | None = None
    amount_due: Amount = 0
    amount_paid: Amount = 0
    currency: Currency | None = None
    period_start: Instant | None = None
    period_end: Instant | None = None
    parent: InvoiceParent | None = None
    subscription: str | SubscriptionRef | None = None  # before 2025-03-31 (and localstripe)
    # Older API versions (and localstripe) name it here, null until there is one; the current
    # shape has no such field (unset), and names it in `payments`.
    payment_intent: Expandable | msgspec.UnsetType | None = msgspec.UNSET
    charge: Expandable | None = None  # older API versions
    confirmation_secret: ConfirmationSecret | None = None  # expanded when asked for
    lines: StripeList[InvoiceLine] | None = None
    payments: StripeList[InvoicePayment] | None = None
    hosted_invoice_url: str | None = None
    metadata: Metadata = {}
    created: int = 0
    attempt_count: int = 0

    @property
    def is_paid(self) -> bool:
        return self.status == "paid" or self.paid is True

    @property
    def subscription_and_contract(self) -> tuple[str | None, str | None]:
        """(subscription id, contract id from its metadata), in either shape."""
        parent = self.parent
        if parent is not None and parent.type == "subscription_details" and parent.subscription_details:
            details = parent.subscription_details
            return details.subscription, details.metadata.get("contract_id")
        if isinstance(self.subscription, SubscriptionRef):
            return self.subscription.id, self.subscription.metadata.get("contract_id")
        return self.subscription, None

    @property
    def paying_intent(self) -> str | None:
        """The PaymentIntent that paid it: in its payments (current shape), else its own field."""
        for payment in self.payments.data if self.payments else ():
            if payment.payment is not None and payment.payment.payment_intent:
                return ident(payment.payment.payment_intent)
        return ident(self.payment_intent)

    @property
    def service_span(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The span it pays for: its line's period (a renewal's own period_start/end name the
        period before), else its own."""
        lines = self.lines.data if self.lines else []
        span = lines[0].period if lines and lines[0].period else LinePeriod()
        return instant(span.start or self.period_start), instant(span.end or self.period_end)


class Invoice(_InvoiceFields, kw_only=True):
    id: Id
    currency: Currency

    def __post_init__(self) -> None:
        known_currency(self.currency)


class UpcomingInvoice(_InvoiceFields, kw_only=True):
    """An invoice Stripe will create: it has no id yet."""

    id: str | None = None

    def __post_init__(self) -> None:
        known_currency(self.currency)


# --- hosted pages -------------------------------------------------------------------------------


class CheckoutSession(msgspec.Struct, kw_only=True):
    id: str
    object: str = "checkout.session"
    mode: str | None = None
    customer: str | None = None
    metadata: Metadata = {}
    status: str | None = None
    payment_status: str | None = None
    payment_intent: Expandable | None = None
    subscription: Expandable | None = None
    success_url: str | None = None
    expires_at: Instant | None = None


# --- customers and endpoints (the sandbox keeps them; Coverline only writes them) ---------------


class InvoiceSettings(msgspec.Struct, kw_only=True):
    default_payment_method: str | None = None


class Customer(msgspec.Struct, kw_only=True):
    id: str
    object: str = "customer"
    name: str | None = None
    email: str | None = None
    preferred_locales: list[str] = []
    invoice_settings: InvoiceSettings = msgspec.field(default_factory=InvoiceSettings)


class WebhookEndpoint(msgspec.Struct, kw_only=True):
    id: str
    object: str = "webhook_endpoint"
    url: str
    enabled_events: list[str] = []
