"""Stripe webhooks: verify, store once, apply in one transaction.

Events arrive late, twice and out of order. Each is stored under its unique id (a duplicate is a
no-op), and applied through the contract operations, which are idempotent by a reference derived
from the Stripe object (PaymentIntent, invoice, subscription, refund). Where arrival order could
mislead, the decision comes from the object's state: a failed invoice that is paid by now is not
past due; a subscription says itself whether it ended for non-payment or by request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import msgspec
import structlog
from sqlalchemy import Table, bindparam, update
from sqlalchemy.exc import IntegrityError

from billing.cancellation import StopSubscription
from billing.gateway import Gateway
from billing.ledger import record_once
from billing.reconcile import BalanceTransaction
from billing.rules import Unwanted, invoice_kind, paid_already, subscription_ending
from billing.signatures import verify
from billing.tables import StripeEventRow
from billing.unwanted import UnwantedRefund
from entitlements import jobs, services
from entitlements.catalog import Billing
from entitlements.coverage import ContractStatus, Period
from entitlements.errors import DomainError
from entitlements.store import audit
from entitlements.store.base import utcnow
from entitlements.store.lifecycle import ContractState, LifecycleRecord, LockedContract
from entitlements.store.tables import ContractRow
from entitlements.store.unit_of_work import UnitOfWork, Units

ACTOR = "stripe"
T = TypeVar("T")
OUTCOME_LENGTH = 200  # stripe_events.outcome
log = structlog.get_logger("billing.webhooks")

stripe_events: Table = StripeEventRow.__table__  # type: ignore[assignment]
contracts: Table = ContractRow.__table__  # type: ignore[assignment]
_DISPUTED = (
    update(contracts).where(contracts.c.id == bindparam("contract_id")).values(disputed=bindparam("disputed"))
)
_OUTCOME = (
    update(stripe_events)
    .where(stripe_events.c.id == bindparam("event_id"))
    .values(outcome=bindparam("result"))
)


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


class MalformedEvent(Exception):
    pass


class UnknownContract(Exception):
    """The event names a contract of ours that does not exist."""


class Event(msgspec.Struct):
    # Bounded as stored (stripe_events) and as an instant: past them, the malformed path.
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    created: Annotated[int, msgspec.Meta(ge=0, le=7_258_118_400)]  # up to 2200-01-01
    data: dict[str, Any]

    @property
    def object(self) -> dict[str, Any]:
        obj = self.data.get("object")
        if not isinstance(obj, dict):
            raise MalformedEvent("event without data.object")
        return obj

    @property
    def at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.created, dt.UTC)


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
        event = Event(f"evt_unreadable_{hashlib.sha256(raw).hexdigest()[:24]}", "unreadable", 0, {})
        log.error("stripe event malformed", event_id=event.id, error=str(exc))
        return await _malformed(units, event, raw, str(exc))
    # What the handler will ask the gateway is asked now, with no transaction open.
    known = await look_up(event, gateway)
    try:
        async with units() as run:
            # Stored first: a concurrent twin waits on this row's key, then finds it taken. The
            # usual outcome is stored with it; any other is written below.
            if not await _store(run, event, raw, Outcome.APPLIED.value):
                return Outcome.DUPLICATE, event.id
            try:
                outcome, detail = await apply(run, event, known)
            except _UNREADABLE as exc:  # the handler's reading only: not what the unit does after it
                raise _Unreadable(f"{type(exc).__name__}: {exc}") from exc
            if outcome is not Outcome.APPLIED or detail:
                await run.run(
                    _OUTCOME,
                    event_id=event.id,
                    result=(f"{outcome.value}: {detail}" if detail else outcome.value)[:OUTCOME_LENGTH],
                )
    except IntegrityError:
        return Outcome.DUPLICATE, event.id
    except _Unreadable as exc:
        # A field the handler read missing or of another type: everything it wrote is rolled back
        # with the unit, and the event is kept as malformed in a transaction of its own (no
        # savepoint on every event for the rare one: two round trips each). With the traceback: a
        # bug of ours would read like a malformed event.
        log.exception("stripe event malformed", event_id=event.id, type=event.type, error=str(exc))
        return await _malformed(units, event, raw, str(exc))
    log.info("stripe event", event_id=event.id, type=event.type, outcome=outcome.value, detail=detail)
    return outcome, event.id


Handler = Callable[[UnitOfWork, Event, "Lookups"], Awaitable[str | None]]


# What reading a field that is missing or of another type raises, in the handlers below.
_UNREADABLE = (MalformedEvent, KeyError, TypeError, ValueError, AttributeError)


class _Unreadable(Exception):
    """A handler could not read its event: carried out of the unit of work, which rolls back."""


async def _store(run: UnitOfWork, event: Event, raw: bytes, outcome: str) -> bool:
    """Store the event under its id, unless it is there already (then False)."""
    return await run.insert_new(
        stripe_events,
        id=event.id,
        type=event.type,
        created=event.created,
        payload=raw.decode("utf-8", "replace"),
        received_at=utcnow(),
        outcome=outcome[:OUTCOME_LENGTH],
    )


async def _malformed(units: Units, event: Event, raw: bytes, error: str) -> tuple[Outcome, str]:
    """Keep an event that cannot be applied as it came, once, with what was wrong with it."""
    async with units() as run:
        stored = await _store(run, event, raw, f"{Outcome.MALFORMED.value}: {error}")
    return (Outcome.MALFORMED if stored else Outcome.DUPLICATE), event.id


async def apply(run: UnitOfWork, event: Event, known: Lookups) -> tuple[Outcome, str]:
    handler = HANDLERS.get(event.type)
    if handler is None:
        return Outcome.IGNORED, "not an event Coverline acts on"
    try:
        detail = await handler(run, event, known)
    except DomainError as exc:  # e.g. a payment for a contract cancelled meanwhile: nothing to do
        return Outcome.IGNORED, exc.detail
    except UnknownContract as exc:
        return Outcome.UNKNOWN_CONTRACT, str(exc)
    if detail is not None and detail.startswith("ignored"):
        return Outcome.IGNORED, detail.removeprefix("ignored: ")
    return Outcome.APPLIED, detail or ""


# --- what handlers ask the gateway, asked before the transaction ----------------------------------


class NotLookedUp(RuntimeError):
    """A handler asked for something `look_up` did not fetch: a bug, not a malformed event."""


class Lookups:
    """The gateway's answers a handler needs, fetched by `look_up` before the event's transaction
    opens: no lock is held while Stripe answers."""

    def __init__(self) -> None:
        self.invoices: dict[str, dict[str, Any] | None] = {}
        self.subscription_contracts: dict[str, str | None] = {}
        self.balance_transactions: dict[str, BalanceTransaction | None] = {}

    def invoice(self, invoice_id: str) -> dict[str, Any] | None:
        return self._get(self.invoices, invoice_id)

    def subscription_contract(self, subscription_id: str) -> str | None:
        return self._get(self.subscription_contracts, subscription_id)

    def balance_transaction(self, transaction_id: str) -> BalanceTransaction | None:
        return self._get(self.balance_transactions, transaction_id)

    @staticmethod
    def _get(found: dict[str, T], key: str) -> T:
        if key not in found:
            raise NotLookedUp(key)
        return found[key]


async def look_up(event: Event, gateway: Gateway) -> Lookups:
    """Ask the gateway what the event's handler will need: the current invoice where an event's
    copy could mislead, the contract in a subscription's metadata where an invoice of the older
    shape does not carry it, a charge's balance transaction (for Stripe's fee). An event that
    cannot be read asks nothing: its handler finds it malformed."""
    known = Lookups()
    try:
        obj = event.object
        if event.type == "payment_intent.succeeded" and isinstance(obj.get("invoice"), str):
            invoice = await gateway.invoice(obj["invoice"])
            known.invoices[obj["invoice"]] = invoice
            if invoice is not None:
                await _look_up_subscription(invoice, gateway, known)
        elif event.type.startswith("invoice."):
            if event.type == "invoice.payment_failed":
                known.invoices[obj["id"]] = await gateway.invoice(obj["id"])
            await _look_up_subscription(obj, gateway, known)
        elif event.type in ("charge.succeeded", "charge.updated") and isinstance(
            txn := obj.get("balance_transaction"), str
        ):
            known.balance_transactions[txn] = await gateway.balance_transaction(txn)
    except _UNREADABLE:
        pass
    return known


async def _look_up_subscription(invoice: dict[str, Any], gateway: Gateway, known: Lookups) -> None:
    subscription, contract_id = _invoice_subscription(invoice)
    if contract_id is None and isinstance(subscription, str):
        known.subscription_contracts[subscription] = await gateway.subscription_contract(subscription)


# --- finding our contract from Stripe's objects (the current shapes and localstripe's older ones) --


def _metadata_contract(obj: dict[str, Any]) -> str | None:
    metadata = obj.get("metadata") or {}
    value = metadata.get("contract_id")
    return value if isinstance(value, str) else None


def _invoice_subscription(invoice: dict[str, Any]) -> tuple[str | None, str | None]:
    """(subscription id, contract id from its metadata) of an invoice, in either shape."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") if parent.get("type") == "subscription_details" else None
    if details:
        return details.get("subscription"), _metadata_contract(details)
    subscription = invoice.get("subscription")  # before 2025-03-31 (and localstripe)
    if isinstance(subscription, dict):
        return subscription.get("id"), _metadata_contract(subscription)
    return subscription, None


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
) -> LockedContract | None:
    """The same contract taken for writing, and linked to the subscription and PaymentIntent
    named (unless it names its own already): one statement when the metadata names it."""
    if not contract_id:
        found = await _contract(run, subscription=subscription, payment_intent=payment_intent)
        if found is None:
            return None
        contract_id = found.id
    record = LifecycleRecord(run)
    locked = await record.lock(contract_id, payment_intent=payment_intent, subscription=subscription)
    if locked is None:
        raise UnknownContract(f"no contract {contract_id}")
    return locked


