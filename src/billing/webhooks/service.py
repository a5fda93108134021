"""Stripe webhooks: verify, decode once, store once, apply in one transaction.

Events arrive late, twice and out of order. Each is stored under its unique id (a duplicate is a
no-op), and applied through the contract operations, which are idempotent by a reference derived
from the Stripe object (PaymentIntent, invoice, subscription, refund). Where arrival order could
mislead, the decision comes from the object's state: a failed invoice that is paid by now is not
past due; a subscription says itself whether it ended for non-payment or by request.

An event's object is decoded once, at the edge, into the Struct its handler reads
(`billing.stripe_objects`): one that does not fit is malformed before anything is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Any, Generic, TypeVar

import msgspec
import structlog
from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.exc import IntegrityError

from billing import stripe_objects as so
from billing.cancellation.service import StopSubscription
from billing.finance.reconcile import BalanceTransaction
from billing.gateway import Gateway
from billing.ledger.rules import LedgerKind
from billing.ledger.service import record_once
from billing.tables import StripeEventRow
from billing.webhooks.rules import Unwanted, invoice_kind, mismatched, paid_already, subscription_ending
from billing.webhooks.signatures import verify
from billing.webhooks.unwanted import UnwantedRefund
from entitlements import jobs
from entitlements.audit_names import Action
from entitlements.catalog import Billing
from entitlements.contracts import service as services
from entitlements.contracts.rules import AFTER_COVER, LifecycleEvent
from entitlements.contracts.store import ContractState, LifecycleRecord, LockedContract
from entitlements.coverage import ContractStatus, Period
from entitlements.errors import DomainError
from entitlements.money import Money
from entitlements.store import audit
from entitlements.store.base import utcnow
from entitlements.store.statements import broken_constraint
from entitlements.store.tables import ContractRow
from entitlements.store.unit_of_work import UnitOfWork, Units

ACTOR = "stripe"
T = TypeVar("T")
O = TypeVar("O", bound=msgspec.Struct)  # noqa: E741
OUTCOME_LENGTH = 200  # stripe_events.outcome
log = structlog.get_logger("billing.webhooks")

stripe_events: Table = StripeEventRow.__table__  # type: ignore[assignment]
contracts: Table = ContractRow.__table__  # type: ignore[assignment]
_DISPUTED = (
    update(contracts).where(contracts.c.id == bindparam("contract_id")).values(disputed=bindparam("disputed"))
)
_STORE = insert(stripe_events)
_EVENT_KEY = stripe_events.primary_key.name  # a twin of a stored event breaks it
_OUTCOME = (
    update(stripe_events)
    .where(stripe_events.c.id == bindparam("event_id"))
    .values(outcome=bindparam("result"))
)
Event = so.Event


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    # Signed by Stripe, but not in a shape we can read: acknowledged (a refusal would have Stripe
    # deliver it again for days, then disable the endpoint), stored, and logged as an alert.
    MALFORMED = "malformed"
    # Names a contract (in Stripe's metadata) that we never committed. Checkout commits its
    # contract before it asks Stripe for anything, so this is not "not yet": acknowledged,
    # stored, and left alone.
    UNKNOWN_CONTRACT = "unknown_contract"


class Why(StrEnum):
    """Why an event changed nothing."""

    NOT_ACTED_ON = "not an event Coverline acts on"
    NO_CONTRACT_FOR_PAYMENT_INTENT = "no contract for this PaymentIntent"
    NO_CONTRACT_FOR_INVOICE = "no contract for this invoice"
    NO_CONTRACT_FOR_SUBSCRIPTION = "no contract for this subscription"
    NO_CONTRACT_FOR_SESSION = "no contract for this session"
    INVOICE_NOT_PAID = "the invoice is not paid"
    INVOICE_PAID_BY_NOW = "the invoice is paid by now"
    FIRST_PAYMENT_FAILED = "the first payment failed; the contract stays pending"
    EARLIER_ATTEMPT = "the subscription of an earlier payment attempt"
    ABANDONED = "the contract was abandoned unpaid"
    NO_BALANCE_TRANSACTION = "no balance transaction yet"
    NO_FEE = "no fee"
    SESSION_NOT_PAID = "not paid"


class Handled(msgspec.Struct, frozen=True):
    """What a handler made of its event: applied (with what it did, where that says more than
    "applied"), ignored and why, or naming a contract we never had."""

    outcome: Outcome
    detail: str = ""

    @property
    def stored(self) -> str:
        """As `stripe_events.outcome` keeps it."""
        text = f"{self.outcome.value}: {self.detail}" if self.detail else self.outcome.value
        return text[:OUTCOME_LENGTH]


APPLIED = Handled(Outcome.APPLIED)


def applied(detail: str) -> Handled:
    return Handled(Outcome.APPLIED, detail)


def ignored(why: Why | str) -> Handled:
    return Handled(Outcome.IGNORED, str(why))


class UnknownContract(Exception):
    """The event names a contract of ours that does not exist."""


class Reads(msgspec.Struct, Generic[O], frozen=True):
    """An event type's handler and the Struct its object is decoded into for it."""

    type: type[O]
    handle: Callable[[UnitOfWork, Event, O, Lookups], Awaitable[Handled]]


