"""Cancellation with a refund by the plan's policy: quote first, then refund and cancel.

Each refund's idempotency key is the contract's and its payment's, and the refunds planned are
kept with the cancellation's lease before Stripe is asked, so however often a cancel is retried
(after a timeout, or a failure between Stripe's refund and our commit) Stripe refunds once, and
the same refund id lands in the ledger once, whether from here or from its webhook; and two
cancels at once are one.
"""

from __future__ import annotations

import datetime as dt

import msgspec
import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import leases
from billing.cancellation.rules import PAYMENTS, Entry, allocate, own_money, refundable
from billing.gateway import Gateway, GatewayError, Refund
from billing.ledger.rules import LedgerKind, net_paid
from billing.ledger.service import record_once
from billing.tables import LedgerEntryRow
from entitlements import jobs
from entitlements.audit_names import Action
from entitlements.claims.rules import COUNTED
from entitlements.contracts import service as services
from entitlements.contracts.rules import ENDINGS
from entitlements.coverage import ContractStatus
from entitlements.errors import Conflict
from entitlements.money import Money
from entitlements.refunds import RefundQuote, refund_quote
from entitlements.store import audit
from entitlements.store.contracts import get_contract, periods_of, plan_of
from entitlements.store.tables import ClaimRow, ContractRow
from entitlements.store.unit_of_work import commit, unit_of_work


class Quoted(msgspec.Struct, frozen=True):
    contract: ContractRow
    quote: RefundQuote
    refundable: list[tuple[str, int]]  # (PaymentIntent, what is left of it), newest first


class PlannedRefunds(msgspec.Struct, frozen=True):
    """What a cancellation asks Stripe, kept with its lease before it asks: a request that takes
    over a failed one refunds the same payments by the same amounts, under the same keys, while
    Stripe keeps those keys (`PLAN_LIFE`); the quote says its amount meanwhile. Past that, or
    once Stripe refused it (it made nothing), a cancel plans afresh from the ledger, which by
    then holds what the refunds' events booked."""

    amount: int  # the quoted refund, in the contract's currency
    refunds: list[tuple[str, int]]  # (PaymentIntent, amount)
    planned_at: dt.datetime


log = structlog.get_logger("billing.cancellation")
# Stripe keeps an idempotency key 24 hours; a plan is taken over a little less long.
PLAN_LIFE = dt.timedelta(hours=23)


_ENDED = frozenset(status.value for status in ENDINGS)


def _pending(raw: bytes | None, at: dt.datetime) -> PlannedRefunds | None:
    planned = None if raw is None else msgspec.json.decode(raw, type=PlannedRefunds)
    return planned if planned is not None and at - planned.planned_at < PLAN_LIFE else None


async def quote_refund(session: AsyncSession, contract_id: str, at: dt.datetime) -> Quoted:
    contract = await get_contract(session, contract_id)
    _not_cancelled(contract)
    plan = await plan_of(session, contract)
    rows = await session.execute(
        select(
            LedgerEntryRow.kind,
            LedgerEntryRow.amount,
            LedgerEntryRow.currency,
            LedgerEntryRow.stripe_payment_intent,
        )
        .where(LedgerEntryRow.contract_id == contract.id)
        .order_by(LedgerEntryRow.occurred_at, LedgerEntryRow.id)
    )
    entries = own_money((Entry(*row) for row in rows), contract.currency)
    net = net_paid((e.kind, e.amount) for e in entries)
    latest = next((e for e in reversed(entries) if e.kind in PAYMENTS), None)
    periods = (await periods_of(session, [contract.id])).get(contract.id, [])
    current = next((p for p in periods if p.contains(at)), None)
    approved = await session.scalar(
        select(ClaimRow.id).where(ClaimRow.contract_id == contract.id, ClaimRow.status.in_(COUNTED)).limit(1)
    )
    currency = contract.currency
    quote = refund_quote(
        plan,
        paid_total=Money(net, currency),
        current_payment=Money(latest.amount if latest else 0, currency),
        current_period=current,
        sold_at=contract.sold_at,
        any_approved_claim=approved is not None,
        at=at,
    )
    pending = _pending(await leases.planned_of(session, f"cancel:{contract.id}"), at)
    if pending is not None:  # a cancellation that failed half-way refunds this, when it is retried
        quote = msgspec.structs.replace(quote, amount=Money(pending.amount, currency))
    return Quoted(contract, quote, refundable(entries))