# --- handlers ----------------------------------------------------------------------------------------


async def payment_succeeded(run: UnitOfWork, event: Event, known: Lookups) -> str | None:
    pi = event.object
    contract = await _locked(run, contract_id=_metadata_contract(pi), payment_intent=pi.get("id"))
    if contract is None and isinstance(pi.get("invoice"), str):
        # An invoice's payment (older API versions name it): the invoice, fetched now, decides.
        invoice = known.invoice(pi["invoice"])
        if invoice is not None and (invoice.get("status") == "paid" or invoice.get("paid") is True):
            return await invoice_paid(
                run, Event(event.id, "invoice.paid", event.created, {"object": invoice}), known
            )
    if contract is None:
        return "ignored: no contract for this PaymentIntent"
    charge = pi.get("latest_charge") or pi.get("charge")
    payment = Payment(
        reference=pi["id"],
        ledger_key=f"charge:{pi['id']}",
        amount=int(pi["amount"]),
        currency=str(pi["currency"]).upper(),
        payment_intent=pi["id"],
        charge=charge if isinstance(charge, str) else None,
    )
    unwanted = await _unwanted(run, contract, payment, None, event)
    if unwanted is not None:
        return unwanted
    bought = await services.record_payment(
        run, contract, reference=pi["id"], paid_at=event.at, actor=ACTOR, checked=False
    ) or await LifecycleRecord(run).period_bought(pi["id"])  # recorded before (by the checkout, say)
    await record_once(
        run,
        payment.ledger_key,
        "sale",
        payment.amount,
        payment.currency,
        event.at,
        contract_id=contract.id,
        stripe_payment_intent=pi["id"],
        stripe_charge=payment.charge,
        period_start=bought.start if bought else None,  # the coverage it pays for: revenue
        period_end=bought.end if bought else None,  # is earned over this span
    )
    return None