async def ingest(
    units: Units,
    raw: bytes,
    signature: str | None,
    *,
    secrets: Sequence[str],
    gateway: Gateway,
    now: float,
) -> tuple[Outcome, str]:
    """Verify and apply one delivery. Raises `SignatureError` (nothing stored); any other exception
    rolls everything back so that Stripe delivers again."""
    verify(raw, signature, secrets, now)
    return await record_and_apply(units, raw, gateway)


async def record_and_apply(units: Units, raw: bytes, gateway: Gateway) -> tuple[Outcome, str]:
    """Store an authentic event once and apply it, in one transaction: the webhook's path after
    its signature, and the repair path for events fetched from Stripe itself."""
    try:
        event = msgspec.json.decode(raw, type=Event)
    except msgspec.DecodeError as exc:
        # Not even an event: kept under an id of its own bytes, so a redelivery is a duplicate.
        event = Event(
            id=f"evt_unreadable_{hashlib.sha256(raw).hexdigest()[:24]}", type="unreadable", created=0
        )
        log.error("stripe event malformed", event_id=event.id, error=str(exc))
        return await _malformed(units, event, raw, str(exc))
    reads = HANDLERS.get(event.type)
    obj: msgspec.Struct | None = None
    if reads is not None:
        try:
            obj = msgspec.json.decode(event.data.object, type=reads.type)
        except msgspec.DecodeError as exc:  # a field its handler reads is missing or of another type
            log.error("stripe event malformed", event_id=event.id, type=event.type, error=str(exc))
            return await _malformed(units, event, raw, str(exc))
    # What the handler will ask the gateway is asked now, with no transaction open.
    known = await look_up(event.type, obj, gateway)
    try:
        async with units() as run:
            # Stored first, under its id, with the usual outcome (any other is written below). The
            # unit holds the row and sends it with the handler's first statement, in one round
            # trip: a twin committed before makes that statement fail on the row's key, and one
            # in flight makes it wait for the twin, then fail, or go on if the twin rolled back.
            await run.run(_STORE, **_stored(event, raw, APPLIED))
            handled = await apply(run, event, reads, obj, known)
            if handled != APPLIED:
                await run.run(_OUTCOME, event_id=event.id, result=handled.stored)
    except IntegrityError as exc:
        if broken_constraint(exc) != _EVENT_KEY:
            raise  # not a twin: rolled back, and Stripe delivers it again
        return Outcome.DUPLICATE, event.id
    log.info(
        "stripe event",
        event_id=event.id,
        type=event.type,
        outcome=handled.outcome.value,
        detail=handled.detail,
    )
    return handled.outcome, event.id


def _stored(event: Event, raw: bytes, handled: Handled) -> dict[str, Any]:
    """The event's row: under its id, as it came, with an outcome."""
    return {
        "id": event.id,
        "type": event.type,
        "created": event.created,
        "payload": raw.decode("utf-8", "replace"),
        "received_at": utcnow(),
        "outcome": handled.stored,
    }


async def _malformed(units: Units, event: Event, raw: bytes, error: str) -> tuple[Outcome, str]:
    """Keep an event that cannot be applied as it came, once, with what was wrong with it."""
    async with units() as run:
        stored = await run.insert_new(stripe_events, **_stored(event, raw, Handled(Outcome.MALFORMED, error)))
    return (Outcome.MALFORMED if stored else Outcome.DUPLICATE), event.id


async def apply(
    run: UnitOfWork, event: Event, reads: Reads[Any] | None, obj: msgspec.Struct | None, known: Lookups
) -> Handled:
    if reads is None or obj is None:
        return ignored(Why.NOT_ACTED_ON)
    try:
        return await reads.handle(run, event, obj, known)
    except DomainError as exc:  # e.g. a payment for a contract cancelled meanwhile: nothing to do
        return ignored(exc.detail)
    except UnknownContract as exc:
        return Handled(Outcome.UNKNOWN_CONTRACT, str(exc))


# --- what handlers ask the gateway, asked before the transaction ----------------------------------


class NotLookedUp(RuntimeError):
    """A handler asked for something `look_up` did not fetch: a bug, not a malformed event."""


