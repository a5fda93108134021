"""Included services in a unit of work: redeemed by a support channel (idempotent by its
reference, counted under the contract's lock, so 20 concurrent redemptions of the last two
sessions give exactly two), voided, listed; a service that needs a visit opens a service order.
Every move is audited and told as an event (`benefit.redeemed`, `benefit.voided`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.audit_names import Action
from entitlements.benefits.rules import NotRedeemable, RedemptionStatus, redemption_refusal
from entitlements.catalog import BenefitKind, SupportChannel
from entitlements.coverage import ContractFacts
from entitlements.errors import Conflict, InvalidInput, NotFound
from entitlements.fields import Ref, new_id
from entitlements.identifiers import clean_reference, clean_text, normalize_serial
from entitlements.repairs.rules import ENDED, OrderStatus
from entitlements.store import audit
from entitlements.store.base import found
from entitlements.store.contracts import facts_for, get_product, lock_contract
from entitlements.store.pages import oldest_first
from entitlements.store.tables import (
    AuditEventRow,
    BenefitRedemptionRow,
    ContractRow,
    ProductRow,
    ServiceOrderRow,
)
from entitlements.store.unit_of_work import touch, unit_of_work

NOTE_LENGTH = 2000
PAGE = 100


class RedemptionInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A support channel redeems one of the services a contract's plan includes: on the contract
    named, or on the contract of the product with this serial that can give it."""

    reference: Ref  # the channel's own (a ticket, a booking): the same reference redeems once
    kind: BenefitKind
    contract_id: Ref | None = None
    serial: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    channel: SupportChannel | None = None
    note: Annotated[str, msgspec.Meta(max_length=NOTE_LENGTH)] | None = None
    # For a service that needs a visit: the servicer it goes to (else it is offered to all).
    servicer_id: Annotated[str, msgspec.Meta(max_length=40)] | None = None


class VoidInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=NOTE_LENGTH)]


async def _contract_for(session: AsyncSession, data: RedemptionInput, now: dt.datetime) -> ContractRow:
    """The contract named; or, by serial, the product's contract that can give the service now
    (the latest sold), else the latest sold whose plan includes it, so the refusal says why."""
    if data.contract_id:
        contract = await session.get(ContractRow, data.contract_id)
        if contract is None:
            raise NotFound(f"no contract {data.contract_id}", field="contract_id")
        return contract
    if not data.serial:
        raise InvalidInput("a redemption names a contract_id or a serial", field="contract_id")
    product = await session.scalar(
        select(ProductRow).where(ProductRow.serial == normalize_serial(data.serial))
    )
    if product is None:
        raise NotFound("no product with this serial", field="serial")
    contracts = list(
        await session.scalars(
            select(ContractRow)
            .where(ContractRow.product_id == product.id)
            .order_by(ContractRow.sold_at.desc(), ContractRow.id.desc())
        )
    )
    if not contracts:
        raise NotFound("no contract covers this product", field="serial")
    facts = await facts_for(session, contracts, {product.id: product})
    including = [c for c in contracts if facts[c.id].plan.benefit(data.kind) is not None]
    usable = [c for c in including if redemption_refusal(facts[c.id], data.kind, now) is None]
    return (usable or including or contracts)[0]


def _same_request(row: BenefitRedemptionRow, data: RedemptionInput) -> bool:
    return row.kind == data.kind.value and data.contract_id in (None, row.contract_id)


async def _previous(session: AsyncSession, data: RedemptionInput) -> BenefitRedemptionRow | None:
    row = await session.scalar(
        select(BenefitRedemptionRow).where(BenefitRedemptionRow.reference == data.reference)
    )
    if row is not None and not _same_request(row, data):
        raise Conflict(
            f"reference {data.reference} already redeemed {row.kind} on contract {row.contract_id}",
            field="reference",
        )
    return row


async def _facts(session: AsyncSession, contract: ContractRow) -> ContractFacts:
    product = await get_product(session, contract.product_id)
    return (await facts_for(session, [contract], {product.id: product}))[contract.id]