class Payment(msgspec.Struct, frozen=True):
    """A payment Stripe reports, as the ledger books it."""

    reference: str  # the PaymentIntent's id, or the invoice's
    ledger_key: str
    amount: int
    currency: str
    payment_intent: str | None
    charge: str | None = None
    invoice: str | None = None


async def _unwanted(
    run: UnitOfWork, contract: LockedContract, payment: Payment, period: Period | None, event: Event
) -> str | None:
    """A payment that buys nothing is booked as what it is, said in the contract's history, and
    refunded by a job: one for a period already paid (Stripe charged twice: a second
    PaymentIntent, a second invoice for one period), or one for a contract abandoned unpaid.
    None when it buys coverage (or was applied before, this very payment)."""
    if contract.status is ContractStatus.PENDING_PAYMENT:
        return None  # never paid: nothing it could pay twice (the common case, with no read)
    record = LifecycleRecord(run)
    facts, periods = await record.history(contract.id)
    if any(f.reference == payment.reference for f in facts):
        return None
    if contract.status is ContractStatus.ABANDONED:
        reason, covered = Unwanted.LATE_PAYMENT, None
    else:
        plan = await record.plan(contract)
        covered = paid_already(plan.billing is Billing.UPFRONT, periods, period)
        if covered is None:
            return None
        reason = Unwanted.DUPLICATE_PAYMENT
    stored = await record_once(
        run,
        payment.ledger_key,
        reason.value,
        payment.amount,
        payment.currency,
        event.at,
        contract_id=contract.id,
        stripe_payment_intent=payment.payment_intent,
        stripe_charge=payment.charge,
        stripe_invoice=payment.invoice,
    )
    if not stored:
        return f"{reason.value}: booked before"
    why: dict[str, Any] = {
        "payment": payment.reference,
        "amount": payment.amount,
        "currency": payment.currency,
    }
    if covered is not None:
        why["paid_already"] = [covered.start.isoformat(), covered.end.isoformat()]
    if payment.payment_intent is not None:
        refund = UnwantedRefund(contract.id, payment.payment_intent, payment.amount, payment.currency, reason)
        await run.enqueue(jobs.REFUND_UNWANTED, msgspec.json.encode(refund))
        why["refund"] = "queued"
    else:
        why["refund"] = "by hand: Stripe named no PaymentIntent"
        log.error("unwanted payment not refunded", contract_id=contract.id, payment=payment.reference)
    await audit.append(run, "contract", contract.id, ACTOR, [(reason.value, why)])
    return f"{reason.value}: refunded by a job"