class Lookups:
    """The gateway's answers a handler needs, fetched by `look_up` before the event's transaction
    opens: no lock is held while Stripe answers."""

    def __init__(self) -> None:
        self.invoices: dict[str, so.Invoice | None] = {}
        self.subscription_contracts: dict[str, str | None] = {}
        self.balance_transactions: dict[str, BalanceTransaction | None] = {}
        self.paying_intents: dict[str, str | None] = {}

    def invoice(self, invoice_id: str) -> so.Invoice | None:
        return self._get(self.invoices, invoice_id)

    def subscription_contract(self, subscription_id: str) -> str | None:
        return self._get(self.subscription_contracts, subscription_id)

    def balance_transaction(self, transaction_id: str) -> BalanceTransaction | None:
        return self._get(self.balance_transactions, transaction_id)

    def paying_intent(self, invoice: so.Invoice) -> str | None:
        """The PaymentIntent that paid it: named in the event's invoice, else asked."""
        named = invoice.paying_intent
        return named if named is not None or invoice.id is None else self.paying_intents.get(invoice.id)

    @staticmethod
    def _get(found: dict[str, T], key: str) -> T:
        if key not in found:
            raise NotLookedUp(key)
        return found[key]


async def look_up(event_type: str, obj: msgspec.Struct | None, gateway: Gateway) -> Lookups:
    """Ask the gateway what the event's handler will need: the current invoice where an event's
    copy could mislead, the contract in a subscription's metadata where an invoice of the older
    shape does not carry it, a charge's balance transaction (for Stripe's fee)."""
    known = Lookups()
    if event_type == "payment_intent.succeeded" and isinstance(obj, so.PaymentIntent):
        invoice_id = so.ident(obj.invoice)
        if invoice_id is None:
            return known
        invoice = await gateway.invoice(invoice_id)
        known.invoices[invoice_id] = invoice
        known.paying_intents[invoice_id] = obj.id  # this very payment
        if invoice is not None:
            await _look_up_subscription(invoice, gateway, known)
    elif isinstance(obj, so.Invoice | so.UpcomingInvoice):
        if event_type == "invoice.payment_failed" and obj.id is not None:
            known.invoices[obj.id] = await gateway.invoice(obj.id)
        if isinstance(obj, so.Invoice) and obj.is_paid and obj.id and obj.paying_intent is None:
            # Booked without it, a renewal could not be refunded against its payment.
            known.paying_intents[obj.id] = await gateway.invoice_payment_intent(obj.id)
        await _look_up_subscription(obj, gateway, known)
    elif (
        event_type in _FEE_EVENTS and isinstance(obj, so.Charge) and isinstance(obj.balance_transaction, str)
    ):
        txn = obj.balance_transaction
        known.balance_transactions[txn] = await gateway.balance_transaction(txn)
    return known


async def _look_up_subscription(
    invoice: so.Invoice | so.UpcomingInvoice, gateway: Gateway, known: Lookups
) -> None:
    subscription, contract_id = invoice.subscription_and_contract
    if contract_id is None and subscription is not None:
        known.subscription_contracts[subscription] = await gateway.subscription_contract(subscription)


# --- finding our contract from Stripe's objects ----------------------------------------------------


async def _contract(
    run: UnitOfWork,
    *,
    contract_id: str | None = None,
    subscription: str | None = None,
    payment_intent: str | None = None,
) -> ContractState | None:
    """Our contract, by the id in Stripe's metadata, else by its subscription or PaymentIntent."""
    record = LifecycleRecord(run)
    if contract_id:
        found = await record.find("contract_id", contract_id)
        if found is None:
            raise UnknownContract(f"no contract {contract_id}")
        return found
    if subscription:
        return await record.find("subscription", subscription)
    if payment_intent:
        return await record.find("payment_intent", payment_intent)
    return None


async def _locked(
    run: UnitOfWork,
    *,
    contract_id: str | None = None,
    subscription: str | None = None,
    payment_intent: str | None = None,
    fact: LifecycleEvent | None = None,
) -> LockedContract | None:
    """The same contract taken for writing, and linked to the subscription and PaymentIntent
    named (unless it names its own already): one statement when the metadata names it. With the
    fact the handler will record, the lock finds whether it was applied before."""
    if not contract_id:
        found = await _contract(run, subscription=subscription, payment_intent=payment_intent)
        if found is None:
            return None
        contract_id = found.id
    record = LifecycleRecord(run)
    locked = await record.lock(
        contract_id, payment_intent=payment_intent, subscription=subscription, fact=fact
    )
    if locked is None:
        raise UnknownContract(f"no contract {contract_id}")
    return locked


async def _invoice_contract(
    run: UnitOfWork, invoice: so.Invoice | so.UpcomingInvoice, known: Lookups
) -> ContractState | None:
    subscription, contract_id = invoice.subscription_and_contract
    if contract_id is None and subscription:
        linked = await _contract(run, subscription=subscription)
        if linked is not None:
            return linked
        contract_id = known.subscription_contract(subscription)  # an older shape: asked before
    return await _contract(run, contract_id=contract_id, subscription=subscription)