async def cancel_contract(
    session: AsyncSession,
    gateway: Gateway,
    contract_id: str,
    *,
    expected_refund: Money,
    at: dt.datetime,
    actor: str,
    lease_seconds: float,
    wait: bool = False,
) -> tuple[ContractRow, list[Refund]]:
    """Refund what the policy says (the caller confirms the quoted amount), cancel the contract,
    cutting coverage now, and stop the subscription. No transaction is open while the gateway
    is called: the quote is read and the cancellation's lease taken with the refunds planned (which
    payments give back how much: newest first, none beyond what is left of it), then the
    refunds are made (each keyed on the contract and its payment: a retry reaches the gateway
    as the same request), then their ledger rows and the ending commit together, then the
    subscription is stopped; a failed stop is retried by a job. A concurrent cancel of the same
    contract is refused while the lease is held (or, with `wait`, waits for it: a page's double
    click then finds the contract cancelled); one that follows a failed cancel makes the refunds
    that one planned."""
    _not_cancelled(await get_contract(session, contract_id))  # a lease is only taken for a contract
    waiting = leases.Waiting(lease_seconds if wait else 0)
    while (lease := await leases.take(session, f"cancel:{contract_id}", lease_seconds)) is None:
        await session.rollback()
        if not await waiting.another_turn():
            raise Conflict("another request is cancelling this contract now", field="contract_id")
    async with leases.held(session, lease):
        # Read under the lease, as the last holder left it: one that cancelled the contract
        # committed that before it let the lease go.
        contract = await get_contract(session, contract_id)
        await session.refresh(contract)
        quoted = await quote_refund(session, contract.id, at)  # refused if it is cancelled by now
        planned = _planned(lease, quoted, expected_refund, at)
        await leases.keep_planned(session, lease, msgspec.json.encode(planned))
        subscription = contract.stripe_subscription_id
        await commit(session)  # the lease and the refunds planned; nothing held across the network
        try:
            refunds = [
                await gateway.refund(
                    payment_intent=intent,
                    amount=Money(amount, contract.currency),
                    contract_id=contract.id,
                    key=f"cancel:{contract.id}:refund:{intent}",
                )
                for intent, amount in planned.refunds
            ]
        except GatewayError as exc:
            if exc.refused:  # Stripe made nothing of it: the retry plans afresh
                await session.rollback()
                await leases.forget_planned(session, lease)
                await session.commit()
            raise
        run = await unit_of_work(session)
        if outstanding := planned.amount - sum(amount for _, amount in planned.refunds):
            # Paid where no Stripe payment can carry it back (a payment recorded by hand): said in
            # the history, for finance to pay back by hand.
            left = {"amount": outstanding, "currency": contract.currency}
            log.error("refund not made through Stripe", contract_id=contract.id, outstanding=outstanding)
            await audit.append(run, "contract", contract.id, actor, [(Action.REFUND_OUTSTANDING, left)])
        for refund, (intent, _) in zip(refunds, planned.refunds, strict=True):
            await record_once(
                run,
                f"refund:{refund.id}",
                LedgerKind.REFUND,
                -refund.amount.amount,
                refund.amount.currency,
                at,
                contract_id=contract.id,
                stripe_refund=refund.id,
                stripe_payment_intent=intent,
            )
        await services.end_contract(
            run,
            contract.id,
            target=ContractStatus.CANCELLED,
            reference=f"cancel:{contract.id}",
            at=at,
            actor=actor,
            checked=False,
        )
        await commit(session)
    if subscription:
        try:
            await stop_subscription(gateway, contract.id, subscription)
        except GatewayError:
            retry = msgspec.json.encode(StopSubscription(contract.id, subscription))
            (await unit_of_work(session)).enqueue(jobs.STOP_SUBSCRIPTION, retry)
            await commit(session)
    await session.refresh(contract)  # as the cancellation left it
    return contract, refunds


def _not_cancelled(contract: ContractRow) -> None:
    """Only a contract that has not ended is quoted or cancelled: one charged back, lapsed,
    expired or abandoned keeps the status that says how it ended (a cancel overwrote a chargeback),
    and has no refund to quote that no cancel could make."""
    if contract.status == ContractStatus.CANCELLED.value:
        raise Conflict("the contract is cancelled already", field="contract_id")
    if contract.status in _ENDED:
        raise Conflict(
            f"the contract has ended ({contract.status}): there is nothing to cancel", field="contract_id"
        )


def _planned(lease: leases.Lease, quoted: Quoted, expected: Money, at: dt.datetime) -> PlannedRefunds:
    """The refunds to make: a failed cancellation's, taken over as they were planned (the quote
    says their amount), else the quote's; the caller confirms the amount."""
    if expected != quoted.quote.amount:
        raise Conflict(
            f"the refund is now {quoted.quote.amount}, not {expected}: ask for a new quote",
            field="refund",
        )
    pending = _pending(lease.planned, at)
    return pending or PlannedRefunds(expected.amount, allocate(expected.amount, quoted.refundable), at)


async def refunded(session: AsyncSession, contract_id: str) -> Money:
    """What went back to the customer of a contract, as the ledger has it (in its currency)."""
    contract = await get_contract(session, contract_id)
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntryRow.amount), 0)).where(
            LedgerEntryRow.contract_id == contract.id,
            LedgerEntryRow.kind == LedgerKind.REFUND.value,
            LedgerEntryRow.currency == contract.currency,
        )
    )
    return Money(-int(total or 0), contract.currency)


class StopSubscription(msgspec.Struct, frozen=True):
    contract_id: str
    subscription: str


async def stop_subscription(gateway: Gateway, contract_id: str, subscription: str) -> None:
    await gateway.cancel_subscription(subscription, key=f"cancel:{contract_id}:subscription")