async def _invoice_contract(run: UnitOfWork, invoice: dict[str, Any], known: Lookups) -> ContractState | None:
    subscription, contract_id = _invoice_subscription(invoice)
    if contract_id is None and subscription:
        linked = await _contract(run, subscription=subscription)
        if linked is not None:
            return linked
        contract_id = known.subscription_contract(subscription)  # an older shape: asked before
    return await _contract(run, contract_id=contract_id, subscription=subscription)


async def invoice_paid(run: UnitOfWork, event: Event, known: Lookups) -> str | None:
    invoice = event.object
    subscription, _ = _invoice_subscription(invoice)
    found = await _invoice_contract(run, invoice, known)
    if found is None:
        return "ignored: no contract for this invoice"
    contract = await _locked(run, contract_id=found.id, subscription=subscription)
    assert contract is not None  # found just now, in this transaction
    period = _service_period(invoice)
    payments = (invoice.get("payments") or {}).get("data") or []
    intent = next(
        (p["payment"].get("payment_intent") for p in payments if p.get("payment")), None
    ) or invoice.get("payment_intent")
    charge = invoice.get("charge")
    payment = Payment(
        reference=invoice["id"],
        ledger_key=f"invoice:{invoice['id']}",
        amount=int(invoice.get("amount_paid") or invoice.get("amount_due") or 0),
        currency=str(invoice["currency"]).upper(),
        payment_intent=intent if isinstance(intent, str) else None,
        charge=charge if isinstance(charge, str) else None,
        invoice=invoice["id"],
    )
    unwanted = await _unwanted(run, contract, payment, period, event)
    if unwanted is not None:
        return unwanted
    await services.record_payment(
        run,
        contract,
        reference=invoice["id"],
        paid_at=event.at,
        actor=ACTOR,
        checked=False,
        period=period,
    )
    _, periods = await LifecycleRecord(run).history(contract.id)
    kind = invoice_kind(
        invoice.get("billing_reason"), period.start if period else None, (p.start for p in periods)
    )
    await record_once(
        run,
        payment.ledger_key,
        kind,
        payment.amount,
        payment.currency,
        event.at,
        contract_id=contract.id,
        stripe_invoice=invoice["id"],
        stripe_payment_intent=payment.payment_intent,
        stripe_charge=payment.charge,
        period_start=period.start if period else None,
        period_end=period.end if period else None,
    )
    return None