# --- handlers ----------------------------------------------------------------------------------------


class Payment(msgspec.Struct, frozen=True):
    """A payment Stripe reports, as the ledger books it."""

    reference: str  # the PaymentIntent's id, or the invoice's
    ledger_key: str
    amount: int
    currency: str
    payment_intent: str | None
    charge: str | None = None
    invoice: str | None = None


async def payment_succeeded(run: UnitOfWork, event: Event, pi: so.PaymentIntent, known: Lookups) -> Handled:
    contract = await _locked(
        run,
        contract_id=pi.metadata.get("contract_id"),
        payment_intent=pi.id,
        fact=LifecycleEvent.payment(pi.id, event.at),
    )
    if contract is None and (invoice_id := so.ident(pi.invoice)):
        # An invoice's payment (older API versions name it): the invoice, fetched now, decides.
        invoice = known.invoice(invoice_id)
        if invoice is not None and invoice.is_paid:
            return await invoice_paid(run, event, invoice, known)
    if contract is None:
        return ignored(Why.NO_CONTRACT_FOR_PAYMENT_INTENT)
    payment = Payment(
        reference=pi.id,
        ledger_key=f"charge:{pi.id}",
        amount=pi.amount,
        currency=pi.currency.upper(),
        payment_intent=pi.id,
        charge=so.ident(pi.latest_charge) or so.ident(pi.charge),
    )
    unwanted = await _unwanted(run, contract, payment, None, event)
    if unwanted is not None:
        return unwanted
    bought = await services.record_payment(
        run, contract, reference=pi.id, paid_at=event.at, actor=ACTOR, checked=False
    ) or await LifecycleRecord(run).period_bought(pi.id)  # recorded before (by the checkout, say)
    await record_once(
        run,
        payment.ledger_key,
        LedgerKind.SALE,
        payment.amount,
        payment.currency,
        event.at,
        contract_id=contract.id,
        stripe_payment_intent=pi.id,
        stripe_charge=payment.charge,
        period_start=bought.start if bought else None,  # the coverage it pays for: revenue
        period_end=bought.end if bought else None,  # is earned over this span
    )
    return APPLIED


def _after_the_end(contract: ContractState, period: Period | None, paid_at: dt.datetime) -> bool:
    """Whether a payment reached a contract that had ended after cover (cancelled, charged back,
    lapsed, expired) and buys nothing: cover only after the end (a renewal taken as the customer
    cancelled), or any payment made after a cancellation, a chargeback or a lapse (3-D Secure
    finished after a cancel: no cancellation's refund counted it; an open invoice paid from its
    link once the subscription had lapsed: its grace, unpaid, covered nothing, and an ended
    contract is not revived). The last instalment of a term that ran out, paid late, buys its
    period up to the end: its expiry cuts it there."""
    if contract.status not in AFTER_COVER or contract.ended_at is None:
        return False
    if period is None:  # a PaymentIntent of its own: judged by when it was paid
        return paid_at >= contract.ended_at
    after = period.start >= contract.ended_at
    return after or (contract.status is not ContractStatus.EXPIRED and paid_at >= contract.ended_at)