async def redeem(
    session: AsyncSession, data: RedemptionInput, *, actor: str, agent: str | None, now: dt.datetime
) -> BenefitRedemptionRow:
    """One use of an included service, counted at `now`; the same reference gives back the same
    redemption. A service that needs a visit opens its service order in the same unit."""
    from entitlements.repairs.service import open_visit  # the repairs feature opens the order

    data = msgspec.structs.replace(data, reference=clean_reference(data.reference))
    previous = await _previous(session, data)
    if previous is not None:
        return previous
    target = await _contract_for(session, data, now)
    contract = await lock_contract(session, target.id)  # serialises redemptions on this contract
    previous = await _previous(session, data)
    if previous is not None:  # a concurrent twin won the race
        return previous
    facts = await _facts(session, contract)
    refusal = redemption_refusal(facts, data.kind, now)
    if refusal is not None:
        raise NotRedeemable(refusal, data.kind, contract.id)
    benefit = facts.plan.benefit(data.kind)
    assert benefit is not None  # redeemable, so included
    if data.servicer_id is not None and not benefit.visit:
        raise InvalidInput(f"{data.kind.value} needs no visit: it goes to no servicer", field="servicer_id")
    row = BenefitRedemptionRow(
        id=new_id("rdm"),
        reference=data.reference,
        contract_id=contract.id,
        product_id=contract.product_id,
        kind=data.kind.value,
        status=RedemptionStatus.REDEEMED.value,
        fee=benefit.fee(contract.currency).amount,
        currency=contract.currency,
        channel=data.channel.value if data.channel else None,
        note=clean_text(data.note, "note", NOTE_LENGTH) if data.note else None,
        redeemed_at=now,
        redeemed_by=agent,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("a redemption with this reference is being made", field="reference") from None
    await audit.record(
        session,
        "redemption",
        row.id,
        RedemptionStatus(row.status),
        actor,
        agent=agent,
        contract_id=contract.id,
        kind=row.kind,
        channel=row.channel,
        fee=row.fee,
    )
    await audit.record(
        session, "contract", contract.id, Action.BENEFIT_REDEEMED, actor, redemption_id=row.id, agent=agent
    )
    touch(session, row.product_id)
    await _event(session, row, "benefit.redeemed")
    if benefit.visit:
        await open_visit(session, row, servicer_id=data.servicer_id, actor=actor, now=now)
    return row


async def get_redemption(session: AsyncSession, redemption_id: str) -> BenefitRedemptionRow:
    return await found(session, BenefitRedemptionRow, redemption_id, "redemption", "redemption_id")


async def visit_of(
    session: AsyncSession, redemption_id: str, *, lock: bool = False
) -> ServiceOrderRow | None:
    """The service order of a redemption's visit (None: the service needs none)."""
    query = select(ServiceOrderRow).where(ServiceOrderRow.redemption_id == redemption_id)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query.execution_options(populate_existing=True))


async def void(
    session: AsyncSession,
    redemption_id: str,
    data: VoidInput,
    *,
    actor: str,
    agent: str | None,
    now: dt.datetime,
) -> BenefitRedemptionRow:
    """Give a use back (booked in error, or the customer did not come). A visit no servicer has
    accepted is withdrawn with it; one under way is ended by its servicer (a visit that could not
    be made voids its redemption itself). Voiding twice is voiding once."""
    from entitlements.repairs.service import cancel_visit

    row = await get_redemption(session, redemption_id)
    await lock_contract(session, row.contract_id)
    # The visit's order before the redemption, as a servicer's report takes them.
    order = await visit_of(session, row.id, lock=True)
    await session.refresh(row)
    if row.status == RedemptionStatus.VOIDED:
        return row
    if order is not None and OrderStatus(order.status) not in ENDED:
        await cancel_visit(session, order, actor=actor, now=now)
    await _void(
        session, row, clean_text(data.reason, "reason", NOTE_LENGTH), actor=actor, agent=agent, now=now
    )
    return row


async def void_for_failed_visit(
    session: AsyncSession, order: ServiceOrderRow, *, actor: str, now: dt.datetime
) -> None:
    """The servicer could not make the visit (its order locked): its use is given back."""
    assert order.redemption_id is not None
    row = await session.get(
        BenefitRedemptionRow, order.redemption_id, with_for_update=True, populate_existing=True
    )
    if row is not None and row.status == RedemptionStatus.REDEEMED:
        await _void(
            session, row, f"service order {order.id}: cannot_repair", actor=actor, agent=None, now=now
        )


async def _void(
    session: AsyncSession,
    row: BenefitRedemptionRow,
    reason: str,
    *,
    actor: str,
    agent: str | None,
    now: dt.datetime,
) -> None:
    row.status, row.voided_at, row.void_reason = RedemptionStatus.VOIDED.value, now, reason
    await audit.record(
        session, "redemption", row.id, RedemptionStatus.VOIDED, actor, agent=agent, reason=reason
    )
    await audit.record(
        session, "contract", row.contract_id, Action.BENEFIT_VOIDED, actor, redemption_id=row.id, agent=agent
    )
    touch(session, row.product_id)
    await _event(session, row, "benefit.voided")


async def list_redemptions(
    session: AsyncSession,
    *,
    contract_id: str | None,
    status: RedemptionStatus | None,
    cursor: str | None,
    limit: int = PAGE,
) -> tuple[list[BenefitRedemptionRow], str | None]:
    """A page of redemptions, oldest first; the cursor is the last one's id."""
    query = select(BenefitRedemptionRow)
    if contract_id is not None:
        query = query.where(BenefitRedemptionRow.contract_id == contract_id)
    if status is not None:
        query = query.where(BenefitRedemptionRow.status == status.value)
    return await oldest_first(session, query, BenefitRedemptionRow, cursor, limit)


async def redemption_history(session: AsyncSession, redemption_id: str) -> list[AuditEventRow]:
    row = await get_redemption(session, redemption_id)
    return await audit.history(session, [row.id])


def redemption_data(row: BenefitRedemptionRow) -> dict[str, object]:
    """A redemption as events and the API give it."""
    return {
        "redemption_id": row.id,
        "reference": row.reference,
        "contract_id": row.contract_id,
        "product_id": row.product_id,
        "kind": row.kind,
        "status": row.status,
        "fee": {"amount": row.fee, "currency": row.currency},
        "channel": row.channel,
        "redeemed_at": row.redeemed_at.isoformat(),
        "redeemed_by": row.redeemed_by,
        "voided_at": row.voided_at.isoformat() if row.voided_at else None,
        "void_reason": row.void_reason,
    }


async def _event(session: AsyncSession, row: BenefitRedemptionRow, event_type: str) -> None:
    unit = await unit_of_work(session)
    unit.emit(event_type, redemption_data(row), product_id=row.product_id, contract_id=row.contract_id)