def _service_period(invoice: dict[str, Any]) -> Period | None:
    """The span an invoice pays for: its line's period (for a renewal, the invoice's own
    period_start/end name the period before), else the invoice's period."""
    lines = (invoice.get("lines") or {}).get("data") or []
    span = (lines[0].get("period") if lines else None) or {}
    start = _ts(span.get("start")) or _ts(invoice.get("period_start"))
    end = _ts(span.get("end")) or _ts(invoice.get("period_end"))
    return Period(start, end) if start and end and end > start else None


def _ts(value: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.UTC) if isinstance(value, int) else None


async def invoice_changed(run: UnitOfWork, event: Event, known: Lookups) -> str | None:
    """Any other invoice event: acted on only if the invoice says it is paid (localstripe, for
    one, reports a subscription's first invoice paid in `invoice.created` alone)."""
    invoice = event.object
    if invoice.get("status") == "paid" or invoice.get("paid") is True:
        return await invoice_paid(run, event, known)
    return "ignored: the invoice is not paid"


async def invoice_failed(run: UnitOfWork, event: Event, known: Lookups) -> str | None:
    invoice = event.object
    now = known.invoice(invoice["id"])
    if now is not None and now.get("status") == "paid":
        return "ignored: the invoice is paid by now"
    contract = await _invoice_contract(run, invoice, known)
    if contract is None:
        return "ignored: no contract for this invoice"
    if invoice.get("billing_reason") == "subscription_create":
        return "ignored: the first payment failed; the contract stays pending"
    due = _service_period(invoice)
    failed = {
        "contract_id": contract.id,
        "invoice": invoice["id"],
        "hosted_invoice_url": invoice.get("hosted_invoice_url"),
    }
    run.emit("payment.failed", failed, product_id=contract.product_id, contract_id=contract.id)
    await services.mark_past_due(
        run,
        contract.id,
        reference=invoice["id"],
        at=due.start if due else event.at,
        actor=ACTOR,
        checked=False,
    )
    return None


async def subscription_changed(run: UnitOfWork, event: Event, known: Lookups) -> str | None:
    sub = event.object
    contract = await _locked(run, contract_id=_metadata_contract(sub), subscription=sub.get("id"))
    if contract is None:
        return "ignored: no contract for this subscription"
    status = sub.get("status")
    if status not in ("canceled", "incomplete_expired"):
        return "subscription noted"
    if contract.stripe_subscription_id not in (None, sub["id"]):
        return "ignored: the subscription of an earlier payment attempt"
    if contract.status is ContractStatus.ABANDONED:  # its subscription let go after (checkout.release)
        return "ignored: the contract was abandoned unpaid"
    # The subscription says why it ended; the order its events arrived in does not matter.
    reason = (sub.get("cancellation_details") or {}).get("reason")
    ended = _ts(sub.get("ended_at")) or event.at
    cancel_at = _ts(sub.get("cancel_at"))
    # Expired unpaid: its first invoice was never paid (Stripe's word, whatever arrived before).
    expired = status == "incomplete_expired"
    target = ContractStatus.ABANDONED if expired else subscription_ending(reason, ended, cancel_at)
    await services.end_contract(
        run,
        contract,
        target=target,
        reference=f"{sub['id']}:ended",
        at=ended,
        actor=ACTOR,
        checked=False,
    )
    return target.value