async def _unwanted(
    run: UnitOfWork, contract: LockedContract, payment: Payment, period: Period | None, event: Event
) -> Handled | None:
    """A payment that buys nothing is booked as what it is, said in the contract's history, and
    refunded by a job: one for a period already paid (Stripe charged twice: a second
    PaymentIntent, a second invoice for one period), one for a contract that ended before it
    arrived (abandoned unpaid, cancelled, charged back), or one that is not the contract's price.
    None when it buys coverage (or was applied before, this very payment)."""
    price = Money(contract.price_amount, contract.currency)
    whole_price = payment.invoice is None  # a PaymentIntent of our checkout is the price itself
    wrong = mismatched(payment.currency, payment.amount, price, whole_price=whole_price)
    if contract.status is ContractStatus.PENDING_PAYMENT and not wrong:
        return None  # never paid: nothing it could pay twice (the common case, with no read)
    record = LifecycleRecord(run)
    facts, periods = contract.history if contract.history is not None else await record.history(contract.id)
    if any(f.reference == payment.reference for f in facts):
        return None
    covered = None
    if wrong:
        reason = Unwanted.MISMATCHED_PAYMENT
    elif contract.status is ContractStatus.ABANDONED or _after_the_end(contract, period, event.at):
        reason = Unwanted.LATE_PAYMENT
    else:
        plan = await record.plan(contract)
        covered = paid_already(plan.billing is Billing.UPFRONT, periods, period)
        if covered is None:
            return None
        reason = Unwanted.DUPLICATE_PAYMENT
    stored = await record_once(
        run,
        payment.ledger_key,
        LedgerKind(reason.value),
        payment.amount,
        payment.currency,
        event.at,
        contract_id=contract.id,
        stripe_payment_intent=payment.payment_intent,
        stripe_charge=payment.charge,
        stripe_invoice=payment.invoice,
    )
    if not stored:
        return applied(f"{reason.value}: booked before")
    why: dict[str, Any] = {
        "payment": payment.reference,
        "amount": payment.amount,
        "currency": payment.currency,
    }
    if covered is not None:
        why["paid_already"] = [covered.start.isoformat(), covered.end.isoformat()]
    if reason is Unwanted.MISMATCHED_PAYMENT:
        why["price"] = {"amount": price.amount, "currency": price.currency}
        if payment.payment_intent is not None and payment.invoice is None:
            await record.unlink_payment_intent(contract.id, payment.payment_intent)
    subscription = contract.stripe_subscription_id
    if (
        reason is Unwanted.LATE_PAYMENT
        and contract.status in (ContractStatus.LAPSED, ContractStatus.EXPIRED)
        and subscription is not None
        and not any(f.reference == f"{subscription}:ended" for f in facts)
    ):  # ended here (by the lifecycle call), not by Stripe: its subscription would charge again
        stop = StopSubscription(contract.id, subscription)
        run.enqueue(jobs.STOP_SUBSCRIPTION, msgspec.json.encode(stop))
    if payment.payment_intent is not None:
        refund = UnwantedRefund(contract.id, payment.payment_intent, payment.amount, payment.currency, reason)
        run.enqueue(jobs.REFUND_UNWANTED, msgspec.json.encode(refund))
        why["refund"] = "queued"
    else:
        why["refund"] = "by hand: Stripe named no PaymentIntent"
        log.error("unwanted payment not refunded", contract_id=contract.id, payment=payment.reference)
    await audit.append(run, "contract", contract.id, ACTOR, [(Action(reason.value), why)])
    return applied(f"{reason.value}: refunded by a job")


async def invoice_paid(run: UnitOfWork, event: Event, invoice: so.Invoice, known: Lookups) -> Handled:
    subscription, _ = invoice.subscription_and_contract
    found = await _invoice_contract(run, invoice, known)
    if found is None:
        return ignored(Why.NO_CONTRACT_FOR_INVOICE)
    fact = LifecycleEvent.payment(invoice.id, event.at)
    contract = await _locked(run, contract_id=found.id, subscription=subscription, fact=fact)
    assert contract is not None  # found just now, in this transaction
    period = _service_period(invoice)
    payment = Payment(
        reference=invoice.id,
        ledger_key=f"invoice:{invoice.id}",
        amount=invoice.amount_paid or invoice.amount_due,
        currency=invoice.currency.upper(),
        payment_intent=known.paying_intent(invoice),
        charge=so.ident(invoice.charge),
        invoice=invoice.id,
    )
    unwanted = await _unwanted(run, contract, payment, period, event)
    if unwanted is not None:
        return unwanted
    await services.record_payment(
        run,
        contract,
        reference=invoice.id,
        paid_at=event.at,
        actor=ACTOR,
        checked=False,
        period=period,
    )
    _, periods = await LifecycleRecord(run).history(contract.id)
    kind = invoice_kind(invoice.billing_reason, period.start if period else None, (p.start for p in periods))
    await record_once(
        run,
        payment.ledger_key,
        kind,
        payment.amount,
        payment.currency,
        event.at,
        contract_id=contract.id,
        stripe_invoice=invoice.id,
        stripe_payment_intent=payment.payment_intent,
        stripe_charge=payment.charge,
        period_start=period.start if period else None,
        period_end=period.end if period else None,
    )
    return APPLIED


def _service_period(invoice: so.Invoice) -> Period | None:
    start, end = invoice.service_span
    return Period(start, end) if start and end and end > start else None


async def invoice_changed(run: UnitOfWork, event: Event, invoice: so.Invoice, known: Lookups) -> Handled:
    """Any other invoice event: acted on only if the invoice says it is paid (localstripe, for
    one, reports a subscription's first invoice paid in `invoice.created` alone)."""
    if invoice.is_paid:
        return await invoice_paid(run, event, invoice, known)
    return ignored(Why.INVOICE_NOT_PAID)


async def invoice_failed(run: UnitOfWork, event: Event, invoice: so.Invoice, known: Lookups) -> Handled:
    now = known.invoice(invoice.id)
    if now is not None and now.status == "paid":
        return ignored(Why.INVOICE_PAID_BY_NOW)
    contract = await _invoice_contract(run, invoice, known)
    if contract is None:
        return ignored(Why.NO_CONTRACT_FOR_INVOICE)
    subscription, _ = invoice.subscription_and_contract
    if subscription and contract.stripe_subscription_id not in (None, subscription):
        return ignored(Why.EARLIER_ATTEMPT)  # a declined attempt's invoice, whenever it arrives
    first = invoice.billing_reason == "subscription_create" or (
        # The older shape (localstripe's) gives no reason: a contract never paid is at its first.
        invoice.billing_reason is None and contract.status is ContractStatus.PENDING_PAYMENT
    )
    if first:
        return ignored(Why.FIRST_PAYMENT_FAILED)
    due = _service_period(invoice)
    failed = {
        "contract_id": contract.id,
        "invoice": invoice.id,
        "hosted_invoice_url": invoice.hosted_invoice_url,
    }
    run.emit("payment.failed", failed, product_id=contract.product_id, contract_id=contract.id)
    await services.mark_past_due(
        run,
        contract.id,
        reference=invoice.id,
        at=due.start if due else event.at,
        actor=ACTOR,
        checked=False,
    )
    return APPLIED


