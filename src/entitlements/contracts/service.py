"""Use cases. Each takes the request's unit of work (its session, or the unit itself; the caller
commits, and the snapshots of the products a use case touched are rewritten as it does) and the
actor (the API key id) that the audit log records."""

from __future__ import annotations

import datetime as dt
import hashlib
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.audit_names import Action as A
from entitlements.catalog import Billing, Plan
from entitlements.contracts.rules import (
    ENDINGS,
    TRANSITIONS,
    LifecycleEvent,
    check_transition,
    coverage_start,
    next_period,
    settle,
)
from entitlements.contracts.store import ContractState, History, LifecycleRecord, LockedContract
from entitlements.coverage import (
    ContractStatus,
    Period,
)
from entitlements.decisions import ContractDecision, PlanLoader, ProductEntitlement, decide_product, plans_for
from entitlements.errors import Conflict, InvalidInput, NotFound
from entitlements.identifiers import clean_reference, normalize_serial
from entitlements.money import Money
from entitlements.offers.rules import OfferKeyring, verify_offer
from entitlements.store import audit
from entitlements.store.contracts import (
    get_contract,
    get_product,
    live_customer,
    lock_contract,
    periods_of,
    plan_of,
)
from entitlements.store.leads import consume_lead
from entitlements.store.plans import plan_version
from entitlements.store.tables import (
    AuditEventRow,
    ContractRow,
)
from entitlements.store.unit_of_work import UnitOfWork, commit, touch, unit_of_work

__all__ = [
    "ContractDecision",
    "PlanLoader",
    "ProductEntitlement",
    "decide_product",
    "plans_for",
]  # their home: entitlements.decisions


def contract_id_for(offer_id: str) -> str:
    """An offer sells once, so the contract's id follows from it: a retried checkout names the
    same contract, and the payment calls keyed on it can never charge twice."""
    return "ctr_" + hashlib.sha256(offer_id.encode()).hexdigest()[:20]


async def contract(session: AsyncSession, contract_id: str) -> ContractRow:
    """One contract (a problem naming `contract_id` when there is none)."""
    return await get_contract(session, contract_id)


async def contract_periods(session: AsyncSession, contract_id: str) -> list[Period]:
    """The contract's coverage periods, earliest first."""
    return (await periods_of(session, [contract_id])).get(contract_id, [])


async def commit_now(session: AsyncSession) -> None:
    """End the request's unit of work before it returns (the touched products' snapshots
    rewritten and the events written first), so what follows sees it committed."""
    await commit(session)


async def contracts_held(session: AsyncSession, customer_id: str) -> list[ContractRow]:
    """The customer's contracts but those never bought (abandoned), oldest sale first."""
    found = await session.scalars(
        select(ContractRow)
        .where(ContractRow.customer_id == customer_id, ContractRow.status != ContractStatus.ABANDONED.value)
        .order_by(ContractRow.sold_at)
    )
    return list(found)


async def contract_plan(session: AsyncSession, row: ContractRow) -> Plan:
    """The plan version the contract was sold under."""
    return await plan_of(session, row)


async def agent_did(
    session: AsyncSession,
    entity: str,
    entity_id: str,
    key_id: str,
    agent: str | None,
    did: str,
    **changes: Any,
) -> None:
    """What an agent did through the console, audited with their name."""
    await audit.record(session, entity, entity_id, A.AGENT_ACTION, key_id, agent=agent, did=did, **changes)


async def history(session: AsyncSession, entity_ids: list[str]) -> list[AuditEventRow]:
    """Every audited change of these (contracts, claims, products…), oldest first."""
    return await audit.history(session, entity_ids)


# --- contracts -----------------------------------------------------------------------------------


# The class of the advisory locks taken on an offer's id (the two-key form: a space of its own,
# apart from the one-key locks PgQueuer takes).
OFFER_LOCKS = 0x0FFE