async def payment_action_required(run: UnitOfWork, event: Event, known: Lookups) -> str | None:
    """A renewal needs the customer to authenticate (3-D Secure): said in the contract's
    history with the link to Stripe's hosted invoice page, where they can."""
    invoice = event.object
    contract = await _invoice_contract(run, invoice, known)
    if contract is None:
        return "ignored: no contract for this invoice"
    needed = {"invoice": invoice["id"], "hosted_invoice_url": invoice.get("hosted_invoice_url")}
    await audit.append(run, "contract", contract.id, ACTOR, [("payment_action_required", needed)])
    return None


async def renewal_notice(run: UnitOfWork, event: Event, known: Lookups) -> str | None:
    invoice = event.object  # an upcoming invoice has no id
    contract = await _invoice_contract(run, invoice, known)
    if contract is None:
        return "ignored: no contract for this subscription"
    await audit.append(run, "contract", contract.id, ACTOR, [("renewal_notice", {"event_id": event.id})])
    return None


async def refund_recorded(run: UnitOfWork, event: Event, known: Lookups) -> str | None:
    obj = event.object
    refunds = [obj] if obj.get("object") == "refund" else ((obj.get("refunds") or {}).get("data") or [])
    for refund in refunds:
        intent = refund.get("payment_intent") or obj.get("payment_intent")
        contract = await _contract(run, contract_id=_metadata_contract(refund), payment_intent=intent)
        if refund.get("status") in ("failed", "canceled"):
            continue
        await record_once(
            run,
            f"refund:{refund['id']}",
            "refund",
            -int(refund["amount"]),
            refund["currency"],
            event.at,
            contract_id=contract.id if contract else None,
            stripe_refund=refund["id"],
            stripe_payment_intent=intent,
            stripe_charge=refund.get("charge") if isinstance(refund.get("charge"), str) else None,
        )
    return None


_DISPUTE_CLOSED = {"won": "dispute_won", "lost": "dispute_lost"}


async def dispute_changed(run: UnitOfWork, event: Event, known: Lookups) -> str | None:
    """A dispute opened: cover continues, the contract is flagged (history, check). Won: the flag
    clears and the money comes back. Lost: cover ends at the instant it closed (`chargeback`;
    claims approved before stand), and the subscription is stopped at Stripe by a job."""
    dispute = event.object
    intent = dispute.get("payment_intent")
    found = await _contract(run, payment_intent=intent) if isinstance(intent, str) else None
    contract = await _locked(run, contract_id=found.id) if found else None
    ids = {
        "contract_id": contract.id if contract else None,
        "stripe_dispute": dispute["id"],
        "stripe_payment_intent": intent,
    }
    status = str(dispute.get("status"))
    if event.type == "charge.dispute.created":
        await record_once(
            run,
            f"dispute:{dispute['id']}",
            "dispute",
            -int(dispute["amount"]),
            dispute["currency"],
            event.at,
            **ids,
        )
    elif status == "won":
        await record_once(
            run,
            f"dispute_reversal:{dispute['id']}",
            "dispute_reversal",
            int(dispute["amount"]),
            dispute["currency"],
            event.at,
            **ids,
        )
    if contract is None:
        return status
    closed = event.type == "charge.dispute.closed" or status in ("won", "lost")
    await run.run(_DISPUTED, contract_id=contract.id, disputed=not closed)
    run.touch(contract.product_id)
    action = _DISPUTE_CLOSED.get(status, "dispute_closed") if closed else "disputed"
    await audit.append(
        run, "contract", contract.id, ACTOR, [(action, {"dispute": dispute["id"], "status": status})]
    )
    disputed = {
        "contract_id": contract.id,
        "dispute": dispute["id"],
        "status": status,
        "disputed": not closed,
    }
    run.emit("contract.disputed", disputed, product_id=contract.product_id, contract_id=contract.id)
    if status == "lost":
        await services.end_contract(
            run,
            contract,
            target=ContractStatus.CHARGEBACK,
            reference=f"{dispute['id']}:lost",
            at=event.at,
            actor=ACTOR,
            checked=False,
        )
        if contract.stripe_subscription_id:
            stop = StopSubscription(contract.id, contract.stripe_subscription_id)
            await run.enqueue(jobs.STOP_SUBSCRIPTION, msgspec.json.encode(stop))
    return status