async def subscription_changed(
    run: UnitOfWork, event: Event, sub: so.Subscription, known: Lookups
) -> Handled:
    contract = await _locked(run, contract_id=sub.metadata.get("contract_id"), subscription=sub.id)
    if contract is None:
        return ignored(Why.NO_CONTRACT_FOR_SUBSCRIPTION)
    if sub.status not in ("canceled", "incomplete_expired"):
        return applied("subscription noted")
    if contract.stripe_subscription_id not in (None, sub.id):
        return ignored(Why.EARLIER_ATTEMPT)
    if contract.status is ContractStatus.ABANDONED:  # its subscription let go after (checkout.release)
        return ignored(Why.ABANDONED)
    # The subscription says why it ended; the order its events arrived in does not matter.
    ended = so.instant(sub.ended_at) or event.at
    # Expired unpaid: its first invoice was never paid (Stripe's word, whatever arrived before).
    expired = sub.status == "incomplete_expired"
    target = (
        ContractStatus.ABANDONED
        if expired
        else subscription_ending(sub.end_reason, ended, so.instant(sub.cancel_at))
    )
    if contract.status in AFTER_COVER:
        # Ended already (lapsed, expired or charged back here, then its subscription stopped by
        # us): Stripe's end is a fact of that ending, which a "cancelled" would have rewritten.
        target = contract.status
    await services.end_contract(
        run,
        contract,
        target=target,
        reference=f"{sub.id}:ended",
        at=ended,
        actor=ACTOR,
        checked=False,
    )
    return applied(target.value)


async def payment_action_required(
    run: UnitOfWork, event: Event, invoice: so.Invoice, known: Lookups
) -> Handled:
    """A renewal needs the customer to authenticate (3-D Secure): said in the contract's
    history with the link to Stripe's hosted invoice page, where they can."""
    contract = await _invoice_contract(run, invoice, known)
    if contract is None:
        return ignored(Why.NO_CONTRACT_FOR_INVOICE)
    needed = {"invoice": invoice.id, "hosted_invoice_url": invoice.hosted_invoice_url}
    await audit.append(run, "contract", contract.id, ACTOR, [(Action.PAYMENT_ACTION_REQUIRED, needed)])
    return APPLIED


async def renewal_notice(
    run: UnitOfWork, event: Event, invoice: so.UpcomingInvoice, known: Lookups
) -> Handled:
    contract = await _invoice_contract(run, invoice, known)
    if contract is None:
        return ignored(Why.NO_CONTRACT_FOR_SUBSCRIPTION)
    await audit.append(run, "contract", contract.id, ACTOR, [(Action.RENEWAL_NOTICE, {"event_id": event.id})])
    return APPLIED


async def refund_recorded(run: UnitOfWork, event: Event, refund: so.Refund, known: Lookups) -> Handled:
    await _book_refunds(run, event, [refund], None)
    return APPLIED


async def charge_refunded(run: UnitOfWork, event: Event, charge: so.Charge, known: Lookups) -> Handled:
    refunds = charge.refunds.data if charge.refunds else []
    await _book_refunds(run, event, refunds, so.ident(charge.payment_intent))
    return APPLIED


async def _book_refunds(run: UnitOfWork, event: Event, refunds: list[so.Refund], intent: str | None) -> None:
    """Each refund, booked once; one that failed or was cancelled is booked with its reversal,
    whichever of its events comes first (the money went out, then came back)."""
    for refund in refunds:
        paid_by = so.ident(refund.payment_intent) or intent
        contract = await _contract(
            run, contract_id=refund.metadata.get("contract_id"), payment_intent=paid_by
        )
        ids = {
            "contract_id": contract.id if contract else None,
            "stripe_refund": refund.id,
            "stripe_payment_intent": paid_by,
            "stripe_charge": so.ident(refund.charge),
        }
        amount, currency = refund.amount, refund.currency
        await record_once(run, f"refund:{refund.id}", LedgerKind.REFUND, -amount, currency, event.at, **ids)
        if refund.status in ("failed", "canceled"):
            key = f"refund_reversal:{refund.id}"
            reversed_now = await record_once(
                run, key, LedgerKind.REFUND_REVERSAL, amount, currency, event.at, **ids
            )
            if reversed_now and contract is not None:
                # The customer is still owed it, and nothing here will pay it again (a cancel's
                # refund is made once; a late payment's job is done): said in the contract's
                # history, for finance to pay back by hand; held, never earned, meanwhile.
                owed = {"amount": amount, "currency": currency.upper(), "refund": refund.id}
                log.error("refund failed", contract_id=contract.id, refund=refund.id, amount=amount)
                await audit.append(run, "contract", contract.id, ACTOR, [(Action.REFUND_OUTSTANDING, owed)])