async def open_contract(
    session: AsyncSession,
    *,
    offer_token: str,
    customer_id: str,
    product_id: str,
    keyring: OfferKeyring,
    now: dt.datetime,
    actor: str,
) -> ContractRow:
    """A pending contract from a signed offer, for the product the offer was made for."""
    terms = verify_offer(offer_token, keyring, now)
    # Two requests with one offer at once (a double click, a retry) wait for each other here, so
    # the second finds the first's contract, the same sale, rather than a broken unique key.
    await session.execute(select(func.pg_advisory_xact_lock(OFFER_LOCKS, func.hashtext(terms.offer_id))))
    customer = await live_customer(session, customer_id)  # an erased one is sold nothing, not even again
    existing = await session.scalar(select(ContractRow).where(ContractRow.offer_id == terms.offer_id))
    if existing is not None:
        if (existing.customer_id, existing.product_id) == (customer_id, product_id):
            return existing  # the same sale, asked again
        raise Conflict("this offer has been used for another sale", field="offer_token")
    product = await get_product(session, product_id)
    if product.customer_id != customer.id:
        raise InvalidInput("the product belongs to another customer", field="product_id")
    offered = terms.product
    mismatches = [
        name
        for name, same in (
            ("category", offered.category.value == product.category),
            ("price", offered.price == Money(product.price_amount, product.currency)),
            ("purchase_date", offered.purchase_date == product.purchase_date),
            ("serial", offered.serial is None or normalize_serial(offered.serial) == product.serial),
        )
        if not same
    ]
    if mismatches:
        raise InvalidInput(
            f"the product does not match the offer ({', '.join(mismatches)})", field="offer_token"
        )
    plan = await plan_version(await unit_of_work(session), terms.plan_code, terms.plan_version)
    if plan is None:
        raise NotFound(f"no plan {terms.plan_code} v{terms.plan_version}", field="offer_token")
    row = ContractRow(
        id=contract_id_for(terms.offer_id),
        customer_id=customer.id,
        product_id=product.id,
        offer_id=terms.offer_id,
        plan_code=plan.code,
        plan_version=plan.version,
        price_amount=terms.price.amount,
        currency=terms.price.currency,
        billing=plan.billing.value,
        status=ContractStatus.PENDING_PAYMENT.value,
        sold_at=now,
        offer_expires_at=dt.datetime.fromtimestamp(terms.expires_at, dt.UTC),
        coverage_starts_at=coverage_start(plan, product.purchase_date, product.warranty_months, now),
        waiting_until=now + dt.timedelta(days=terms.waiting_period_days)
        if terms.waiting_period_days
        else None,
        revision=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("this offer has been used for another sale", field="offer_token") from None
    if terms.lead_id is not None:
        await consume_lead(await unit_of_work(session), terms.lead_id, product.id, row.id, now)
    await audit.record(
        session,
        "contract",
        row.id,
        A.OPENED,
        actor,
        plan=f"{plan.code} v{plan.version}",
        offer_id=terms.offer_id,
    )
    touch(session, product.id)
    created = {
        "contract_id": row.id,
        "product_id": product.id,
        "customer_id": customer.id,
        "plan_code": plan.code,
        "plan_version": plan.version,
        "status": row.status,
        "price": {"amount": row.price_amount, "currency": row.currency},
    }
    (await unit_of_work(session)).emit("contract.created", created, product_id=product.id, contract_id=row.id)
    return row


async def _first_time(
    record: LifecycleRecord, contract: LockedContract, fact: LifecycleEvent, target: ContractStatus | None
) -> History | None:
    """Record the fact unless it was applied before (then None: nothing more to do); the contract's
    facts with it, and its coverage periods. With a `target`, the fact must be a transition the
    contract's status allows, unless it is a replay."""
    if target is not None and target not in TRANSITIONS[contract.status]:
        owner = await record.applied_to(fact)
        if owner is None:
            check_transition(contract.status, target)  # raises: not allowed now
    elif contract.knows(fact):
        owner = contract.fact_owner  # the lock read it, and the history
        if owner is None:
            return await record.add(contract, fact)
    else:
        history = await record.remember(contract.id, fact)
        if history is not None:
            return history
        owner = await record.applied_to(fact)
    if owner != contract.id:
        raise Conflict(f"reference {fact.reference} belongs to another contract", field="reference")
    return None


async def _locked(
    record: LifecycleRecord, contract: str | LockedContract, fact: LifecycleEvent
) -> LockedContract:
    if isinstance(contract, LockedContract):
        return contract
    locked = await record.lock(contract, fact=fact)
    if locked is None:
        raise NotFound(f"no contract {contract}", field="contract_id")
    return locked


async def _settle(
    record: LifecycleRecord,
    contract: ContractState,
    facts: list[LifecycleEvent],
    *,
    reference: str,
    actor: str,
    bought: Period | None = None,
    audits: tuple[tuple[StrEnum, dict[str, Any]], ...] = (),
) -> Period | None:
    """Settle the status from every lifecycle fact applied so far (`contracts.settle`) and write
    it; a cancellation cuts the coverage periods at its instant, paid or not. Returns the period
    bought, as stored."""
    plan = await record.plan(contract)
    settled = settle(facts, plan.grace_period_days)
    entries = list(audits)
    if settled.status is not contract.status:
        change = {"status": [contract.status.value, settled.status.value], "reference": reference}
        entries.append((settled.status, change))
    return await record.write(
        contract, settled, bought=bought, reference=reference, audits=entries, actor=actor
    )


async def _apply(
    run: UnitOfWork,
    contract: str | LockedContract,
    fact: LifecycleEvent,
    target: ContractStatus | None,
    reference: str,
    actor: str,
) -> None:
    """Record a fact that buys nothing (a failed payment, an ending) and settle the status."""
    record = LifecycleRecord(run)
    locked = await _locked(record, contract, fact)
    history = await _first_time(record, locked, fact, target)
    if history is not None:
        await _settle(record, locked, history[0], reference=reference, actor=actor)


class LifecycleAction(StrEnum):
    PAYMENT = "payment"
    PAST_DUE = "past_due"
    LAPSE = "lapse"
    CANCEL = "cancel"
    EXPIRE = "expire"
    ABANDON = "abandon"


_ENDINGS = {
    LifecycleAction.LAPSE: ContractStatus.LAPSED,
    LifecycleAction.CANCEL: ContractStatus.CANCELLED,
    LifecycleAction.EXPIRE: ContractStatus.EXPIRED,
    LifecycleAction.ABANDON: ContractStatus.ABANDONED,
}


async def apply_lifecycle(
    session: AsyncSession,
    contract_id: str,
    action: LifecycleAction,
    *,
    reference: str,
    at: dt.datetime,
    actor: str,
) -> ContractRow:
    """A lifecycle event, applied once per reference (as typed: NFC, trimmed); the contract as it
    is after it."""
    reference = clean_reference(reference)
    sold = await session.scalar(select(ContractRow.sold_at).where(ContractRow.id == contract_id))
    if sold is None:
        raise NotFound(f"no contract {contract_id}", field="contract_id")
    if at < sold:
        # Nothing happens to a contract before it exists: a cancellation in 1900 would end it
        # before its sale, and the reports would count it there.
        raise InvalidInput(f"at is before the contract was sold ({sold.isoformat()})", field="at")
    run = await unit_of_work(session)
    if action is LifecycleAction.PAYMENT:
        await record_payment(run, contract_id, reference=reference, paid_at=at, actor=actor)
    elif action is LifecycleAction.PAST_DUE:
        await mark_past_due(run, contract_id, reference=reference, at=at, actor=actor)
    else:
        await end_contract(run, contract_id, target=_ENDINGS[action], reference=reference, at=at, actor=actor)
    return await get_contract(session, contract_id)


async def record_payment(
    run: UnitOfWork,
    contract: str | LockedContract,
    *,
    reference: str,
    paid_at: dt.datetime,
    actor: str,
    period: Period | None = None,
    checked: bool = True,
) -> Period | None:
    """A payment buys a coverage period: the one given (a subscription invoice's), else the next
    billing interval (the term upfront, a month, a year). Idempotent by `reference`: returns the
    period bought as stored (cut, on a contract cancelled before it), or None when the payment
    was recorded before.

    `checked=False` is for facts reported by the gateway, which arrive in any order: they are
    recorded whatever the status says now (a payment that reaches an ended contract still buys
    the period it paid for), and the status is settled from all of them.

    `contract` is its id, or the contract as the caller has locked it in this transaction."""
    record = LifecycleRecord(run)
    fact = LifecycleEvent.payment(reference, paid_at)
    locked = await _locked(record, contract, fact)
    history = await _first_time(record, locked, fact, ContractStatus.ACTIVE if checked else None)
    if history is None:
        return None
    facts, existing = history
    if period is None:
        plan = await record.plan(locked)
        if checked and existing and plan.billing is Billing.UPFRONT:
            # Paid once for its whole term (Stripe's second payment is refunded as a duplicate).
            raise Conflict(
                "this contract's term is paid already: it is paid once, upfront", field="reference"
            )
        period = next_period(plan, existing, locked.coverage_starts_at, paid_at)
    paid = (A.PAID, {"reference": reference, "period": [period.start.isoformat(), period.end.isoformat()]})
    return await _settle(
        record, locked, facts, reference=reference, actor=actor, bought=period, audits=(paid,)
    )


async def mark_past_due(
    run: UnitOfWork,
    contract: str | LockedContract,
    *,
    reference: str,
    at: dt.datetime,
    actor: str,
    checked: bool = True,
) -> None:
    """A renewal failed: past due with a grace end, until a payment with the same reference."""
    fact = LifecycleEvent(reference, ContractStatus.PAST_DUE.value, at)
    await _apply(run, contract, fact, ContractStatus.PAST_DUE if checked else None, reference, actor)


async def end_contract(
    run: UnitOfWork,
    contract: str | LockedContract,
    *,
    target: ContractStatus,
    reference: str,
    at: dt.datetime,
    actor: str,
    checked: bool = True,
) -> None:
    """Lapse, cancel, expire or abandon. Cancelling cuts coverage at `at`; the paid past stays."""
    if target not in ENDINGS:
        raise InvalidInput(f"{target.value} does not end a contract", field="action")
    fact = LifecycleEvent(reference, target.value, at)
    await _apply(run, contract, fact, target if checked else None, reference, actor)


async def transfer_contract(
    session: AsyncSession, contract_id: str, *, customer_id: str, actor: str
) -> ContractRow:
    """The contract and its product move to a new owner; the history stays with the contract."""
    contract = await lock_contract(session, contract_id)
    new_owner = await live_customer(session, customer_id)
    if new_owner.id == contract.customer_id:
        raise Conflict("the contract already belongs to this customer", field="customer_id")
    if contract.status in (ContractStatus.CANCELLED.value, ContractStatus.ABANDONED.value):
        raise Conflict(f"a {contract.status} contract cannot be transferred", field="contract_id")
    previous = contract.customer_id
    contract.customer_id = new_owner.id
    product = await get_product(session, contract.product_id)
    product.customer_id = new_owner.id
    await audit.record(
        session, "contract", contract.id, A.TRANSFERRED, actor, customer_id=[previous, new_owner.id]
    )
    await audit.record(
        session, "product", product.id, A.TRANSFERRED, actor, customer_id=[previous, new_owner.id]
    )
    touch(session, product.id)
    moved = {
        "contract_id": contract.id,
        "product_id": product.id,
        "customer_id": new_owner.id,
        "previous_customer_id": previous,
    }
    (await unit_of_work(session)).emit(
        "contract.transferred", moved, product_id=product.id, contract_id=contract.id
    )
    return contract