async def fee_recorded(run: UnitOfWork, event: Event, known: Lookups) -> str | None:
    """The fee Stripe took on a charge, from the charge's balance transaction."""
    charge = event.object
    txn = charge.get("balance_transaction")
    if not isinstance(txn, str):
        return "ignored: no balance transaction yet"
    found = known.balance_transaction(txn)
    if found is None or found.fee == 0:
        return "ignored: no fee"
    intent = charge.get("payment_intent") if isinstance(charge.get("payment_intent"), str) else None
    contract = await _contract(run, payment_intent=intent) if intent else None
    await record_once(
        run,
        f"fee:{txn}",
        "fee",
        -found.fee,
        found.currency,
        event.at,
        contract_id=contract.id if contract else None,
        stripe_charge=charge["id"],
        stripe_payment_intent=intent,
        stripe_balance_transaction=txn,
    )
    return None


async def checkout_completed(run: UnitOfWork, event: Event, known: Lookups) -> str | None:
    """A hosted page was paid. Its PaymentIntent or invoice events record the payment; this one
    only links the contract to them (so nothing is recorded twice)."""
    checkout = event.object
    if checkout.get("payment_status") != "paid":
        return "ignored: not paid"
    contract_id = _metadata_contract(checkout)
    if contract_id is None:
        return "ignored: no contract for this session"
    intent, subscription = checkout.get("payment_intent"), checkout.get("subscription")
    await _locked(
        run,
        contract_id=contract_id,
        payment_intent=intent if isinstance(intent, str) else None,
        subscription=subscription if isinstance(subscription, str) else None,
    )
    return "linked"


async def payment_failed(run: UnitOfWork, event: Event, known: Lookups) -> str | None:
    pi = event.object
    contract = await _contract(run, contract_id=_metadata_contract(pi), payment_intent=pi.get("id"))
    if contract is not None:
        error = (pi.get("last_payment_error") or {}).get("decline_code") or "declined"
        failed = {"payment_intent": pi.get("id"), "decline": error}
        await audit.append(run, "contract", contract.id, ACTOR, [("payment_failed", failed)])
        run.emit(
            "payment.failed",
            {"contract_id": contract.id, "payment_intent": pi.get("id"), "decline_code": error},
            product_id=contract.product_id,
            contract_id=contract.id,
        )
    return "the contract stays pending until a payment succeeds"


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": payment_succeeded,
    "payment_intent.payment_failed": payment_failed,
    "invoice.paid": invoice_paid,
    "invoice.payment_succeeded": invoice_paid,
    "invoice.payment_failed": invoice_failed,
    "invoice.payment_action_required": payment_action_required,
    "invoice.created": invoice_changed,
    "invoice.updated": invoice_changed,
    "invoice.finalized": invoice_changed,
    "invoice.upcoming": renewal_notice,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
    "refund.created": refund_recorded,
    "refund.updated": refund_recorded,
    "charge.refunded": refund_recorded,
    "charge.dispute.created": dispute_changed,
    "charge.dispute.closed": dispute_changed,
    "checkout.session.completed": checkout_completed,
    "charge.succeeded": fee_recorded,
    "charge.updated": fee_recorded,
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