_DISPUTE_CLOSED = {"won": Action.DISPUTE_WON, "lost": Action.DISPUTE_LOST}
_CLOSES = (*_DISPUTE_CLOSED.values(), Action.DISPUTE_CLOSED)


async def _closed_before(run: UnitOfWork, contract_id: str, dispute_id: str) -> bool:
    """Whether the contract's history has this dispute closed already (its opening can arrive
    after its close: events come in any order)."""
    closes = await audit.changes_of(run, "contract", contract_id, _CLOSES)
    return any(changes.get("dispute") == dispute_id for changes in closes)


async def dispute_changed(run: UnitOfWork, event: Event, dispute: so.Dispute, known: Lookups) -> Handled:
    """A dispute opened: cover continues, the contract is flagged (history, check). Won: the flag
    clears and the money comes back. Lost: cover ends at the instant it closed (`chargeback`;
    claims approved before stand), and the subscription is stopped at Stripe by a job."""
    intent = so.ident(dispute.payment_intent)
    found = await _contract(run, payment_intent=intent) if intent else None
    contract = await _locked(run, contract_id=found.id) if found else None
    ids = {
        "contract_id": contract.id if contract else None,
        "stripe_dispute": dispute.id,
        "stripe_payment_intent": intent,
    }
    status = dispute.status
    if event.type == "charge.dispute.created":
        await record_once(
            run,
            f"dispute:{dispute.id}",
            LedgerKind.DISPUTE,
            -dispute.amount,
            dispute.currency,
            event.at,
            **ids,
        )
    elif status == "won":
        await record_once(
            run,
            f"dispute_reversal:{dispute.id}",
            LedgerKind.DISPUTE_REVERSAL,
            dispute.amount,
            dispute.currency,
            event.at,
            **ids,
        )
    if contract is None:
        return applied(status)
    closed = event.type == "charge.dispute.closed" or status in ("won", "lost")
    if not closed and await _closed_before(run, contract.id, dispute.id):
        return applied("closed before: a late report of its opening")
    await run.run(_DISPUTED, contract_id=contract.id, disputed=not closed)
    run.touch(contract.product_id)
    action = _DISPUTE_CLOSED.get(status, Action.DISPUTE_CLOSED) if closed else Action.DISPUTED
    await audit.append(
        run, "contract", contract.id, ACTOR, [(action, {"dispute": dispute.id, "status": status})]
    )
    disputed = {
        "contract_id": contract.id,
        "dispute": dispute.id,
        "status": status,
        "disputed": not closed,
    }
    run.emit("contract.disputed", disputed, product_id=contract.product_id, contract_id=contract.id)
    if status == "lost":
        await services.end_contract(
            run,
            contract,
            target=ContractStatus.CHARGEBACK,
            reference=f"{dispute.id}:lost",
            at=event.at,
            actor=ACTOR,
            checked=False,
        )
        if contract.stripe_subscription_id:
            stop = StopSubscription(contract.id, contract.stripe_subscription_id)
            run.enqueue(jobs.STOP_SUBSCRIPTION, msgspec.json.encode(stop))
    return applied(status)


async def fee_recorded(run: UnitOfWork, event: Event, charge: so.Charge, known: Lookups) -> Handled:
    """The fee Stripe took on a charge, from the charge's balance transaction."""
    txn = charge.balance_transaction
    if not isinstance(txn, str):
        return ignored(Why.NO_BALANCE_TRANSACTION)
    found = known.balance_transaction(txn)
    if found is None or found.fee == 0:
        return ignored(Why.NO_FEE)
    intent = so.ident(charge.payment_intent)
    contract = await _contract(run, payment_intent=intent) if intent else None
    await record_once(
        run,
        f"fee:{txn}",
        LedgerKind.FEE,
        -found.fee,
        found.currency,
        event.at,
        contract_id=contract.id if contract else None,
        stripe_charge=charge.id,
        stripe_payment_intent=intent,
        stripe_balance_transaction=txn,
    )
    return APPLIED


