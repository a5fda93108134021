"""Cancellation with a refund by the plan's policy: quote first, then refund and cancel.

The refund's idempotency key is the contract's, so however often a cancel is retried (after a
timeout, or a failure between Stripe's refund and our commit) Stripe refunds once, and the same
refund id lands in the ledger once, whether from here or from its webhook.
"""

from __future__ import annotations

import datetime as dt

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.gateway import Gateway, GatewayError, Refund
from billing.ledger.rules import LedgerKind, net_paid
from billing.ledger.service import record_once
from billing.tables import LedgerEntryRow
from entitlements import jobs
from entitlements.claims.rules import COUNTED
from entitlements.contracts import service as services
from entitlements.coverage import ContractStatus
from entitlements.errors import Conflict
from entitlements.money import Money
from entitlements.refunds import RefundQuote, refund_quote
from entitlements.store.contracts import get_contract, periods_of, plan_of
from entitlements.store.tables import ClaimRow, ContractRow
from entitlements.store.unit_of_work import commit, unit_of_work

PAYMENTS = ("sale", "renewal")


class Quoted(msgspec.Struct, frozen=True):
    contract: ContractRow
    quote: RefundQuote
    payment_intent: str | None


async def quote_refund(session: AsyncSession, contract_id: str, at: dt.datetime) -> Quoted:
    contract = await get_contract(session, contract_id)
    plan = await plan_of(session, contract)
    entries = list(
        await session.scalars(
            select(LedgerEntryRow)
            .where(LedgerEntryRow.contract_id == contract.id)
            .order_by(LedgerEntryRow.occurred_at)
        )
    )
    paid = [e for e in entries if e.kind in PAYMENTS]
    net = net_paid((e.kind, e.amount) for e in entries)
    latest = paid[-1] if paid else None
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
    return Quoted(contract, quote, latest.stripe_payment_intent if latest else None)


async def cancel_contract(
    session: AsyncSession,
    gateway: Gateway,
    contract_id: str,
    *,
    expected_refund: Money,
    at: dt.datetime,
    actor: str,
) -> tuple[ContractRow, Refund | None]:
    """Refund what the policy says (the caller confirms the quoted amount), cancel the contract,
    cutting coverage now, and stop the subscription. No transaction is open while the gateway
    is called: the quote is read, the refund made (keyed on the contract: a retry reaches the
    gateway as the same request), then the refund's ledger row and the ending commit together,
    then the subscription is stopped; a failed stop is retried by a job."""
    quoted = await quote_refund(session, contract_id, at)
    contract = quoted.contract
    if contract.status == ContractStatus.CANCELLED.value:
        raise Conflict("the contract is cancelled already", field="contract_id")
    if expected_refund != quoted.quote.amount:
        raise Conflict(
            f"the refund is now {quoted.quote.amount}, not {expected_refund}: ask for a new quote",
            field="refund",
        )
    subscription = contract.stripe_subscription_id
    await commit(session)  # only read so far: nothing of it held across the network
    refund = None
    if quoted.quote.amount.amount > 0 and quoted.payment_intent:
        refund = await gateway.refund(
            payment_intent=quoted.payment_intent,
            amount=quoted.quote.amount,
            contract_id=contract.id,
            key=f"cancel:{contract.id}:refund",
        )
    run = await unit_of_work(session)
    if refund is not None:
        await record_once(
            run,
            f"refund:{refund.id}",
            LedgerKind.REFUND,
            -refund.amount.amount,
            refund.amount.currency,
            at,
            contract_id=contract.id,
            stripe_refund=refund.id,
            stripe_payment_intent=quoted.payment_intent,
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
    await session.refresh(contract)  # as the cancellation left it
    return contract, refund


class StopSubscription(msgspec.Struct, frozen=True):
    contract_id: str
    subscription: str


async def stop_subscription(gateway: Gateway, contract_id: str, subscription: str) -> None:
    await gateway.cancel_subscription(subscription, key=f"cancel:{contract_id}:subscription")