async def checkout_completed(
    run: UnitOfWork, event: Event, checkout: so.CheckoutSession, known: Lookups
) -> Handled:
    """A hosted page was paid. Its PaymentIntent or invoice events record the payment; this one
    only links the contract to them (so nothing is recorded twice)."""
    if checkout.payment_status != "paid":
        return ignored(Why.SESSION_NOT_PAID)
    contract_id = checkout.metadata.get("contract_id")
    if contract_id is None:
        return ignored(Why.NO_CONTRACT_FOR_SESSION)
    await _locked(
        run,
        contract_id=contract_id,
        payment_intent=so.ident(checkout.payment_intent),
        subscription=so.ident(checkout.subscription),
    )
    return applied("linked")


async def payment_failed(run: UnitOfWork, event: Event, pi: so.PaymentIntent, known: Lookups) -> Handled:
    contract = await _contract(run, contract_id=pi.metadata.get("contract_id"), payment_intent=pi.id)
    if contract is not None:
        error = (pi.last_payment_error.decline_code if pi.last_payment_error else None) or "declined"
        failed = {"payment_intent": pi.id, "decline": error}
        await audit.append(run, "contract", contract.id, ACTOR, [(Action.PAYMENT_FAILED, failed)])
        run.emit(
            "payment.failed",
            {"contract_id": contract.id, "payment_intent": pi.id, "decline_code": error},
            product_id=contract.product_id,
            contract_id=contract.id,
        )
    return applied("the contract stays pending until a payment succeeds")


_FEE_EVENTS = ("charge.succeeded", "charge.updated")
_PAYMENT_INTENT = Reads(so.PaymentIntent, payment_succeeded)
_INVOICE_CHANGED = Reads(so.Invoice, invoice_changed)
_INVOICE_PAID = Reads(so.Invoice, invoice_paid)
_SUBSCRIPTION = Reads(so.Subscription, subscription_changed)
_REFUND = Reads(so.Refund, refund_recorded)
_DISPUTE = Reads(so.Dispute, dispute_changed)
_FEE = Reads(so.Charge, fee_recorded)

HANDLERS: dict[str, Reads[Any]] = {
    "payment_intent.succeeded": _PAYMENT_INTENT,
    "payment_intent.payment_failed": Reads(so.PaymentIntent, payment_failed),
    "invoice.paid": _INVOICE_PAID,
    "invoice.payment_succeeded": _INVOICE_PAID,
    "invoice.payment_failed": Reads(so.Invoice, invoice_failed),
    "invoice.payment_action_required": Reads(so.Invoice, payment_action_required),
    "invoice.created": _INVOICE_CHANGED,
    "invoice.updated": _INVOICE_CHANGED,
    "invoice.finalized": _INVOICE_CHANGED,
    "invoice.upcoming": Reads(so.UpcomingInvoice, renewal_notice),
    "customer.subscription.created": _SUBSCRIPTION,
    "customer.subscription.updated": _SUBSCRIPTION,
    "customer.subscription.deleted": _SUBSCRIPTION,
    "refund.created": _REFUND,
    "refund.updated": _REFUND,
    "refund.failed": _REFUND,
    "charge.refunded": Reads(so.Charge, charge_refunded),
    "charge.dispute.created": _DISPUTE,
    "charge.dispute.closed": _DISPUTE,
    "checkout.session.completed": Reads(so.CheckoutSession, checkout_completed),
    **dict.fromkeys(_FEE_EVENTS, _FEE),
}


class SyncReport(msgspec.Struct, frozen=True):
    seen: int
    counts: dict[Outcome | str, int]  # per outcome, and `failed`: could not be applied (a re-run tries again)

    def count(self, outcome: Outcome | str) -> int:
        return self.counts.get(outcome, 0)

    @property
    def applied(self) -> int:
        return self.count(Outcome.APPLIED)

    @property
    def duplicates(self) -> int:
        return self.count(Outcome.DUPLICATE)

    @property
    def ignored(self) -> int:
        return self.count(Outcome.IGNORED)

    @property
    def unresolved(self) -> int:
        """Events that need a person: ones that failed (a re-run tries them again) or were malformed."""
        return self.count(FAILED) + self.count(Outcome.MALFORMED)


FAILED = "failed"


async def sync_events(
    units: Units, gateway: Gateway, since: dt.datetime, until: dt.datetime | None = None
) -> SyncReport:
    """Feed every event the gateway has in [since, until) (Stripe keeps 30 days) through the
    same handler, oldest first: those already received are duplicates, the lost ones are
    applied. One that cannot be applied is counted as failed and the sync goes on; it was not
    stored, so the next run tries it again."""
    counts: dict[Outcome | str, int] = {}
    seen = 0
    async for raw in gateway.events_since(since, until):
        seen += 1
        try:
            outcome: Outcome | str = (await record_and_apply(units, raw, gateway))[0]
        except Exception:
            log.exception("stripe event not applied", position=seen)
            outcome = FAILED
        counts[outcome] = counts.get(outcome, 0) + 1
    return SyncReport(seen, counts)
